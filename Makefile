# Thin driver over Meson. `make` builds, `make check` runs every test suite
# (a normal build, an ASan+UBSan build, and the VM test with the static
# build), `make demo` boots the VM and opens a vsh shell in it. Each target
# installs the Debian packages it needs, and only those
# (scripts/install-deps.sh MODE).
BUILD        ?= build
BUILD_ASAN   ?= build-asan
BUILD_STATIC ?= build-static
BUILD_INSTALL ?= build-install
BUILD_CLANG  ?= build-clang
PREFIX       ?= /usr/local
DESTDIR      ?=
# Seconds each fuzz target runs in `make fuzz`; which nghttp2 it links.
FUZZ_SECONDS ?= 10
FUZZ_NGHTTP2 ?= instrumented
BUILD_FUZZ   ?= $(if $(filter system,$(FUZZ_NGHTTP2)),build-fuzz-sys,build-fuzz)
PY         := /usr/bin/python3

.PHONY: all deps build build-asan build-static check check-fast check-clang demo demo-sandbox bench fuzz format \
	clean install

all: build

# What building needs; the test and demo targets install more first.
deps:
	@scripts/install-deps.sh build

$(BUILD)/build.ninja: | deps
	meson setup $(BUILD) >/dev/null

$(BUILD_ASAN)/build.ninja: | deps
	meson setup $(BUILD_ASAN) -Db_sanitize=address,undefined -Db_lundef=false -Dbuildtype=debug >/dev/null

build: deps $(BUILD)/build.ninja
	ninja -C $(BUILD)

build-asan: deps $(BUILD_ASAN)/build.ninja
	ninja -C $(BUILD_ASAN)

# Static programs: what the VM image and the benchmarks use.
$(BUILD_STATIC)/build.ninja: | deps
	meson setup $(BUILD_STATIC) -Dstatic=true -Dbuildtype=minsize >/dev/null

build-static: deps $(BUILD_STATIC)/build.ninja
	ninja -C $(BUILD_STATIC)

# Every suite, both builds, then the VM; the last line is "N passed, N failed".
# The suites of a build run in parallel (tests/runner.py). The clang build
# only has to compile without a warning.
check:
	@scripts/install-deps.sh vm --reconfigure $(BUILD) --reconfigure $(BUILD_ASAN) --reconfigure $(BUILD_STATIC)
	@$(MAKE) --no-print-directory build build-asan build-static check-clang
	$(PY) tests/runner.py --build $(BUILD) --build $(BUILD_ASAN) --vm $(BUILD_STATIC)

# The normal build only, no VM, for a quick round while editing.
check-fast:
	@scripts/install-deps.sh check --reconfigure $(BUILD)
	@$(MAKE) --no-print-directory build
	$(PY) tests/runner.py --build $(BUILD)

# Everything built with clang 14 as well, -Wall -Wextra -Wcomma as errors.
$(BUILD_CLANG)/build.ninja:
	@scripts/install-deps.sh clang
	CC=clang meson setup $(BUILD_CLANG) -Dc_args=-Wcomma >/dev/null

check-clang: $(BUILD_CLANG)/build.ninja
	@scripts/install-deps.sh clang
	ninja -C $(BUILD_CLANG)

# Boots the VM (maitred as init) and ends in a vsh shell inside it.
demo:
	@scripts/install-deps.sh demo
	@$(MAKE) --no-print-directory build-static
	$(PY) scripts/vm-demo.py $(BUILD_STATIC)

# The same RPCs against maitred in namespaces on this machine, no VM.
demo-sandbox:
	@scripts/install-deps.sh sandbox
	@$(MAKE) --no-print-directory build
	scripts/demo.sh $(BUILD)

# Benchmarks measure the static build: what a VM image ships.
bench:
	@scripts/install-deps.sh bench
	@$(MAKE) --no-print-directory build-static
	$(PY) bench/launch_bench.py --build $(BUILD_STATIC)
	$(PY) bench/vsh_bench.py --build $(BUILD_STATIC)
	$(PY) bench/hvsock_bench.py --build $(BUILD_STATIC)
	$(PY) bench/files_bench.py --build $(BUILD_STATIC)
	$(PY) bench/tunnel_bench.py --build $(BUILD_STATIC)
	$(PY) bench/sdk_bench.py --build $(BUILD_STATIC)
	$(PY) bench/process_bench.py --build $(BUILD_STATIC)
	$(PY) bench/process_exec_bench.py --build $(BUILD_STATIC)
	$(MAKE) build
	$(PY) bench/grpc_bench.py --build $(BUILD_STATIC) --peer-build $(BUILD)
	$(PY) bench/vm_boot_bench.py --build $(BUILD_STATIC)

# Installs into $(DESTDIR)$(PREFIX): programs, manual pages, systemd units,
# bash completions, an example boot job. Built in a directory of its own,
# without the tests, benchmarks and fuzz targets.
install: deps
	@test -f $(BUILD_INSTALL)/build.ninja || meson setup $(BUILD_INSTALL) -Dbuildtype=release -Dtests=false >/dev/null
	meson configure $(BUILD_INSTALL) -Dprefix=$(PREFIX)
	ninja -C $(BUILD_INSTALL)
	meson install -C $(BUILD_INSTALL) --no-rebuild $(if $(DESTDIR),--destdir $(DESTDIR))

# libFuzzer targets (clang, ASan+UBSan) linked against nghttp2 built from
# Debian's source with the same instrumentation (cached in ~/.cache/valet-fuzz);
# each runs FUZZ_SECONDS seconds over its corpus. FUZZ_NGHTTP2=system links
# the system library instead (our side only), in its own build directory.
# docs/fuzzing.md.
fuzz:
	@scripts/install-deps.sh fuzz
	@if [ "$(FUZZ_NGHTTP2)" = system ]; then pc=; \
	else prefix=$$(nice -n 19 fuzz/build-nghttp2.sh) || exit 1; pc=$$prefix/lib/pkgconfig; fi; \
	if [ ! -f $(BUILD_FUZZ)/build.ninja ]; then \
		CC=clang meson setup $(BUILD_FUZZ) -Dfuzzing=true -Db_sanitize=address,undefined -Db_lundef=false \
			-Dpkg_config_path=$$pc >/dev/null; \
	else meson configure $(BUILD_FUZZ) -Dpkg_config_path=$$pc; fi
	nice -n 19 ninja -C $(BUILD_FUZZ) $(patsubst fuzz/%.c,fuzz/%,$(wildcard fuzz/fuzz-*.c))
	fuzz/run.sh $(BUILD_FUZZ) $(FUZZ_SECONDS)

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf $(BUILD) $(BUILD_ASAN) $(BUILD_STATIC) $(BUILD_INSTALL) $(BUILD_CLANG) build-fuzz build-fuzz-sys
