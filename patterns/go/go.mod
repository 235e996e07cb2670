module orchlab/patterns/go

go 1.19

// Offline only: x/sync comes from Debian's golang-golang-x-sync-dev (0.1.0, errgroup with
// SetLimit), never from a module proxy. Build with GOFLAGS=-mod=mod GOPROXY=off (the
// Makefile's `make go` and `make test-go` do).
require golang.org/x/sync v0.1.0

replace golang.org/x/sync => /usr/share/gocode/src/golang.org/x/sync
