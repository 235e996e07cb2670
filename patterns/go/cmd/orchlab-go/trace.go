package main

import (
	"context"
	"runtime"
	"sort"
	"sync"
	"sync/atomic"

	exhibits "orchlab/patterns/go"
	"orchlab/patterns/go/census"
	"orchlab/patterns/go/fetch"
)

// The recording bounds when the input's trace object leaves them out: the harness's own.
const (
	defaultTraceOrchestrations = 1 << 18
	defaultTraceCalls          = 1 << 17
	maxTraceBound              = 1 << 22
)

// callRec is what the driver saw of one call: nowNs instants, 0 while unknown.
// Written by the goroutine that made the call, read after the drain.
type callRec struct {
	start, reply, taskEnd atomic.Int64
	status, kind          atomic.Int32
}

// orchRec is one window orchestration, compactly: enough to choose the samples after
// the repetition and to draw them.
type orchRec struct {
	intended, start, end int64 // nowNs instants
	seq                  uint64
	caller               int
	live                 int64 // its tasks still live when it returned
	verdict              string
	panicked             bool
	base                 int // its calls' first record in tracer.calls; -1: not recorded
}

// tracer records, under --trace (docs/drivers.md, "trace"), every window
// orchestration's compact record (at most maxOrch, shared out among the callers) and
// its calls' start, reply and goroutine end in a table of maxCalls records claimed in
// one block per orchestration; past either bound an orchestration goes unrecorded
// (it is not sampled). Nil: tracing is off, and nothing is recorded.
type tracer struct {
	perCaller int
	calls     []callRec
	used      atomic.Int64
	recorded  atomic.Int64 // orchestrations recorded (all callers)
	// The calls each goroutine made and whose goroutine has not ended yet, by
	// goroutine id: the census's task-end hook stamps them.
	mu      sync.Mutex
	pending map[uint64][]*callRec
}

func newTracer(maxOrch, maxCalls, callers int) *tracer {
	if callers < 1 {
		callers = 1
	}
	per := maxOrch / callers
	if per < 1 && maxOrch > 0 {
		per = 1
	}
	return &tracer{perCaller: per, calls: make([]callRec, maxCalls), pending: map[uint64][]*callRec{}}
}

// install makes the census stamp the end of the goroutines that made recorded calls.
func (t *tracer) install() { census.SetTaskEndHook(t.taskEnded) }

// uninstall switches the hook off (after the drain).
func (t *tracer) uninstall() { census.SetTaskEndHook(nil) }

// claim reserves n call records; -1 when the table is full.
func (t *tracer) claim(n int) int {
	end := t.used.Add(int64(n))
	if end > int64(len(t.calls)) {
		t.used.Add(-int64(n))
		return -1
	}
	return int(end) - n
}

// wrap returns inner recording call c.Index into the block at base.
func (t *tracer) wrap(inner exhibits.Fetch, base int) exhibits.Fetch {
	return func(ctx context.Context, c exhibits.Call) (exhibits.Result, error) {
		rec := &t.calls[base+c.Index]
		rec.start.Store(nowNs())
		r, err := inner(ctx, c)
		rec.reply.Store(nowNs())
		rec.status.Store(int32(r.Status))
		rec.kind.Store(int32(fetch.Classify(r)))
		id := goid()
		t.mu.Lock()
		t.pending[id] = append(t.pending[id], rec)
		t.mu.Unlock()
		return r, err
	}
}

// taskEnded is the census's task-end hook: it runs on the ending task's goroutine.
func (t *tracer) taskEnded() {
	id := goid()
	t.mu.Lock()
	recs := t.pending[id]
	delete(t.pending, id)
	t.mu.Unlock()
	if len(recs) == 0 {
		return
	}
	now := nowNs()
	for _, r := range recs {
		r.taskEnd.Store(now)
	}
}

// goid is the calling goroutine's id, from the first line of its stack
// ("goroutine 123 [running]:"). About a microsecond; only while tracing.
func goid() uint64 {
	var buf [40]byte
	n := runtime.Stack(buf[:], false)
	var id uint64
	for _, b := range buf[len("goroutine "):n] {
		if b < '0' || b > '9' {
			break
		}
		id = id*10 + uint64(b-'0')
	}
	return id
}

// traceJSON is the measurement's "trace" (docs/drivers.md): the chosen samples, in
// absolute CLOCK_MONOTONIC ns.
type traceJSON struct {
	Clock                  string      `json:"clock"`
	OrchestrationsRecorded int64       `json:"orchestrations_recorded"`
	CallsRecorded          int64       `json:"calls_recorded"`
	Orchestrations         []traceOrch `json:"orchestrations"`
}

type traceOrch struct {
	SampledAs         string      `json:"sampled_as"`
	Verdict           string      `json:"verdict"`
	Caller            int         `json:"caller"`
	Seq               uint64      `json:"seq"`
	IntendedNs        int64       `json:"intended_ns"`
	StartNs           int64       `json:"start_ns"`
	EndNs             int64       `json:"end_ns"`
	TasksLiveAtReturn int64       `json:"tasks_live_at_return"`
	Calls             []traceCall `json:"calls"`
}

type traceCall struct {
	Key       uint64 `json:"key,omitempty"` // call_keys rule "none": left out
	StartNs   int64  `json:"start_ns"`
	ReplyNs   int64  `json:"reply_ns"`
	TaskEndNs int64  `json:"task_end_ns"`
	Status    int    `json:"status"`
	Outcome   string `json:"outcome"`
}

func outcomeOf(k fetch.Kind) string {
	switch k {
	case fetch.OK:
		return "answered"
	case fetch.HTTP:
		return "http"
	case fetch.Transport:
		return "transport"
	case fetch.Cancelled:
		return "cancelled"
	}
	return "unanswered"
}

// choose picks the samples as the harness does for its own cells: the first
// timed-out, the first failed (by start), then the two whose latency is nearest the
// p50 and the two nearest the p99 of lat; only orchestrations recorded whole.
func choose(records []orchRec, lat *logHistogram) (picked []int, why []string) {
	order := make([]int, len(records))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return records[order[a]].start < records[order[b]].start })
	drawable := func(r *orchRec) bool { return !r.panicked && r.base >= 0 }
	taken := map[int]bool{}
	firstOf := func(verdict, label string) {
		for _, i := range order {
			if r := &records[i]; r.verdict == verdict && drawable(r) {
				picked, why, taken[i] = append(picked, i), append(why, label), true
				return
			}
		}
	}
	firstOf("timed_out", "first timed-out")
	firstOf("failed", "first failed")
	nearest := func(q float64, label string) {
		if lat.count == 0 {
			return
		}
		target := int64(lat.quantile(q))
		var cands []int
		for _, i := range order {
			if !taken[i] && drawable(&records[i]) {
				cands = append(cands, i)
			}
		}
		dist := func(i int) int64 {
			d := records[i].end - records[i].intended - target
			if d < 0 {
				return -d
			}
			return d
		}
		sort.SliceStable(cands, func(a, b int) bool { return dist(cands[a]) < dist(cands[b]) })
		for k := 0; k < 2 && k < len(cands); k++ {
			picked, why, taken[cands[k]] = append(picked, cands[k]), append(why, label), true
		}
	}
	nearest(0.5, "near p50")
	nearest(0.99, "near p99")
	return picked, why
}

// result chooses the samples among records and writes them out; mono converts a nowNs
// instant to CLOCK_MONOTONIC.
func (t *tracer) result(records []orchRec, lat *logHistogram, c *cell) *traceJSON {
	off := fetch.MonoNs() - nowNs() // both Go's monotonic clock: a constant offset
	mono := func(v int64) int64 {
		if v == 0 {
			return 0
		}
		return v + off
	}
	used := t.used.Load()
	out := &traceJSON{Clock: "CLOCK_MONOTONIC ns", OrchestrationsRecorded: int64(len(records)),
		CallsRecorded: used, Orchestrations: []traceOrch{}}
	picked, why := choose(records, lat)
	for k, i := range picked {
		r := &records[i]
		o := traceOrch{SampledAs: why[k], Verdict: r.verdict, Caller: r.caller, Seq: r.seq,
			IntendedNs: mono(r.intended), StartNs: mono(r.start), EndNs: mono(r.end),
			TasksLiveAtReturn: r.live, Calls: make([]traceCall, c.fanout)}
		for j := 0; j < c.fanout; j++ {
			rec := &t.calls[r.base+j]
			tc := traceCall{StartNs: mono(rec.start.Load()), ReplyNs: mono(rec.reply.Load()),
				TaskEndNs: mono(rec.taskEnd.Load()), Status: int(rec.status.Load())}
			if tc.ReplyNs != 0 {
				tc.Outcome = outcomeOf(fetch.Kind(rec.kind.Load()))
			}
			if c.keys {
				tc.Key = callKey(c.repetition, r.caller, r.seq, j)
			}
			o.Calls[j] = tc
		}
		out.Orchestrations = append(out.Orchestrations, o)
	}
	return out
}
