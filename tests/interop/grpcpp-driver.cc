// The grpc++ driver of the interop suite: reads cases (one per line,
// key=value words, see tests/interop/cases.py) from stdin, runs each
// against TARGET with Debian's grpc++ and the stubs generated from
// proto/guest.proto, and prints one result line per call. It judges
// nothing: the expectations live in the shared case table.
#include <chrono>
#include <cstring>
#include <cstdio>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <grpcpp/grpcpp.h>
#include <grpcpp/impl/client_unary_call.h>

#include "guest.grpc.pb.h"

using Words = std::map<std::string, std::string>;

static const char b64chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static std::string b64encode(const std::string &in)
{
	std::string out;
	size_t i = 0;
	for (; i + 2 < in.size(); i += 3) {
		unsigned v = (uint8_t)in[i] << 16 | (uint8_t)in[i + 1] << 8 | (uint8_t)in[i + 2];
		for (int k = 18; k >= 0; k -= 6)
			out += b64chars[(v >> k) & 63];
	}
	if (i + 1 == in.size()) {
		unsigned v = (uint8_t)in[i] << 16;
		out += b64chars[(v >> 18) & 63];
		out += b64chars[(v >> 12) & 63];
		out += "==";
	} else if (i + 2 == in.size()) {
		unsigned v = (uint8_t)in[i] << 16 | (uint8_t)in[i + 1] << 8;
		out += b64chars[(v >> 18) & 63];
		out += b64chars[(v >> 12) & 63];
		out += b64chars[(v >> 6) & 63];
		out += '=';
	}
	return out;
}

static std::string b64decode(const std::string &in)
{
	std::string out;
	unsigned v = 0;
	int bits = 0;
	for (char c : in) {
		const char *p = c ? strchr(b64chars, c) : nullptr;
		if (!p)
			continue;
		v = v << 6 | (unsigned)(p - b64chars);
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out += (char)((v >> bits) & 0xff);
		}
	}
	return out;
}

static Words parse(const std::string &line)
{
	Words w;
	std::istringstream is(line);
	std::string word;
	while (is >> word) {
		size_t eq = word.find('=');
		if (eq != std::string::npos)
			w[word.substr(0, eq)] = word.substr(eq + 1);
	}
	return w;
}

static long num(const Words &w, const char *key, long def)
{
	auto it = w.find(key);
	return it == w.end() ? def : std::stol(it->second);
}

static std::string str(const Words &w, const char *key)
{
	auto it = w.find(key);
	return it == w.end() ? "" : it->second;
}

static std::shared_ptr<grpc::Channel> make_channel(const std::string &target, const Words &w)
{
	grpc::ChannelArguments args;
	// Every case on its own connection, as the other drivers do.
	args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
	args.SetMaxReceiveMessageSize(-1);
	args.SetMaxSendMessageSize(-1);
	if (long ka = num(w, "keepalive_ms", 0)) {
		args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, (int)ka);
		args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 5000);
		args.SetInt(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
		args.SetInt(GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA, 0);
		args.SetInt(GRPC_ARG_HTTP2_MIN_SENT_PING_INTERVAL_WITHOUT_DATA_MS, (int)ka);
	}
	return grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(), args);
}

template <typename Req, typename Resp, typename Fn>
static grpc::Status typed_call(grpc::ClientContext *ctx, const std::string &req_bytes, std::string *resp_bytes, Fn fn)
{
	Req req;
	Resp resp;
	if (!req.ParseFromString(req_bytes))
		return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "driver: bad request bytes");
	grpc::Status st = fn(ctx, req, &resp);
	if (st.ok())
		resp.SerializeToString(resp_bytes);
	return st;
}

// One call; the generated stub for the four RPCs, a raw call for any other path.
static grpc::Status one_call(const std::shared_ptr<grpc::Channel> &ch, vm_tools::Maitred::Stub *stub,
			     grpc::ClientContext *ctx, const std::string &rpc, const std::string &req,
			     std::string *resp)
{
	using namespace vm_tools;
	if (rpc == "Mount")
		return typed_call<MountRequest, MountResponse>(
			ctx, req, resp, [&](auto c, auto &q, auto p) { return stub->Mount(c, q, p); });
	if (rpc == "LaunchProcess")
		return typed_call<LaunchProcessRequest, LaunchProcessResponse>(
			ctx, req, resp, [&](auto c, auto &q, auto p) { return stub->LaunchProcess(c, q, p); });
	if (rpc == "ConfigureNetwork")
		return typed_call<NetworkConfigRequest, EmptyMessage>(
			ctx, req, resp, [&](auto c, auto &q, auto p) { return stub->ConfigureNetwork(c, q, p); });
	if (rpc == "Shutdown")
		return typed_call<EmptyMessage, EmptyMessage>(
			ctx, req, resp, [&](auto c, auto &q, auto p) { return stub->Shutdown(c, q, p); });
	grpc::internal::RpcMethod method(rpc.c_str(), grpc::internal::RpcMethod::NORMAL_RPC, ch);
	grpc::Slice slice(req);
	grpc::ByteBuffer in(&slice, 1), out;
	grpc::Status st =
		grpc::internal::BlockingUnaryCall<grpc::ByteBuffer, grpc::ByteBuffer>(ch.get(), method, ctx, in, &out);
	if (st.ok()) {
		std::vector<grpc::Slice> slices;
		(void)out.Dump(&slices);
		for (auto &s : slices)
			resp->append((const char *)s.begin(), s.size());
	}
	return st;
}

static std::mutex out_mu;

static void run_one(const std::shared_ptr<grpc::Channel> &ch, vm_tools::Maitred::Stub *stub, const Words &w, long i)
{
	grpc::ClientContext ctx;
	std::string resp;
	std::string comp = str(w, "compression");
	if (comp == "gzip")
		ctx.set_compression_algorithm(GRPC_COMPRESS_GZIP);
	else if (comp == "deflate")
		ctx.set_compression_algorithm(GRPC_COMPRESS_DEFLATE);
	if (long pad = num(w, "metadata_bytes", 0))
		ctx.AddMetadata("x-valet-pad", std::string((size_t)pad, 'a'));
	if (long t = num(w, "timeout_ms", 0))
		ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(t));
	std::thread canceller;
	long cancel_ms = num(w, "cancel_ms", 0);
	if (cancel_ms)
		canceller = std::thread([&ctx, cancel_ms] {
			std::this_thread::sleep_for(std::chrono::milliseconds(cancel_ms));
			ctx.TryCancel();
		});
	auto t0 = std::chrono::steady_clock::now();
	grpc::Status st = one_call(ch, stub, &ctx, str(w, "rpc"), b64decode(str(w, "req")), &resp);
	double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
	if (canceller.joinable())
		canceller.join();
	std::lock_guard<std::mutex> lock(out_mu);
	printf("name=%s i=%ld code=%d ms=%.3f resp=%s details=%s\n", str(w, "name").c_str(), i, (int)st.error_code(),
	       ms, b64encode(resp).c_str(), b64encode(st.error_message()).c_str());
	fflush(stdout);
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: %s TARGET < CASES\n", argv[0]);
		return 2;
	}
	std::string target = argv[1], line;
	while (std::getline(std::cin, line)) {
		Words w = parse(line);
		if (w.empty())
			continue;
		long concurrent = num(w, "concurrent", 1), repeat = num(w, "repeat", 1);
		bool newconn = num(w, "newconn", 0) != 0;
		auto ch = make_channel(target, w);
		auto stub = vm_tools::Maitred::NewStub(ch);
		for (long r = 0; r < repeat; r++) {
			if (newconn && r > 0) {
				ch = make_channel(target, w);
				stub = vm_tools::Maitred::NewStub(ch);
			}
			if (concurrent == 1) {
				run_one(ch, stub.get(), w, r);
				continue;
			}
			std::vector<std::thread> threads;
			for (long k = 0; k < concurrent; k++)
				threads.emplace_back(run_one, ch, stub.get(), std::cref(w), r * concurrent + k);
			for (auto &t : threads)
				t.join();
		}
	}
	return 0;
}
