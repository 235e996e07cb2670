package exhibits_test

import (
	"context"
	"errors"
	"testing"
	"time"

	exhibits "orchlab/patterns/go"
	"orchlab/patterns/go/census"
	"orchlab/patterns/go/fetch"
	"orchlab/patterns/go/internal/testserver"
)

// harness runs one orchestration of an exhibit against a test server, as the driver
// does, and keeps what the tests look at.
type run struct {
	results []exhibits.Result
	err     error
	elapsed time.Duration
	leaked  int64 // census: tasks live at return
	ledger  *census.Ledger
}

func orchestrate(t *testing.T, name string, timeout time.Duration, limit int, urls ...string) run {
	t.Helper()
	info, ok := exhibits.Lookup(name)
	if !ok {
		t.Fatalf("no exhibit %q", name)
	}
	client := fetch.New(nil)
	ledger := &census.Ledger{}
	o := ledger.Open()
	calls := make([]exhibits.Call, len(urls))
	for i, u := range urls {
		calls[i] = exhibits.Call{Index: i, URL: u, Key: uint64(i + 1)}
	}
	env := exhibits.Env{Census: o, Fetch: client.For(o, nil), Timeout: timeout, Limit: limit}
	start := time.Now()
	results, err := info.Run(env, calls)
	r := run{results: results, err: err, elapsed: time.Since(start), ledger: ledger}
	r.leaked = o.Return()
	return r
}

func kinds(rs []exhibits.Result) map[fetch.Kind]int {
	m := map[fetch.Kind]int{}
	for _, r := range rs {
		m[fetch.Classify(r)]++
	}
	return m
}

var all = []string{"go-channel-soup", "go-waitgroup-select", "go-mutex-aggregation",
	"go-errgroup", "go-errgroup-limit", "go-errgroup+collect-all", "go-errgroup+ignores-ctx"}

func TestHealthyCallsCompleteAtFanout3AndN(t *testing.T) {
	s := testserver.Start()
	defer s.Close()
	for _, name := range all {
		for _, n := range []int{3, 5} {
			urls := make([]string, n)
			for i := range urls {
				urls[i] = s.At("delay_ms=5")
			}
			r := orchestrate(t, name, time.Second, 2, urls...)
			if r.err != nil || len(r.results) != n || kinds(r.results)[fetch.OK] != n {
				t.Errorf("%s fan-out %d: err %v, results %d, kinds %v", name, n, r.err, len(r.results), kinds(r.results))
			}
			seen := map[int]bool{}
			for _, res := range r.results {
				seen[res.Index] = true
			}
			if len(seen) != n {
				t.Errorf("%s fan-out %d: slots %v", name, n, seen)
			}
			if !r.ledger.WaitIdle(time.Second) {
				t.Errorf("%s: tasks still live after a healthy run", name)
			}
		}
	}
}

// The anti-patterns cannot cancel: on timeout the hanging call goes on (the server
// sees no abort), its goroutines outlive the return, and its answer comes late.
func TestAntiPatternsLeakAndCannotCancel(t *testing.T) {
	for _, name := range []string{"go-channel-soup", "go-waitgroup-select"} {
		for _, n := range []int{3, 4} {
			s := testserver.Start()
			urls := []string{s.At("delay_ms=5"), s.At("hang=1")}
			for len(urls) < n {
				urls = append(urls, s.At("delay_ms=5"))
			}
			const timeout = 100 * time.Millisecond
			r := orchestrate(t, name, timeout, 0, urls...)
			if r.err == nil || r.err.Error() != "timeout" {
				t.Errorf("%s/%d: err %v, want timeout", name, n, r.err)
			}
			if r.elapsed < timeout || r.elapsed > 5*timeout {
				t.Errorf("%s/%d: returned after %v", name, n, r.elapsed)
			}
			if r.leaked < 1 {
				t.Errorf("%s/%d: %d tasks live at return, want the hanging call's", name, n, r.leaked)
			}
			// the fast calls end; a cancellation would have reached the server by then
			testserver.Eventually(2*time.Second, func() bool { return s.InFlight.Load() == 1 })
			time.Sleep(100 * time.Millisecond)
			if a := s.Aborts.Load(); a != 0 {
				t.Errorf("%s/%d: server saw %d aborts, want none (nothing can cancel)", name, n, a)
			}
			if s.InFlight.Load() != 1 {
				t.Errorf("%s/%d: %d requests in flight at the server, want the hanging one", name, n, s.InFlight.Load())
			}
			s.Release()
			if !r.ledger.WaitIdle(2 * time.Second) {
				t.Fatalf("%s/%d: tasks still live after the release", name, n)
			}
			tot := r.ledger.Totals()
			if tot.LateCompletions < 1 || tot.ZombieNs < int64(100*time.Millisecond) {
				t.Errorf("%s/%d: late completions %d, zombie %v", name, n, tot.LateCompletions, time.Duration(tot.ZombieNs))
			}
			s.Close()
		}
	}
}

// The waitgroup variant's waiter goroutine, blocked in wg.Wait(), is one of the
// leaked tasks.
func TestWaitGroupSelectLeaksItsWaiter(t *testing.T) {
	s := testserver.Start()
	defer s.Close()
	// 300 ms: the 1 ms calls are over by then even on a loaded machine.
	r := orchestrate(t, "go-waitgroup-select", 300*time.Millisecond, 0, s.At("hang=1"), s.At("delay_ms=1"), s.At("delay_ms=1"))
	if r.leaked != 2 { // the hanging call and the waiter
		t.Errorf("leaked %d at return, want 2", r.leaked)
	}
	if r.results != nil {
		t.Errorf("results on timeout: %v, want nil", r.results)
	}
}

// The soup's timer restarts with every result: replies 0.6 timeouts apart arrive
// in time for each new timer, and the soup returns after the last, past its deadline.
func TestChannelSoupTimerRestartsPerResult(t *testing.T) {
	s := testserver.Start()
	defer s.Close()
	const d = 300 * time.Millisecond
	for _, extra := range []int{0, 1} { // fan-out 3 (article) and 4 (reflect.Select)
		urls := []string{s.At("delay_ms=180"), s.At("delay_ms=360"), s.At("delay_ms=540")}
		if extra == 1 {
			urls = append(urls, s.At("delay_ms=5"))
		}
		r := orchestrate(t, "go-channel-soup", d, 0, urls...)
		if r.err != nil || kinds(r.results)[fetch.OK] != len(urls) {
			t.Errorf("fan-out %d: err %v, kinds %v; want every result", len(urls), r.err, kinds(r.results))
		}
		if r.elapsed < 530*time.Millisecond {
			t.Errorf("fan-out %d: returned after %v, want after the last reply (540 ms), past the %v deadline", len(urls), r.elapsed, d)
		}
		// the fixed-deadline shapes return at the deadline without the last reply
		w := orchestrate(t, "go-waitgroup-select", d, 0, urls...)
		if w.err == nil || w.elapsed > 500*time.Millisecond {
			t.Errorf("waitgroup: err %v after %v, want a timeout at %v", w.err, w.elapsed, d)
		}
	}
}

// An error does not end the anti-patterns' wait: they wait for the slow siblings.
func TestAntiPatternsWaitForSiblingsAfterAnError(t *testing.T) {
	s := testserver.Start()
	defer s.Close()
	for _, name := range []string{"go-channel-soup", "go-waitgroup-select", "go-mutex-aggregation", "go-errgroup+collect-all"} {
		r := orchestrate(t, name, time.Second, 0, s.At("status=503"), s.At("delay_ms=120"), s.At("delay_ms=120"))
		if r.elapsed < 110*time.Millisecond {
			t.Errorf("%s: returned after %v, before the siblings", name, r.elapsed)
		}
		if k := kinds(r.results); k[fetch.HTTP] != 1 || k[fetch.OK] != 2 {
			t.Errorf("%s: kinds %v", name, k)
		}
	}
}

// errgroup cancels the siblings on the first error: the server sees their requests'
// contexts end, and nothing outlives the return.
func TestErrGroupCancelsSiblingsOnFirstError(t *testing.T) {
	for _, name := range []string{"go-errgroup", "go-errgroup-limit"} {
		s := testserver.Start()
		r := orchestrate(t, name, 5*time.Second, 3, s.At("delay_ms=10&status=503"), s.At("hang=1"), s.At("hang=1"))
		var se fetch.StatusError
		if !errors.As(r.err, &se) || se.Status != 503 {
			t.Errorf("%s: err %v, want HTTP 503", name, r.err)
		}
		if r.elapsed > time.Second {
			t.Errorf("%s: returned after %v", name, r.elapsed)
		}
		if r.leaked != 0 {
			t.Errorf("%s: %d tasks live at return", name, r.leaked)
		}
		if !testserver.Eventually(2*time.Second, func() bool { return s.Aborts.Load() == 2 }) {
			t.Errorf("%s: server saw %d aborts, want the 2 siblings'", name, s.Aborts.Load())
		}
		s.Close()
	}
}

func TestErrGroupCancelsAtTheDeadline(t *testing.T) {
	for _, name := range []string{"go-errgroup", "go-errgroup-limit", "go-errgroup+collect-all"} {
		s := testserver.Start()
		const d = 100 * time.Millisecond
		r := orchestrate(t, name, d, 3, s.At("hang=1"), s.At("hang=1"), s.At("delay_ms=1"))
		if r.elapsed < d || r.elapsed > 5*d {
			t.Errorf("%s: returned after %v, want at %v", name, r.elapsed, d)
		}
		if name != "go-errgroup+collect-all" && !errors.Is(r.err, context.DeadlineExceeded) {
			t.Errorf("%s: err %v, want deadline exceeded", name, r.err)
		}
		if r.leaked != 0 {
			t.Errorf("%s: %d tasks live at return", name, r.leaked)
		}
		// Every call the server had not answered by the deadline is aborted: the two
		// hanging ones, and the 1 ms one too if a loaded machine delayed it that long.
		if !testserver.Eventually(2*time.Second, func() bool {
			return s.Aborts.Load() >= 2 && s.Aborts.Load()+s.Answered.Load() == 3
		}) {
			t.Errorf("%s: server saw %d aborts and %d answers, want the 2 hanging calls aborted", name, s.Aborts.Load(), s.Answered.Load())
		}
		s.Close()
	}
}

func TestErrGroupLimitBoundsInFlightCalls(t *testing.T) {
	s := testserver.Start()
	defer s.Close()
	urls := make([]string, 8)
	for i := range urls {
		urls[i] = s.At("delay_ms=30")
	}
	r := orchestrate(t, "go-errgroup-limit", 5*time.Second, 2, urls...)
	if r.err != nil || kinds(r.results)[fetch.OK] != 8 {
		t.Fatalf("err %v, kinds %v", r.err, kinds(r.results))
	}
	if m := s.MaxInFlight.Load(); m > 2 {
		t.Errorf("server saw %d calls in flight, limit 2", m)
	}
	if r.elapsed < 4*30*time.Millisecond {
		t.Errorf("8 calls at limit 2 took %v, want 4 rounds of 30 ms", r.elapsed)
	}
	s.MaxInFlight.Store(0)
	orchestrate(t, "go-errgroup", 5*time.Second, 0, urls...)
	if m := s.MaxInFlight.Load(); m < 3 {
		t.Errorf("unlimited errgroup peaked at %d in flight", m)
	}
}

func TestCollectAllKeepsEverySlotsError(t *testing.T) {
	s := testserver.Start()
	defer s.Close()
	r := orchestrate(t, "go-errgroup+collect-all", 5*time.Second, 0,
		s.At("status=503"), s.At("delay_ms=20&status=500"), s.At("delay_ms=40"), "http://127.0.0.1:1/refused")
	if r.err != nil {
		t.Errorf("err %v, want nil (errors handled internally)", r.err)
	}
	want := []fetch.Kind{fetch.HTTP, fetch.HTTP, fetch.OK, fetch.Transport}
	for i, k := range want {
		if got := fetch.Classify(r.results[i]); got != k {
			t.Errorf("slot %d: %v (%v), want kind %d", i, got, r.results[i].Err, k)
		}
	}
	var se fetch.StatusError
	if !errors.As(r.results[1].Err, &se) || se.Status != 500 {
		t.Errorf("slot 1 kept %v, want HTTP 500", r.results[1].Err)
	}
	if s.Aborts.Load() != 0 {
		t.Errorf("an error stopped %d siblings", s.Aborts.Load())
	}
}

func TestMutexAggregationWaitsForTheSlowestCall(t *testing.T) {
	s := testserver.Start()
	defer s.Close()
	r := orchestrate(t, "go-mutex-aggregation", 50*time.Millisecond, 0, s.At("delay_ms=200"), s.At("delay_ms=1"), s.At("delay_ms=1"))
	if r.elapsed < 190*time.Millisecond || r.err != nil || len(r.results) != 3 {
		t.Errorf("returned after %v with %d results, err %v; want after the slowest call", r.elapsed, len(r.results), r.err)
	}
	if r.leaked != 0 {
		t.Errorf("%d tasks live at return", r.leaked)
	}
}

// The FAQ: a call that ignores ctx holds g.Wait() past the deadline until its service
// answers, while its sibling is aborted at the deadline; go-errgroup, whose calls all
// carry ctx, returns at the deadline. Nothing leaks either way.
func TestErrGroupIgnoresCtxWaitsForTheIgnoringCall(t *testing.T) {
	const d = 100 * time.Millisecond
	const hold = 500 * time.Millisecond // the hanging call answers then
	for _, name := range []string{"go-errgroup+ignores-ctx", "go-errgroup"} {
		s := testserver.Start()
		release := time.AfterFunc(hold, s.Release)
		// call 0 is the one go-errgroup+ignores-ctx makes with context.Background()
		r := orchestrate(t, name, d, 0, s.At("hang=1"), s.At("hang=1"), s.At("delay_ms=1"))
		release.Stop()
		if name == "go-errgroup+ignores-ctx" {
			if r.elapsed < hold-10*time.Millisecond {
				t.Errorf("%s: returned after %v, want after the ignoring call (%v)", name, r.elapsed, hold)
			}
			if got := fetch.Classify(r.results[0]); got != fetch.OK {
				t.Errorf("%s: the ignoring call's slot is %v (%v), want its late answer", name, got, r.results[0].Err)
			}
		} else if r.elapsed < d || r.elapsed > 4*d {
			t.Errorf("%s: returned after %v, want at %v", name, r.elapsed, d)
		}
		if !errors.Is(r.err, context.DeadlineExceeded) {
			t.Errorf("%s: err %v, want deadline exceeded", name, r.err)
		}
		if r.leaked != 0 {
			t.Errorf("%s: %d tasks live at return", name, r.leaked)
		}
		// The sibling that carries ctx is aborted at the deadline in both; go-errgroup
		// aborts call 0 as well.
		want := int64(2)
		if name == "go-errgroup+ignores-ctx" {
			want = 1
		}
		if !testserver.Eventually(time.Second, func() bool { return s.Aborts.Load() == want }) {
			t.Errorf("%s: server saw %d aborts, want %d", name, s.Aborts.Load(), want)
		}
		s.Close()
	}
}
