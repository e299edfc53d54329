/* The standard services' data (src/grpc-std): the reflection index built
 * from the served .proto files (descriptor-set.h) covers every method
 * maitred registers, its tables are sorted as the lookups assume, and the
 * served-service names follow the registered tables and the switches
 * (served.h). The services themselves are driven by gRPC's own clients in
 * tests/integration/test_grpc_std.py. */
#include "agent/agent.h"
#include "files-service/service.h"
#include "process-service/service.h"
#include "snapshot-service/service.h"
#include "tunnel-service/service.h"
#include "grpc-std/descriptor-set.h"
#include "grpc-std/grpc-std.h"
#include "grpc-std/served.h"
#include "test.h"
#include "vmtools/vmtools.h"

/* "/pkg.Svc/Method" -> "pkg.Svc.Method" and "pkg.Svc". */
static void symbols_of(const char *path, char *method, char *service, size_t size)
{
	snprintf(method, size, "%s", path + 1);
	*strchr(method, '/') = '.';
	snprintf(service, size, "%s", path + 1);
	*strchr(service, '/') = '\0';
}

/* Registered, always refused (UNIMPLEMENTED), and not in guest.proto:
 * their messages describe ChromeOS's Termina layout (docs/behaviour.md). */
static bool refused_outside_the_proto(const char *method)
{
	return strcmp(method, "vm_tools.Maitred.StartTermina") == 0 ||
	       strcmp(method, "vm_tools.Maitred.ConfigureContainerGuest") == 0 ||
	       strcmp(method, "vm_tools.Maitred.UpdateStorageBalloon") == 0;
}

TEST(every_registered_method_is_in_the_reflection_index)
{
	struct agent a = { 0 };
	struct vmtools v;
	struct files_service f;
	struct process_service p;
	struct snapshot_service sn;
	struct tunnel_service tu;
	struct grpcstd g;
	unsigned n = 0, outside = 0;

	/* Every service maitred registers (main.c). */
	CHECK_EQ(vmtools_register(&a, &v), 0);
	CHECK_EQ(files_service_register(&a, &f), 0);
	CHECK_EQ(process_service_register(&a, &p), 0);
	CHECK_EQ(snapshot_service_register(&a, &sn), 0);
	CHECK_EQ(tunnel_service_register(&a, &tu), 0);
	CHECK_EQ(grpcstd_register(&a, &g), 0);
	for (const struct rpc_service *t = a.services; t; t = t->next)
		for (size_t i = 0; i < t->n_methods; i++) {
			char method[256], service[256];
			enum descset_kind kind = DESCSET_FIELD;
			symbols_of(t->methods[i].path, method, service, sizeof(method));
			if (refused_outside_the_proto(method)) {
				CHECK_EQ(descset_find_symbol(method, &kind), -ENOENT);
				outside++;
				continue;
			}
			CHECK(descset_find_symbol(method, &kind) >= 0);
			CHECK_EQ(kind, DESCSET_METHOD);
			CHECK(descset_find_symbol(service, &kind) >= 0);
			CHECK_EQ(kind, DESCSET_SERVICE);
			n++;
		}
	/* 19 of vm_tools.Maitred (3 not in guest.proto), 9 of valet.v1.Files,
	 * 6 of valet.v1.Process, 3 of valet.v1.Snapshot, 1 of valet.v1.Tunnel,
	 * 3 of health, 2 of reflection. */
	CHECK_EQ(n, 40);
	CHECK_EQ(outside, 3);
	grpcstd_free(&g);
	snapshot_service_free(&sn);
	process_service_free(&p);
	files_service_free(&f);
	tunnel_service_free(&tu);
	vmtools_free(&v);
}

TEST(index_tables_are_sorted_and_consistent)
{
	CHECK(descset_n_files >= 11);
	for (size_t i = 1; i < descset_n_files; i++)
		CHECK(strcmp(descset_file_name(i - 1), descset_file_name(i)) < 0);
	for (size_t i = 1; i < descset_n_symbols; i++)
		CHECK(strcmp(descset_names + descset_symbols[i - 1].name, descset_names + descset_symbols[i].name) < 0);
	for (size_t i = 0; i < descset_n_files; i++) {
		size_t n, size;
		const uint16_t *deps = descset_file_deps(i, &n);
		const uint8_t *data = descset_file_bytes(i, &size);
		const char *name = descset_file_name(i);
		for (size_t j = 0; j < n; j++)
			CHECK(deps[j] < descset_n_files && deps[j] != i);
		/* FileDescriptorProto: field 1 (name) first, as protoc writes it. */
		CHECK(size > 2 + strlen(name));
		CHECK_EQ(data[0], 0x0a);
		CHECK_EQ(data[1], strlen(name));
		CHECK(memcmp(data + 2, name, strlen(name)) == 0);
		CHECK_EQ(descset_find_file(name), i);
	}
	for (size_t i = 0; i < descset_n_symbols; i++)
		CHECK(descset_symbols[i].file < descset_n_files);
}

TEST(index_lookups)
{
	enum descset_kind kind;
	size_t n;
	int guest = descset_find_file("guest.proto");

	CHECK(guest >= 0);
	const uint16_t *deps = descset_file_deps(guest, &n);
	CHECK_EQ(n, 2);
	CHECK((strcmp(descset_file_name(deps[0]), "common.proto") == 0 &&
	       strcmp(descset_file_name(deps[1]), "google/protobuf/timestamp.proto") == 0) ||
	      (strcmp(descset_file_name(deps[1]), "common.proto") == 0 &&
	       strcmp(descset_file_name(deps[0]), "google/protobuf/timestamp.proto") == 0));
	CHECK_EQ(descset_find_symbol("vm_tools.LaunchProcessRequest", &kind), guest);
	CHECK_EQ(kind, DESCSET_MESSAGE);
	CHECK_EQ(descset_find_symbol("vm_tools.LaunchProcessRequest.argv", &kind), guest);
	CHECK_EQ(kind, DESCSET_FIELD);
	int health = descset_find_file("grpc/health/v1/health.proto");
	CHECK(health >= 0);
	CHECK_EQ(descset_find_symbol("grpc.health.v1.HealthCheckResponse.ServingStatus", &kind), health);
	CHECK_EQ(kind, DESCSET_ENUM);
	/* Enum values are siblings of their enum. */
	CHECK_EQ(descset_find_symbol("grpc.health.v1.HealthCheckResponse.SERVING", &kind), health);
	CHECK_EQ(kind, DESCSET_ENUM_VALUE);
	CHECK_EQ(descset_find_symbol("grpc.reflection.v1alpha.ServerReflectionRequest.message_request", &kind),
		 descset_find_file("grpc/reflection/v1alpha/reflection.proto"));
	CHECK_EQ(kind, DESCSET_ONEOF);
	/* Every valet.v1 file, served yet or not. */
	CHECK(descset_find_symbol("valet.v1.Files.Write", NULL) >= 0);
	CHECK(descset_find_symbol("valet.v1.Process", NULL) >= 0);
	CHECK(descset_find_file("valet/v1/tunnel.proto") >= 0);
	CHECK(descset_find_file("valet/v1/snapshot.proto") >= 0);
	CHECK(descset_find_file("google/protobuf/empty.proto") >= 0);
	CHECK_EQ(descset_find_symbol("", NULL), -ENOENT);
	CHECK_EQ(descset_find_symbol("vm_tools", NULL), -ENOENT);
	CHECK_EQ(descset_find_symbol("vm_tools.Maitred.", NULL), -ENOENT);
	CHECK_EQ(descset_find_symbol(".vm_tools.Maitred", NULL), -ENOENT);
	CHECK_EQ(descset_find_file("nope.proto"), -ENOENT);
	CHECK_EQ(descset_find_file(""), -ENOENT);
}

struct names {
	char text[512];
	size_t n;
};

static int collect(const char *name, size_t len, void *userdata)
{
	struct names *out = userdata;
	size_t used = strlen(out->text);
	snprintf(out->text + used, sizeof(out->text) - used, "%.*s;", (int)len, name);
	out->n++;
	return 0;
}

static int stop_at_second(const char *name, size_t len, void *userdata)
{
	return ++*(int *)userdata == 2 ? -EINTR : 0;
}

TEST(served_services_follow_tables_and_switches)
{
	struct agent a = { 0 };
	struct vmtools v;
	struct grpcstd g;
	struct names got = { "" };
	int calls = 0;

	CHECK_EQ(vmtools_register(&a, &v), 0);
	CHECK_EQ(grpcstd_register(&a, &g), 0);
	CHECK_EQ(grpcstd_for_each_served(a.services, collect, &got), 0);
	/* Once each, in the order registered, though vm_tools.Maitred has six
	 * tables. */
	CHECK_STR(got.text, "vm_tools.Maitred;grpc.health.v1.Health;grpc.reflection.v1.ServerReflection;"
			    "grpc.reflection.v1alpha.ServerReflection;");
	CHECK_EQ(grpcstd_for_each_served(a.services, stop_at_second, &calls), -EINTR);
	CHECK_EQ(calls, 2);
	CHECK(grpcstd_served(a.services, "vm_tools.Maitred", 16));
	CHECK(!grpcstd_served(a.services, "vm_tools.Maitre", 15));
	CHECK(!grpcstd_served(a.services, "vm_tools.Maitred/", 17));
	CHECK(!grpcstd_served(a.services, "", 0));

	/* One method off: still served. Every method of a service off (one
	 * by one or as a whole): not served, not listed. */
	CHECK_EQ(maitred_disable(&a, "vm_tools.Maitred/GetKernelVersion"), 0);
	CHECK_EQ(maitred_disable(&a, "grpc.reflection.v1.ServerReflection"), 0);
	CHECK_EQ(maitred_disable(&a, "grpc.health.v1.Health/Check"), 0);
	CHECK_EQ(maitred_disable(&a, "grpc.health.v1.Health/Watch"), 0);
	CHECK(grpcstd_served(a.services, "vm_tools.Maitred", 16));
	CHECK(grpcstd_served(a.services, "grpc.health.v1.Health", 21));
	CHECK_EQ(maitred_disable(&a, "grpc.health.v1.Health/List"), 0);
	CHECK(!grpcstd_served(a.services, "grpc.health.v1.Health", 21));
	CHECK(!grpcstd_served(a.services, "grpc.reflection.v1.ServerReflection", 35));
	got = (struct names){ "" };
	CHECK_EQ(grpcstd_for_each_served(a.services, collect, &got), 0);
	CHECK_STR(got.text, "vm_tools.Maitred;grpc.reflection.v1alpha.ServerReflection;");
	maitred_switches_free(&a);
	grpcstd_free(&g);
	vmtools_free(&v);
}
