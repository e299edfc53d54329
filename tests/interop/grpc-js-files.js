// grpc-js against maitred's valet.v1.Files, for
// tests/integration/test_files_interop.py: the classes come from the
// project's own proto/valet/v1/files.proto through @grpc/proto-loader
// (pinned by package-lock.json). Every method once at least, the streaming
// ones included (Write with flow control, Read, List, WriteTree, ReadTree).
// Usage: grpc-js-files.js TARGET PROTO_DIR DIR (an empty directory of the
// test's). Prints one JSON line of what it saw; the test judges it.
'use strict';
const crypto = require('crypto');
const path = require('path');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');

const [target, protoDir, dir] = process.argv.slice(2);
const MiB = 1024 * 1024;
const def = protoLoader.loadSync('valet/v1/files.proto', {
  keepCase: true, longs: String, enums: String, defaults: true, oneofs: true, includeDirs: [protoDir],
});
const v1 = grpc.loadPackageDefinition(def).valet.v1;
const files = new v1.Files(target, grpc.credentials.createInsecure(),
                           { 'grpc.max_receive_message_length': 8 * MiB, 'grpc.max_send_message_length': 8 * MiB });
const sha = (b) => crypto.createHash('sha256').update(b).digest('hex');
const deadline = () => new Date(Date.now() + 60000);
const err = (e) => ({ code: e.code, details: e.details });

function unary(method, req) {
  return new Promise((resolve) => {
    files[method](req, { deadline: deadline() }, (e, resp) => resolve(e ? err(e) : { code: 0, resp }));
  });
}

// A client stream: the messages written as flow control allows.
function clientStream(method, messages) {
  return new Promise((resolve) => {
    const call = files[method]({ deadline: deadline() }, (e, resp) => resolve(e ? err(e) : { code: 0, resp }));
    let i = 0;
    const pump = () => {
      while (i < messages.length) {
        if (!call.write(messages[i++])) return call.once('drain', pump);
      }
      call.end();
    };
    pump();
  });
}

function serverStream(method, req) {
  return new Promise((resolve) => {
    const got = [];
    const call = files[method](req, { deadline: deadline() });
    call.on('data', (m) => got.push(m));
    call.on('error', (e) => resolve(Object.assign(err(e), { got })));
    call.on('status', (s) => { if (s.code === 0) resolve({ code: 0, got }); });
  });
}

const info = (i) => ({ path: i.path, type: i.type, size: Number(i.size), mode: i.mode, uid: i.uid, gid: i.gid,
                       owner: i.owner, group: i.group, symlink_target: i.symlink_target,
                       mtime_ns: (BigInt(i.mtime.seconds) * 1000000000n + BigInt(i.mtime.nanos)).toString() });

(async () => {
  const out = {};
  // Write: 3 MiB + 7 in messages of odd sizes, mode, digest, mtime.
  const data = crypto.randomBytes(3 * MiB + 7);
  const chunks = [];
  const sizes = [1, 4093, 65537, MiB + 3, 7];
  for (let off = 0, i = 0; off < data.length; off += sizes[i % sizes.length], i++) {
    chunks.push(data.subarray(off, off + sizes[i % sizes.length]));
  }
  const file = path.join(dir, 'js.bin');
  let r = await clientStream('Write', [
    { header: { path: file, mode: 0o640, sha256: crypto.createHash('sha256').update(data).digest(),
                mtime: { seconds: 1300000000, nanos: 5 } } },
    ...chunks.map((c) => ({ data: c }))]);
  out.write = r.code ? r : { code: 0, messages: chunks.length + 1, info: info(r.resp.info),
                             sha256: r.resp.sha256.toString('hex'), sent: sha(data) };
  r = await clientStream('Write', [{ header: { path: file, no_replace: true } }, { data: Buffer.from('no') }]);
  out.write_no_replace = { code: r.code };
  r = await clientStream('Write', [{ header: { path: path.join(dir, 'bad'), sha256: Buffer.alloc(32) } },
                                   { data: Buffer.from('x') }]);
  out.write_mismatch = { code: r.code };

  // Read: whole with digest; a range.
  r = await serverStream('Read', { path: file, sha256: true });
  out.read = r.code ? r : {
    code: 0, kinds: r.got.map((m) => m.part).filter((k, i, a) => k !== 'data' || a[i - 1] !== 'data'),
    info: info(r.got[0].info), same: Buffer.concat(r.got.filter((m) => m.part === 'data').map((m) => m.data))
      .equals(data), sha256: r.got[r.got.length - 1].sha256.toString('hex') };
  r = await serverStream('Read', { path: file, offset: 1000, length: 10 });
  out.read_range = r.code ? r : {
    code: 0, same: Buffer.concat(r.got.filter((m) => m.part === 'data').map((m) => m.data))
      .equals(data.subarray(1000, 1010)) };

  // Stat, MakeDirectory, List, Move.
  r = await unary('Stat', { path: file });
  out.stat = r.code ? r : { code: 0, info: info(r.resp) };
  out.stat_missing = { code: (await unary('Stat', { path: path.join(dir, 'missing') })).code };
  out.stat_relative = { code: (await unary('Stat', { path: 'relative' })).code };
  r = await unary('MakeDirectory', { path: path.join(dir, 'sub', 'deeper'), mode: 0o750, parents: true });
  out.mkdir = r.code ? r : { code: 0, info: info(r.resp) };
  r = await unary('Move', { source: file, destination: path.join(dir, 'sub', 'moved.bin') });
  out.move = r.code ? r : { code: 0, info: info(r.resp) };
  r = await serverStream('List', { path: dir, depth: 3 });
  out.list = r.code ? r : { code: 0, entries: r.got.map((e) => [e.path, e.type]) };

  // WriteTree, ReadTree.
  const tree = path.join(dir, 'tree');
  r = await clientStream('WriteTree', [
    { header: { root: tree, make_parents: true } },
    { entry: { path: 'a', type: 'DIRECTORY', mode: 0o751, mtime: { seconds: 1200000000 } } },
    { entry: { path: 'a/f', type: 'FILE', mode: 0o600, size: 5, mtime: { seconds: 1100000000, nanos: 7 } } },
    { data: Buffer.from('hel') }, { data: Buffer.from('lo') },
    { entry: { path: 'a/l', type: 'SYMLINK', symlink_target: 'f' } },
    { entry: { path: 'a/h', type: 'FILE', hardlink_to: 'a/f' } }]);
  out.write_tree = r.code ? r : { code: 0, summary: Object.fromEntries(
    ['files', 'directories', 'symlinks', 'bytes'].map((k) => [k, Number(r.resp[k])])) };
  r = await serverStream('ReadTree', { root: tree });
  if (r.code) {
    out.read_tree = r;
  } else {
    const entries = [];
    for (const m of r.got) {
      if (m.part === 'entry') {
        const e = m.entry;
        entries.push({ path: e.path, type: e.type, mode: e.mode, size: Number(e.size), symlink_target: e.symlink_target,
                       hardlink_to: e.hardlink_to, data: '',
                       mtime_ns: (BigInt(e.mtime ? e.mtime.seconds : 0) * 1000000000n +
                                  BigInt(e.mtime ? e.mtime.nanos : 0)).toString() });
      } else {
        entries[entries.length - 1].data += m.data.toString();
      }
    }
    out.read_tree = { code: 0, entries };
  }

  // Remove.
  r = await unary('Remove', { path: tree, recursive: true });
  out.remove_tree = r.code ? r : { code: 0, removed: Number(r.resp.removed) };
  out.remove_nonempty = { code: (await unary('Remove', { path: path.join(dir, 'sub') })).code };
  r = await unary('Remove', { path: path.join(dir, 'sub', 'moved.bin') });
  out.remove_file = r.code ? r : { code: 0, removed: Number(r.resp.removed) };
  console.log(JSON.stringify(out));
  files.close();
})();
