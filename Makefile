# orchlab — see README.md. Every target installs missing Debian packages first.
#
#   make              Release build (build/release)
#   make test         ASan+UBSan build + ctest, TSan build + ctest, then pytest
#   make bench        full default sweep + micro suite -> results/<UTC stamp>/
#   make bench-quick  the same pipeline on a tiny sweep (under a minute)
#   make bench-mock   orchlab-mock vs nginx under wrk (scripts/bench_mock.sh)
#   make mock CONFIG=mock.json          run orchlab-mock in the foreground
#   make compare OLD=a.json NEW=b.json  compare two reports
#   make plot REPORT=report.json        figures next to the report (plots/)
#   make claims REPORT=report.json      the claims table (Markdown, stdout)

JOBS    ?= $(shell nproc)
PYTHON  ?= /usr/bin/python3
CMAKE   ?= cmake
CTEST_ARGS ?= --output-on-failure --timeout 300 -j3
SAN_FLAGS  := -DCMAKE_BUILD_TYPE= -DCMAKE_CXX_FLAGS="-O0 -g"

.PHONY: all deps release asan tsan test test-asan test-tsan pytest bench bench-build bench-quick \
        bench-mock mock compare plot claims clean

all: release

deps:
	@scripts/install-deps.sh

build/release/CMakeCache.txt: | deps
	$(CMAKE) -S . -B build/release -DCMAKE_BUILD_TYPE=Release

build/asan/CMakeCache.txt: | deps
	$(CMAKE) -S . -B build/asan $(SAN_FLAGS) -DORCHLAB_SANITIZE=address

build/tsan/CMakeCache.txt: | deps
	$(CMAKE) -S . -B build/tsan $(SAN_FLAGS) -DORCHLAB_SANITIZE=thread

release: deps build/release/CMakeCache.txt
	$(CMAKE) --build build/release -j $(JOBS)

asan: deps build/asan/CMakeCache.txt
	$(CMAKE) --build build/asan -j $(JOBS)

tsan: deps build/tsan/CMakeCache.txt
	$(CMAKE) --build build/tsan -j $(JOBS)

test-asan: asan
	cd build/asan && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 ctest $(CTEST_ARGS)

test-tsan: tsan
	cd build/tsan && TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 ctest $(CTEST_ARGS)

pytest: deps
	$(PYTHON) -m pytest -q scripts/tests

test: test-asan test-tsan pytest

STAMP := $(shell date -u +%Y%m%dT%H%M%SZ)

# The benchmarks need three programs, not the test binaries: a cold
# `make bench` then spends its time measuring, not compiling tests.
BENCH_TARGETS := orchlab orchlab-micro orchlab-mock

bench-build: deps build/release/CMakeCache.txt
	$(CMAKE) --build build/release -j $(JOBS) --target $(BENCH_TARGETS)

bench: bench-build
	scripts/bench.sh build/release results/$(STAMP) scenarios/default.json

bench-quick: bench-build
	scripts/bench.sh build/release results/$(STAMP) scenarios/quick.json --quick

bench-mock: bench-build
	scripts/bench_mock.sh build/release/mock_services/orchlab-mock

mock: bench-build
	@test -n "$(CONFIG)" || { echo "usage: make mock CONFIG=file.json" >&2; exit 2; }
	build/release/mock_services/orchlab-mock --config $(CONFIG)

compare: deps
	@test -n "$(OLD)" -a -n "$(NEW)" || { echo "usage: make compare OLD=a.json NEW=b.json" >&2; exit 2; }
	$(PYTHON) scripts/compare.py $(OLD) $(NEW)

plot: deps
	@test -n "$(REPORT)" || { echo "usage: make plot REPORT=report.json" >&2; exit 2; }
	$(PYTHON) scripts/plot.py $(REPORT) -o $(dir $(REPORT))plots

claims: deps
	@test -n "$(REPORT)" || { echo "usage: make claims REPORT=report.json" >&2; exit 2; }
	$(PYTHON) scripts/claims.py $(REPORT)

clean:
	rm -rf build
