// grpc-js against maitred's valet.v1.Tunnel, for
// tests/integration/test_tunnel_interop.py: the classes come from the
// project's own proto/valet/v1/tunnel.proto through @grpc/proto-loader
// (pinned by package-lock.json). Connect through an echo service (TCP and
// unix), with flow control both ways; a refused port; a bad target.
// Usage: grpc-js-tunnel.js TARGET PROTO_DIR ECHO_PORT ECHO_UNIX_PATH REFUSED_PORT
// Prints one JSON line of what it saw; the test judges it.
'use strict';
const crypto = require('crypto');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');

const [target, protoDir, echoPort, echoPath, refusedPort] = process.argv.slice(2);
const MiB = 1024 * 1024;
const def = protoLoader.loadSync('valet/v1/tunnel.proto', {
  keepCase: true, longs: String, enums: String, defaults: true, oneofs: true, includeDirs: [protoDir],
});
const v1 = grpc.loadPackageDefinition(def).valet.v1;
const tunnel = new v1.Tunnel(target, grpc.credentials.createInsecure(),
                             { 'grpc.max_receive_message_length': 8 * MiB, 'grpc.max_send_message_length': 8 * MiB });
const sha = (b) => crypto.createHash('sha256').update(b).digest('hex');

// One Connect: the target, the data in messages as flow control allows,
// eof, then the end of the request stream. What came back, collapsed.
function connect(tgt, data) {
  return new Promise((resolve) => {
    const call = tunnel.Connect({ deadline: new Date(Date.now() + 60000) });
    const got = [];
    const kinds = [];
    call.on('data', (m) => {
      if (m.part === 'data') got.push(m.data);
      if (kinds[kinds.length - 1] !== m.part || m.part !== 'data') kinds.push(m.part);
    });
    const done = (code, details) => resolve({ code, details, kinds, sha: sha(Buffer.concat(got)),
                                              bytes: Buffer.concat(got).length });
    call.on('error', (e) => done(e.code, e.details));
    call.on('status', (s) => { if (s.code === 0) done(0, ''); });
    const msgs = [{ target: tgt }];
    for (let off = 0, i = 0; off < data.length; i++) {
      const n = [65536, 1, 300001, 7][i % 4];
      msgs.push({ data: data.subarray(off, off + n) });
      off += n;
    }
    if (data.length) msgs.push({ eof: true });
    let i = 0;
    const pump = () => {
      while (i < msgs.length) {
        if (!call.write(msgs[i++])) return call.once('drain', pump);
      }
      call.end();
    };
    pump();
  });
}

(async () => {
  const out = {};
  const data = crypto.randomBytes(2 * MiB + 11);
  out.sent = sha(data);
  out.sent_bytes = data.length;
  out.tcp = await connect({ port: Number(echoPort) }, data);
  out.unix = await connect({ unix_path: echoPath }, data.subarray(0, 100000));
  out.unix_sent = sha(data.subarray(0, 100000));
  out.refused = await connect({ port: Number(refusedPort) }, Buffer.alloc(0));
  out.bad = await connect({ port: 0, host: '127.0.0.1' }, Buffer.alloc(0));
  console.log(JSON.stringify(out));
  tunnel.close();
})();
