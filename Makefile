# Thin driver over Meson. `make` builds, `make check` runs every test suite
# (a normal build and an ASan+UBSan build), `make demo` runs the main job.
BUILD      ?= build
BUILD_ASAN ?= build-asan
PY         := /usr/bin/python3

.PHONY: all deps build build-asan check check-fast demo bench format clean

all: build

deps:
	@scripts/install-deps.sh

$(BUILD)/build.ninja: | deps
	meson setup $(BUILD) >/dev/null

$(BUILD_ASAN)/build.ninja: | deps
	meson setup $(BUILD_ASAN) -Db_sanitize=address,undefined -Db_lundef=false -Dbuildtype=debug >/dev/null

build: deps $(BUILD)/build.ninja
	ninja -C $(BUILD)

build-asan: deps $(BUILD_ASAN)/build.ninja
	ninja -C $(BUILD_ASAN)

# Every suite, both builds; the last line is "N passed, N failed".
check: build build-asan
	$(PY) tests/runner.py --build $(BUILD) --build $(BUILD_ASAN)

# The normal build only, for a quick round while editing.
check-fast: build
	$(PY) tests/runner.py --build $(BUILD)

demo: build
	scripts/demo.sh $(BUILD)

# Benchmarks measure the static build: what a VM image ships.
bench: deps
	@scripts/install-deps.sh --bench
	[ -f build-static/build.ninja ] || meson setup build-static -Dstatic=true -Dbuildtype=minsize >/dev/null
	ninja -C build-static
	$(PY) bench/launch_bench.py --build build-static
	$(PY) bench/vsh_bench.py --build build-static

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf $(BUILD) $(BUILD_ASAN)
