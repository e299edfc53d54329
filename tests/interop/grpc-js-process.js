// grpc-js against maitred's valet.v1.Process, for
// tests/integration/test_process_interop.py: the classes come from the
// project's own proto/valet/v1/process.proto through @grpc/proto-loader
// (pinned by package-lock.json). Every method: Start (pipes and a PTY),
// Connect (by id, by tag, from offsets), List, SendInput, SendSignal,
// Resize, and their errors.
// Usage: grpc-js-process.js TARGET PROTO_DIR. Prints one JSON line of what
// it saw; the test judges it.
'use strict';
const crypto = require('crypto');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');

const [target, protoDir] = process.argv.slice(2);
const MiB = 1024 * 1024;
const def = protoLoader.loadSync('valet/v1/process.proto', {
  keepCase: true, longs: String, enums: String, defaults: true, oneofs: true, includeDirs: [protoDir],
});
const v1 = grpc.loadPackageDefinition(def).valet.v1;
const proc = new v1.Process(target, grpc.credentials.createInsecure(),
                            { 'grpc.max_receive_message_length': 8 * MiB, 'grpc.max_send_message_length': 8 * MiB });
const deadline = () => new Date(Date.now() + 60000);
const err = (e) => ({ code: e.code, details: e.details });
const sha = (b) => crypto.createHash('sha256').update(b).digest('hex');

function unary(method, req) {
  return new Promise((resolve) => {
    proc[method](req, { deadline: deadline() }, (e, resp) => resolve(e ? err(e) : { code: 0, resp }));
  });
}

// A Start or Connect call, its events gathered per stream. until(state)
// true: the call is cancelled there and the promise resolves.
function events(method, req, until) {
  return new Promise((resolve) => {
    const st = { code: null, started: null, out: {}, next: {}, dropped: {}, exited: null, gaps: 0 };
    const call = proc[method](req, { deadline: deadline() });
    call.on('data', (ev) => {
      if (ev.started) st.started = { id: ev.started.id, pid: ev.started.pid, tag: ev.started.tag };
      if (ev.output) {
        const o = ev.output;
        const k = o.stream;
        const off = BigInt(o.offset);
        const dropped = BigInt(o.dropped);
        if (st.next[k] !== undefined && off - dropped !== st.next[k]) st.gaps++;
        st.next[k] = off + BigInt(o.data.length);
        st.out[k] = Buffer.concat([st.out[k] || Buffer.alloc(0), o.data]);
        st.dropped[k] = (st.dropped[k] || 0n) + dropped;
      }
      if (ev.exited) st.exited = { exit_code: ev.exited.exit_code, signal: ev.exited.signal,
                                   core_dumped: ev.exited.core_dumped, has_ended: !!ev.exited.ended };
      if (until && until(st)) {
        until = null;
        call.cancel();
        resolve(st);
      }
    });
    call.on('error', (e) => { st.code = e.code; st.details = e.details; resolve(st); });
    call.on('status', (s) => { if (s.code === 0) { st.code = 0; resolve(st); } });
  });
}

const text = (st, k) => (st.out[k] || Buffer.alloc(0)).toString();
const summary = (st) => ({ code: st.code, started: !!st.started, stdout: text(st, 'STDOUT'),
                           stderr: text(st, 'STDERR'), pty: text(st, 'PTY'), exited: st.exited, gaps: st.gaps });

(async () => {
  const out = {};
  // Start on pipes: both streams apart, exit code, Started fields.
  let st = await events('Start', { argv: ['sh', '-c', 'printf out; printf err >&2; exit 4'], tag: 'js-one',
                                   env: { A: 'b' } });
  out.start = Object.assign(summary(st), { tag: st.started.tag, pid_positive: Number(st.started.pid) > 0 });
  // A signal's end.
  st = await events('Start', { argv: ['sh', '-c', 'kill -9 $$'] });
  out.killed = st.exited;
  // A long output, disconnected after the first bytes, reattached by tag
  // from the offset reached.
  const seq = 'for i in $(seq 1 50000); do echo $i; done; sleep 0.5; exit 3';
  const first = await events('Start', { argv: ['sh', '-c', seq], tag: 'js-seq' },
                             (s) => (s.out.STDOUT || []).length > 0);
  const from = first.next.STDOUT;
  const second = await events('Connect', { tag: 'js-seq', stdout_offset: from.toString() });
  const all = Buffer.concat([first.out.STDOUT, second.out.STDOUT]);
  let want = '';
  for (let i = 1; i <= 50000; i++) want += i + '\n';
  out.reattach = { code: second.code, same: all.toString() === want, gaps: second.gaps,
                   dropped: (second.dropped.STDOUT || 0n).toString(), exited: second.exited,
                   same_id: second.started.id === first.started.id };
  // stdin: 3 MiB through cat, then eof.
  const data = crypto.randomBytes(3 * MiB + 11);
  const cat = events('Start', { argv: ['cat'], stdin: true, buffer_bytes: 8 * MiB });
  // The id: from List (the only process running).
  let list;
  for (let i = 0; i < 100; i++) {
    list = await unary('List', {});
    if (list.resp.processes.length) break;
    await new Promise((r) => setTimeout(r, 20));
  }
  const catId = list.resp.processes[0].id;
  out.list_running = list.resp.processes.map((p) => ({ argv: p.argv, running: p.running, pty: p.pty, user: p.user,
                                                       has_started: !!p.started }));
  for (let off = 0; off < data.length; off += MiB) {
    const r = await unary('SendInput', { id: catId, data: data.subarray(off, off + MiB) });
    if (r.code) { out.send_input = r; break; }
  }
  out.send_input_eof = (await unary('SendInput', { id: catId, eof: true })).code;
  st = await cat;
  out.cat = { code: st.code, same: sha(st.out.STDOUT || Buffer.alloc(0)) === sha(data), exited: st.exited };
  // A PTY: size, Resize, input.
  const pty = events('Start', { argv: ['sh', '-c', 'stty size; read x; stty size'], pty: true, rows: 20,
                                cols: 70, stdin: true, tag: 'js-pty' });
  for (let i = 0; i < 100; i++) {
    list = await unary('List', {});
    if (list.resp.processes.some((p) => p.tag === 'js-pty')) break;
    await new Promise((r) => setTimeout(r, 20));
  }
  const ptyId = list.resp.processes.find((p) => p.tag === 'js-pty').id;
  await new Promise((r) => setTimeout(r, 200));
  out.resize = (await unary('Resize', { id: ptyId, rows: 40, cols: 90 })).code;
  out.pty_input = (await unary('SendInput', { id: ptyId, data: Buffer.from('go\n') })).code;
  out.pty = summary(await pty);
  // SendSignal with group to a tree; its Start call (still attached) sees
  // the end. The id and the tree's start come through a Connect by tag,
  // cancelled (a Connect going away changes nothing).
  const treeStart = events('Start', { argv: ['sh', '-c', 'sleep 1000 & echo started; wait'], tag: 'js-tree' });
  for (let i = 0; i < 100; i++) {
    list = await unary('List', {});
    if (list.resp.processes.some((p) => p.tag === 'js-tree')) break;
    await new Promise((r) => setTimeout(r, 20));
  }
  const peek = await events('Connect', { tag: 'js-tree' }, (s) => text(s, 'STDOUT') === 'started\n');
  out.signal = (await unary('SendSignal', { id: peek.started.id, signal: 15, group: true })).code;
  st = await treeStart;
  out.tree = { code: st.code, exited: st.exited, stdout: text(st, 'STDOUT') };
  // List with exited ones: those whose end only a Start call was sent
  // (remembered until a List or Connect sees it), then none.
  list = await unary('List', { include_exited: true });
  out.list_all = list.resp.processes.map((p) => [p.tag, p.running, p.exited ? p.exited.exit_code : null]);
  list = await unary('List', { include_exited: true });
  out.list_after = list.resp.processes.length;
  // Errors.
  const sleeper = await events('Start', { argv: ['sleep', '1000'] }, (x) => !!x.started);
  out.errors = {
    start_empty: (await events('Start', { argv: [] })).code,
    start_missing: (await events('Start', { argv: ['/no/such/program'] })).code,
    connect_unknown: (await events('Connect', { id: '99999' })).code,
    connect_beyond: (await events('Connect', { id: sleeper.started.id, stdout_offset: '1' })).code,
    input_unknown: (await unary('SendInput', { id: '99999', data: Buffer.from('x') })).code,
    signal_bad: (await unary('SendSignal', { id: '99999', signal: 9 })).code,
    resize_unknown: (await unary('Resize', { id: '99999', rows: 1, cols: 1 })).code,
  };
  await unary('SendSignal', { id: sleeper.started.id, signal: 9 });
  console.log(JSON.stringify(out));
  proc.close();
})().catch((e) => { console.error(e); process.exit(1); });
