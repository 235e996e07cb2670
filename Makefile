# orchlab — see README.md. Every target installs missing Debian packages first.
#
#   make              Release build (build/release)
#   make test         ASan+UBSan build + ctest, TSan build + ctest, the measurement
#                     tests on Release programs, pytest, test-go, fuzz-smoke
#   make go           the Go exhibits' driver, build/go/orchlab-go (offline: Debian's Go)
#   make test-go      go vet + go test -race on patterns/go (seconds, once compiled)
#   make go-micro     BM_Aggregate's testing.B twin (patterns/go/aggregate): build/go/go_micro.json
#   make demos        the Go demonstrations (patterns/go/demo): build, run, build/go/demos.json
#   make bench        full default sweep + micro suite -> results/<UTC stamp>/
#   make bench-quick  the same pipeline on a tiny sweep (under a minute)
#   make bench RESUME=results/<stamp>  continue an interrupted bench from its journal
#   make bench-scaling the scaling sweeps (fan-out, callers), out of make bench for time
#   make bench-mock   orchlab-mock vs nginx under wrk (scripts/bench_mock.sh)
#   make bench-client async-group CPU per call vs wrk per request (CLIENT_ROUNDS=3 CLIENT_S=4)
#   make callgrind-client  async-group's instructions per call, counted by callgrind
#   make mock CONFIG=mock.json          run orchlab-mock in the foreground
#   make compare OLD=a.json NEW=b.json  compare two reports (HTML=out.html: also a page)
#   make plot REPORT=report.json        figures next to the report (plots/)
#   make claims REPORT=report.json      the claims table (Markdown, stdout)
#   make html REPORT=report.json        index.html next to the report
#   make fuzz FUZZ_S=60  libFuzzer targets (clang++, build/fuzz), FUZZ_S seconds each
#   make fuzz-smoke      the same for 10 s each (part of make test when clang++ is present)

JOBS    ?= $(shell nproc)
PYTHON  ?= /usr/bin/python3
CLIENT_ROUNDS ?= 3
CLIENT_S ?= 4
CMAKE   ?= cmake
CTEST_ARGS ?= --output-on-failure --timeout 300 -j3
SAN_FLAGS  := -DCMAKE_BUILD_TYPE= -DCMAKE_CXX_FLAGS="-O0 -g1"
# Go from Debian only (golang-go, golang-golang-x-sync-dev): go.mod replaces x/sync
# with /usr/share/gocode's copy, and nothing is ever fetched from a module proxy.
GO      ?= go
GO_ENV  := GOFLAGS=-mod=mod GOPROXY=off GOSUMDB=off GOCACHE=$(CURDIR)/build/go/cache

.PHONY: all deps release asan tsan test test-asan test-tsan test-release pytest bench bench-build bench-quick bench-scaling bench-client callgrind-client \
        bench-mock mock compare plot claims html clean fuzz fuzz-build fuzz-smoke test-fuzz go test-go demos go-micro

all: release go

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

test-asan: asan go
	cd build/asan && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 ctest $(CTEST_ARGS)

test-tsan: tsan go
	cd build/tsan && TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 ctest $(CTEST_ARGS)

pytest: deps
	$(PYTHON) -m pytest -q scripts/tests

# What a sanitizer distorts (RSS, CPU, the open loop's schedule) is measured
# against the Release programs: the whole-program measurement tests only.
test-release: deps build/release/CMakeCache.txt go
	$(CMAKE) --build build/release -j $(JOBS) --target orchlab orchlab-mock
	cd build/release && ctest $(CTEST_ARGS) -R '^harness_(measure|shard)_'

test: test-asan test-tsan test-release pytest test-go test-fuzz

# The Go exhibits and their driver (docs/drivers.md). test-go's integration test runs
# against build/release's orchlab-mock when it exists (ORCHLAB_MOCK=path: another).
go: deps
	cd patterns/go && $(GO_ENV) $(GO) build -o $(CURDIR)/build/go/orchlab-go ./cmd/orchlab-go

test-go: deps
	cd patterns/go && $(GO_ENV) $(GO) vet ./... && $(GO_ENV) $(GO) test -race -count=1 ./... && \
	  $(GO_ENV) $(GO) test -run '^$$' -bench . -benchtime=1x -cpu 1,2 ./aggregate/

# BM_Aggregate's Go twin (claims 5 and 9 in Go), as make bench runs it: build/go/go_micro.json.
go-micro: deps
	$(GO_ENV) $(PYTHON) scripts/go_micro.py --go $(GO) -o build/go/go_micro.json

# The Go demonstrations (claims 12 and 13): each program built (with -race where its claim
# is about races) and run once; make bench writes the same file into its results folder.
demos: deps
	$(GO_ENV) $(PYTHON) scripts/demos.py --go $(GO) -o build/go/demos.json

# libFuzzer targets (docs/fuzzing.md): clang++ only, in their own tree.
FUZZ_S       ?= 60
FUZZ_TARGETS := fuzz_mock_request fuzz_config fuzz_scenario
FUZZ_FLAGS   := -DCMAKE_CXX_COMPILER=clang++ -DORCHLAB_FUZZ=ON -DCMAKE_BUILD_TYPE= \
                -DCMAKE_CXX_FLAGS="-O1 -g"

build/fuzz/CMakeCache.txt: | deps
	$(CMAKE) -S . -B build/fuzz $(FUZZ_FLAGS)

fuzz-build: deps build/fuzz/CMakeCache.txt
	$(CMAKE) --build build/fuzz -j $(JOBS) --target $(FUZZ_TARGETS)

fuzz: fuzz-build
	scripts/fuzz.sh build/fuzz $(FUZZ_S)

fuzz-smoke: fuzz-build
	scripts/fuzz.sh build/fuzz 10

test-fuzz:
	@if command -v clang++ >/dev/null 2>&1; then $(MAKE) --no-print-directory fuzz-smoke; \
	else echo "test-fuzz: skipped, clang++ not found (the fuzz targets need libFuzzer)"; fi

STAMP := $(shell date -u +%Y%m%dT%H%M%SZ)

# The benchmarks need three programs, not the test binaries: a cold
# `make bench` then spends its time measuring, not compiling tests.
BENCH_TARGETS := orchlab orchlab-micro orchlab-mock

bench-build: deps build/release/CMakeCache.txt go
	$(CMAKE) --build build/release -j $(JOBS) --target $(BENCH_TARGETS)

bench: bench-build
	scripts/bench.sh build/release $(or $(RESUME),results/$(STAMP)) scenarios/default.json $(if $(RESUME),--resume)

bench-quick: bench-build
	scripts/bench.sh build/release $(or $(RESUME),results/$(STAMP)) scenarios/quick.json --quick $(if $(RESUME),--resume)

bench-scaling: bench-build
	scripts/bench.sh build/release $(or $(RESUME),results/$(STAMP)) scenarios/scaling.json --quick $(if $(RESUME),--resume)

bench-mock: bench-build
	scripts/bench_mock.sh build/release/mock_services/orchlab-mock

bench-client: bench-build
	scripts/bench_client.sh build/release $(CLIENT_ROUNDS) $(CLIENT_S)

callgrind-client: bench-build
	scripts/callgrind_client.sh build/release

mock: bench-build
	@test -n "$(CONFIG)" || { echo "usage: make mock CONFIG=file.json" >&2; exit 2; }
	build/release/mock_services/orchlab-mock --config $(CONFIG)

compare: deps
	@test -n "$(OLD)" -a -n "$(NEW)" || { echo "usage: make compare OLD=a.json NEW=b.json [HTML=compare.html]" >&2; exit 2; }
	@if [ -n "$(HTML)" ]; then $(PYTHON) scripts/compare_html.py $(OLD) $(NEW) -o $(HTML); fi
	$(PYTHON) scripts/compare.py $(OLD) $(NEW)

plot: deps
	@test -n "$(REPORT)" || { echo "usage: make plot REPORT=report.json" >&2; exit 2; }
	$(PYTHON) scripts/plot.py $(REPORT) -o $(dir $(REPORT))plots

claims: deps
	@test -n "$(REPORT)" || { echo "usage: make claims REPORT=report.json" >&2; exit 2; }
	$(PYTHON) scripts/claims.py $(REPORT)

html: deps
	@test -n "$(REPORT)" || { echo "usage: make html REPORT=report.json" >&2; exit 2; }
	$(PYTHON) scripts/report_html.py $(REPORT)

clean:
	rm -rf build
