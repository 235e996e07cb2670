// Package exhibits holds the Go article's orchestration snippets as the lab runs them:
// one file per snippet, each as printed at fan-out 3 with the smallest completion it
// needs to run, and its generalisation to fan-out N where the printed lines name three
// channels or three goroutines. docs/patterns.md ("Line by line", Go) maps every line.
//
// What the lab adds to a snippet, and only where a comment says so: Env.Go in place of
// a `go` statement and Env.Func around a function given to g.Go (the census counts the
// goroutine; the snippet's lines are otherwise unchanged), and the fetches bound to the
// lab's calls (fetchUser, fetchOrders, fetchAuth are calls 0, 1 and 2).
package exhibits

import (
	"context"
	"sort"
	"time"

	"orchlab/patterns/go/census"
)

// Call is one downstream request, as the driver builds it.
type Call struct {
	Index      int    // position in the orchestration's calls: the Result's slot
	URL        string // the service URL as given
	Key        uint64 // sent as X-Orchlab-Key when non-zero
	DeadlineNs int64  // absolute CLOCK_MONOTONIC deadline in ns (0: none)
	Window     bool   // sent as X-Orchlab-Phase: window: its orchestration counts (docs/harness.md)
}

// Result answers one Call. The zero value is an empty slot (no answer).
type Result struct {
	Index  int   // the Call's Index: the article's Result would say which service answered
	Done   bool  // the fetch returned (an answer, a transport error or a cancellation)
	Status int   // HTTP status; 0 when no HTTP answer arrived
	Bytes  int64 // body bytes read
	Err    error // nil for a 2xx answer; what went wrong otherwise (as the fetch returned it)
}

// Fetch performs one call, blocking until an answer, a transport error, or ctx's end.
// It returns r.Err as its error: nil only for a 2xx answer.
type Fetch func(ctx context.Context, c Call) (Result, error)

// Env is what an exhibit gets from the driver beside its calls.
type Env struct {
	Census  *census.Orchestration // counts the goroutines the exhibit starts (nil: none)
	Fetch   Fetch
	Timeout time.Duration // the article's 2 * time.Second: what is left of the deadline
	Limit   int           // go-errgroup-limit: g.SetLimit(Limit)
}

// Go is the exhibit's `go f()`, counted by the census.
func (e Env) Go(f func()) { e.Census.Go(f) }

// GoThen is Go(f) followed by then() once the census no longer counts the goroutine.
func (e Env) GoThen(f func(), then func()) { e.Census.GoThen(f, then) }

// Func is f as given to g.Go, counted by the census while it runs.
func (e Env) Func(f func() error) func() error { return e.Census.Func(f) }

// background binds a call to a fetch without a context, as the article's
// fetchUser(id) is: nothing can cancel it.
func (e Env) background(c Call) func() Result {
	return func() Result {
		r, _ := e.Fetch(context.Background(), c)
		return r
	}
}

// Exhibit runs one orchestration of calls and returns what the snippet returns.
type Exhibit func(e Env, calls []Call) ([]Result, error)

// Info describes a registered exhibit.
type Info struct {
	Run Exhibit
	// Form says which lines run at a fan-out: "article" when the printed lines do
	// (or a form the printed lines already have for any N), "fanout-n" for the
	// documented generalisation.
	Form func(fanout int) string
}

func article(int) string { return "article" }

func articleAt3(fanout int) string {
	if fanout == 3 {
		return "article"
	}
	return "fanout-n"
}

var registry = map[string]Info{
	"go-channel-soup":         {ChannelSoup, articleAt3},
	"go-waitgroup-select":     {WaitGroupSelect, articleAt3},
	"go-mutex-aggregation":    {MutexAggregation, article},
	"go-errgroup":             {ErrGroup, article},
	"go-errgroup-limit":       {ErrGroupLimit, article},
	"go-errgroup+collect-all": {ErrGroupCollectAll, article},
	"go-errgroup+ignores-ctx": {ErrGroupIgnoresCtx, article},
}

// Lookup returns the exhibit registered under name.
func Lookup(name string) (Info, bool) {
	i, ok := registry[name]
	return i, ok
}

// Names lists every registered exhibit, sorted.
func Names() []string {
	names := make([]string, 0, len(registry))
	for n := range registry {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}
