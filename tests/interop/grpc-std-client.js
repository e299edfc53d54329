// maitred's standard services through clients that are not ours, for
// tests/integration/test_grpc_std.py: grpc-reflection-js (a third-party
// reflection client, v1alpha) lists the services and fetches their
// descriptors, from which vm_tools.Maitred/GetKernelVersion and
// grpc.health.v1.Health/Check are built and called (no .proto file of
// ours); grpc-js with gRPC's own v1 reflection .proto (from
// @grpc/reflection) through @grpc/proto-loader; gRPC's health client
// definition (grpc-health-check). Prints one JSON object of results.
'use strict';
const path = require('path');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');
const descriptor = require('protobufjs/ext/descriptor');
const { Client: ReflectionClient } = require('grpc-reflection-js');
const health = require('grpc-health-check');

const target = process.argv[2];
const creds = grpc.credentials.createInsecure();

function unary(client, pathName, reqType, respType, req) {
  return new Promise((resolve, reject) => {
    client.makeUnaryRequest(pathName, (m) => Buffer.from(reqType.encode(reqType.create(m)).finish()),
      (b) => respType.decode(b), req, (err, resp) => (err ? reject(err) : resolve(resp)));
  });
}

// A method built from a protobufjs root that reflection returned.
async function callFromReflection(rc, service, method, req) {
  const root = await rc.fileContainingSymbol(service);
  const svc = root.lookupService(service);
  const m = svc.methods[method];
  m.resolve();
  const client = new grpc.Client(target, creds);
  try {
    const name = svc.fullName.replace(/^\./, '');
    return [root, await unary(client, `/${name}/${method}`, m.resolvedRequestType, m.resolvedResponseType, req)];
  } finally {
    client.close();
  }
}

function v1Reflection(requests) {
  const dir = path.join(path.dirname(require.resolve('@grpc/reflection/package.json')), 'build', 'proto');
  const def = protoLoader.loadSync('grpc/reflection/v1/reflection.proto',
    { includeDirs: [dir], keepCase: true, oneofs: true, longs: Number, enums: String, defaults: true });
  const Svc = grpc.loadPackageDefinition(def).grpc.reflection.v1.ServerReflection;
  const client = new Svc(target, creds);
  return new Promise((resolve, reject) => {
    const out = [];
    const call = client.ServerReflectionInfo();
    call.on('data', (r) => out.push(r));
    call.on('error', reject);
    call.on('end', () => { client.close(); resolve(out); });
    for (const r of requests) call.write(r);
    call.end();
  });
}

async function main() {
  const out = {};
  const rc = new ReflectionClient(target, creds);
  out.v1alpha_services = await rc.listServices();
  out.methods = {};
  for (const s of out.v1alpha_services) {
    const root = await rc.fileContainingSymbol(s);
    out.methods[s] = Object.keys(root.lookupService(s).methods);
  }
  let [, resp] = await callFromReflection(rc, 'vm_tools.Maitred', 'GetKernelVersion', {});
  out.kernel_release = resp.kernelRelease !== undefined ? resp.kernelRelease : resp.kernel_release;
  let root;
  [root, resp] = await callFromReflection(rc, 'grpc.health.v1.Health', 'Check', { service: 'vm_tools.Maitred' });
  out.health_via_reflection = root.lookupEnum('grpc.health.v1.HealthCheckResponse.ServingStatus').valuesById[resp.status];

  const Health = grpc.makeClientConstructor(health.service, 'Health');
  const hc = new Health(target, creds);
  const check = (service) => new Promise((resolve) => hc.Check({ service }, (err, r) => resolve(err || r)));
  out.health_check = {};
  for (const s of ['', 'vm_tools.Maitred']) out.health_check[s] = (await check(s)).status;
  out.health_unknown = (await check('nope')).code;
  out.watch_first = await new Promise((resolve, reject) => {
    const call = hc.Watch({ service: '' });
    call.on('data', (r) => { resolve(r.status); call.cancel(); });
    call.on('error', (e) => { if (e.code !== grpc.status.CANCELLED) reject(e); });
  });
  hc.close();

  const v1 = await v1Reflection([{ list_services: '' }, { file_containing_symbol: 'vm_tools.Nope' },
    { file_by_filename: 'guest.proto' }]);
  out.v1_services = v1[0].list_services_response.service.map((s) => s.name);
  out.v1_unknown_symbol = v1[1].error_response;
  out.v1_guest_file = descriptor.FileDescriptorProto.decode(v1[2].file_descriptor_response.file_descriptor_proto[0]).name;
  process.stdout.write(JSON.stringify(out) + '\n');
}

main().then(() => process.exit(0), (e) => { console.error(e && e.stack ? e.stack : e); process.exit(1); });
