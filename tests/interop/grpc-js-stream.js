// grpc-js against rpc-stream-server (tests/proto/streamtest.proto), for
// tests/integration/test_streaming.py: a bidirectional echo of 64 MiB
// (SHA-256 compared), a client stream, a server stream. Messages are
// encoded by hand (two fields), so no protobuf library is needed.
// Prints one JSON line of results.
'use strict';
const crypto = require('crypto');
const grpc = require('@grpc/grpc-js');

const target = process.argv[2];
const MiB = 1024 * 1024;

function varint(n) {
  const out = [];
  let v = BigInt(n);
  do {
    let b = Number(v & 0x7fn);
    v >>= 7n;
    if (v) b |= 0x80;
    out.push(b);
  } while (v);
  return Buffer.from(out);
}

function readVarint(buf, off) {
  let v = 0n, shift = 0n;
  for (;;) {
    const b = buf[off++];
    v |= BigInt(b & 0x7f) << shift;
    shift += 7n;
    if (!(b & 0x80)) return [v, off];
  }
}

// Chunk { bytes data = 1; int64 value = 2; }, Count { from = 1; size = 2; }
function encode(data, value) {
  const parts = [];
  if (data && data.length) parts.push(Buffer.from([0x0a]), varint(data.length), data);
  if (value) parts.push(Buffer.from([0x10]), varint(value));
  return Buffer.concat(parts);
}

function decode(buf) {
  const m = { 1: Buffer.alloc(0), 2: 0n, 3: 0n };
  let off = 0;
  while (off < buf.length) {
    let key;
    [key, off] = readVarint(buf, off);
    const field = Number(key >> 3n), wire = Number(key & 7n);
    if (wire === 2) {
      let len;
      [len, off] = readVarint(buf, off);
      m[field] = buf.subarray(off, off + Number(len));
      off += Number(len);
    } else {
      [m[field], off] = readVarint(buf, off);
    }
  }
  return m;
}

const id = (b) => b;
const client = new grpc.Client(target, grpc.credentials.createInsecure(),
                               { 'grpc.max_receive_message_length': -1, 'grpc.max_send_message_length': -1 });

function echo() {
  return new Promise((resolve) => {
    const sent = crypto.createHash('sha256'), got = crypto.createHash('sha256');
    const call = client.makeBidiStreamRequest('/streamtest.Stream/Echo', id, id);
    let n = 0, i = 0;
    const block = crypto.randomBytes(MiB);
    call.on('data', (b) => { got.update(decode(b)[1]); n++; });
    call.on('error', (e) => resolve({ code: e.code, details: e.details }));
    call.on('status', (s) => {
      if (s.code === 0) resolve({ code: 0, n, same: sent.digest('hex') === got.digest('hex') });
    });
    const write = () => {
      while (i < 64) {
        const data = Buffer.concat([block.subarray(i), block.subarray(0, i)]);
        sent.update(data);
        i++;
        if (!call.write(encode(data, i))) return call.once('drain', write);
      }
      call.end();
    };
    write();
  });
}

function add() {
  return new Promise((resolve) => {
    const call = client.makeClientStreamRequest('/streamtest.Stream/Add', id, id, (err, b) => {
      if (err) return resolve({ code: err.code, details: err.details });
      const m = decode(b);
      resolve({ code: 0, total: Number(m[1]), count: Number(m[2]) });
    });
    for (let v = 1; v <= 100; v++) call.write(encode(Buffer.from('x'), v));
    call.end();
  });
}

function countdown() {
  return new Promise((resolve) => {
    const values = [];
    // Count { from: 300, size: 1000 }
    const req = Buffer.concat([Buffer.from([0x08]), varint(300), Buffer.from([0x10]), varint(1000)]);
    const call = client.makeServerStreamRequest('/streamtest.Stream/Countdown', id, id, req);
    call.on('data', (b) => values.push(Number(decode(b)[2])));
    call.on('error', (e) => resolve({ code: e.code, details: e.details }));
    call.on('status', (s) => {
      if (s.code === 0) resolve({ code: 0, n: values.length, first: values[0], last: values[values.length - 1] });
    });
  });
}

(async () => {
  const out = { echo: await echo(), add: await add(), countdown: await countdown() };
  console.log(JSON.stringify(out));
  client.close();
})();
