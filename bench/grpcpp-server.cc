// The peer of bench/grpc_bench.py: a grpc++ synchronous server from
// Debian's packages serving vm_tools.Maitred/Mount exactly as maitred does
// (mount(2) with the request's fields, failure returned as errno in the
// response). Usage: grpcpp-server HOST:PORT
#include <cerrno>
#include <cstdio>
#include <sys/mount.h>

#include <grpcpp/grpcpp.h>

#include "guest.grpc.pb.h"

class MaitredMount final : public vm_tools::Maitred::Service
{
	grpc::Status Mount(grpc::ServerContext *, const vm_tools::MountRequest *req,
			   vm_tools::MountResponse *resp) override
	{
		if (mount(req->source().c_str(), req->target().c_str(), req->fstype().c_str(), req->mountflags(),
			  req->options().c_str()) < 0)
			resp->set_error(errno);
		return grpc::Status::OK;
	}
};

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: %s HOST:PORT\n", argv[0]);
		return 2;
	}
	MaitredMount service;
	grpc::ServerBuilder builder;
	builder.AddListeningPort(argv[1], grpc::InsecureServerCredentials());
	builder.RegisterService(&service);
	std::unique_ptr<grpc::Server> server(builder.BuildAndStart());
	if (!server)
		return 1;
	printf("listening on %s\n", argv[1]);
	fflush(stdout);
	server->Wait();
	return 0;
}
