package main

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	exhibits "orchlab/patterns/go"
	"orchlab/patterns/go/census"
	"orchlab/patterns/go/fetch"
	"orchlab/patterns/go/internal/testserver"
)

// The tracer under concurrency (go test -race): every call's start, reply and the end
// of the goroutine that made it, in that order; a goroutine that made no call stamps
// nothing; a full table records no more.
func TestTracerStampsEachCallAndItsGoroutinesEnd(t *testing.T) {
	const n = 64
	tr := newTracer(16, n, 4)
	tr.install()
	defer tr.uninstall()
	base := tr.claim(n)
	if base != 0 {
		t.Fatalf("first block at %d", base)
	}
	if tr.claim(1) != -1 {
		t.Fatal("a full table gave out another record")
	}
	inner := func(ctx context.Context, c exhibits.Call) (exhibits.Result, error) {
		time.Sleep(time.Millisecond)
		return exhibits.Result{Index: c.Index, Done: true, Status: 200}, nil
	}
	f := tr.wrap(inner, base)
	ledger := &census.Ledger{}
	o := ledger.Open()
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		i := i
		wg.Add(1)
		o.GoThen(func() {
			f(context.Background(), exhibits.Call{Index: i})
			time.Sleep(2 * time.Millisecond) // the task outlives its call
		}, wg.Done)
	}
	wg.Add(1)
	o.GoThen(func() {}, wg.Done) // a task with no call (a waiter)
	wg.Wait()
	o.Return()
	for i := 0; i < n; i++ {
		r := &tr.calls[i]
		start, reply, end := r.start.Load(), r.reply.Load(), r.taskEnd.Load()
		if start == 0 || reply < start || end < reply+int64(time.Millisecond) {
			t.Errorf("call %d: start %d reply %d task end %d", i, start, reply, end)
		}
		if r.status.Load() != 200 || outcomeOf(fetch.Kind(r.kind.Load())) != "answered" {
			t.Errorf("call %d: status %d kind %d", i, r.status.Load(), r.kind.Load())
		}
	}
	tr.mu.Lock()
	defer tr.mu.Unlock()
	if len(tr.pending) != 0 {
		t.Errorf("%d goroutines still pending after every task ended", len(tr.pending))
	}
}

// The samples, by the harness's rule: the first timed-out and the first failed by
// start, then two nearest the p50 and two nearest the p99, never one recorded in part.
func TestChooseFollowsTheHarnesssRule(t *testing.T) {
	var lat logHistogram
	var recs []orchRec
	for i := 0; i < 200; i++ {
		d := int64(10+i%10) * int64(time.Millisecond)
		v := "complete"
		switch i {
		case 3, 150:
			v = "timed_out"
			d = 100 * int64(time.Millisecond)
		case 7:
			v = "failed"
		}
		r := orchRec{intended: int64(i) * 1e9, start: int64(i) * 1e9, verdict: v, base: i}
		r.end = r.start + d
		if i == 3 {
			r.base = -1 // its calls were not recorded: never drawn
		}
		recs = append(recs, r)
		lat.record(uint64(d))
	}
	picked, why := choose(recs, &lat)
	want := []string{"first timed-out", "first failed", "near p50", "near p50", "near p99", "near p99"}
	if len(picked) != len(want) {
		t.Fatalf("picked %v (%v)", picked, why)
	}
	for k := range want {
		if why[k] != want[k] {
			t.Errorf("sample %d is %q, want %q", k, why[k], want[k])
		}
	}
	if picked[0] != 150 || picked[1] != 7 {
		t.Errorf("first timed-out %d (3 has no calls), first failed %d", picked[0], picked[1])
	}
	seen := map[int]bool{}
	for _, i := range picked {
		if seen[i] {
			t.Errorf("orchestration %d sampled twice", i)
		}
		seen[i] = true
	}
}

func traceOf(t *testing.T, m map[string]any) []any {
	t.Helper()
	tr, ok := m["trace"].(map[string]any)
	if !ok {
		t.Fatalf("no trace in the measurement")
	}
	if tr["clock"] != "CLOCK_MONOTONIC ns" || num(t, tr, "orchestrations_recorded") < 1 {
		t.Fatalf("trace %v", tr)
	}
	return tr["orchestrations"].([]any)
}

// End to end: the soup's timed-out sample has calls that reply after its return; the
// errgroup's calls and their goroutines end before its return; keys are the rule's.
func TestTheTraceShowsTheSoupsCallsOutliveItsReturn(t *testing.T) {
	s := testserver.Start()
	defer s.Close()
	services := []string{s.At("delay_ms=1"), s.At("delay_ms=1"), s.At("delay_ms=250")}
	m := drive(t, cellJSON(t, services, map[string]any{"pattern": "go-channel-soup",
		"trace": map[string]any{}, "concurrency": 2, "drain_timeout_ms": 2000}))
	orchs := traceOf(t, m)
	if len(orchs) == 0 {
		t.Fatal("no samples")
	}
	first := orchs[0].(map[string]any)
	if first["sampled_as"] != "first timed-out" || first["verdict"] != "timed_out" {
		t.Fatalf("first sample %v", first)
	}
	end := num(t, first, "end_ns")
	calls := first["calls"].([]any)
	if len(calls) != 3 {
		t.Fatalf("%d calls", len(calls))
	}
	late := 0
	for j, c := range calls {
		c := c.(map[string]any)
		start, reply, taskEnd := num(t, c, "start_ns"), num(t, c, "reply_ns"), num(t, c, "task_end_ns")
		if start < num(t, first, "start_ns") || reply < start || taskEnd < reply {
			t.Errorf("call %d: %v", j, c)
		}
		if reply > end {
			late++
		}
		key := callKey(0, int(num(t, first, "caller")), uint64(num(t, first, "seq")), j)
		if c["key"] != float64(key) { // as JSON numbers: both rounded alike
			t.Errorf("call %d: key %v, want %d", j, c["key"], key)
		}
	}
	if late != 1 {
		t.Errorf("%d calls replied after the return, want the slow one", late)
	}

	m = drive(t, cellJSON(t, services, map[string]any{"pattern": "go-errgroup",
		"trace": map[string]any{"max_orchestrations": 100, "max_calls": 300}, "concurrency": 2}))
	for _, o := range traceOf(t, m) {
		o := o.(map[string]any)
		for _, c := range o["calls"].([]any) {
			if te := num(t, c.(map[string]any), "task_end_ns"); te == 0 || te > num(t, o, "end_ns") {
				t.Errorf("%v: a call's goroutine ended at %v, after the return at %v", o["sampled_as"], te, o["end_ns"])
			}
		}
	}
}

func TestTraceBoundsAreChecked(t *testing.T) {
	var out, errOut bytes.Buffer
	in := cellJSON(t, []string{"http://127.0.0.1:1/"}, map[string]any{"trace": map[string]any{"max_calls": -1}})
	if rc := run(strings.NewReader(in), &out, &errOut); rc != 2 || out.Len() != 0 {
		t.Errorf("exit %d, stdout %q", rc, out.String())
	}
}
