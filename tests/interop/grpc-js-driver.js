// The grpc-js driver of the interop suite: reads cases (one per line,
// key=value words, see cases.py) from stdin, runs each against TARGET with
// @grpc/grpc-js and prints one result line per call. Messages travel as
// bytes (the table serializes them), so no protobuf library is needed.
'use strict';
const grpc = require('@grpc/grpc-js');

const target = process.argv[2];
const identity = (b) => b;

function words(line) {
  const w = {};
  for (const word of line.trim().split(/\s+/)) {
    const eq = word.indexOf('=');
    if (eq > 0) w[word.slice(0, eq)] = word.slice(eq + 1);
  }
  return w;
}

function channelOptions(w) {
  const o = { 'grpc.use_local_subchannel_pool': 1, 'grpc.max_receive_message_length': -1,
              'grpc.max_send_message_length': -1 };
  // grpc-js: 0 identity, 1 deflate, 2 gzip.
  if (w.compression === 'gzip') o['grpc.default_compression_algorithm'] = 2;
  if (w.compression === 'deflate') o['grpc.default_compression_algorithm'] = 1;
  if (w.keepalive_ms) {
    o['grpc.keepalive_time_ms'] = Number(w.keepalive_ms);
    o['grpc.keepalive_timeout_ms'] = 5000;
    o['grpc.keepalive_permit_without_calls'] = 1;
  }
  return o;
}

function path(rpc) {
  return rpc.startsWith('/') ? rpc : `/vm_tools.Maitred/${rpc}`;
}

function oneCall(client, w, i) {
  return new Promise((resolve) => {
    const opts = {};
    if (w.timeout_ms) opts.deadline = new Date(Date.now() + Number(w.timeout_ms));
    const md = new grpc.Metadata();
    if (w.metadata_bytes) md.add('x-valet-pad', 'a'.repeat(Number(w.metadata_bytes)));
    const t0 = process.hrtime.bigint();
    const call = client.makeUnaryRequest(path(w.rpc), identity, identity, Buffer.from(w.req || '', 'base64'),
      md, opts, (err, resp) => {
        const ms = Number(process.hrtime.bigint() - t0) / 1e6;
        const code = err ? err.code : 0;
        const details = err ? Buffer.from(err.details || '').toString('base64') : '';
        const body = resp ? Buffer.from(resp).toString('base64') : '';
        process.stdout.write(`name=${w.name} i=${i} code=${code} ms=${ms.toFixed(3)} resp=${body} details=${details}\n`);
        resolve();
      });
    if (w.cancel_ms) setTimeout(() => call.cancel(), Number(w.cancel_ms));
  });
}

async function runCase(w) {
  const concurrent = Number(w.concurrent || 1), repeat = Number(w.repeat || 1);
  let client = new grpc.Client(target, grpc.credentials.createInsecure(), channelOptions(w));
  for (let r = 0; r < repeat; r++) {
    if (w.newconn === '1' && r > 0) {
      client.close();
      client = new grpc.Client(target, grpc.credentials.createInsecure(), channelOptions(w));
    }
    const calls = [];
    for (let k = 0; k < concurrent; k++) calls.push(oneCall(client, w, r * concurrent + k));
    await Promise.all(calls);
  }
  client.close();
}

async function main() {
  if (!target) {
    process.stderr.write('usage: node grpc-js-driver.js TARGET < CASES\n');
    process.exit(2);
  }
  let input = '';
  for await (const chunk of process.stdin) input += chunk;
  for (const line of input.split('\n')) {
    const w = words(line);
    if (w.name) await runCase(w);
  }
}

main();
