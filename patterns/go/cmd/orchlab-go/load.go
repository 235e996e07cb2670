package main

import (
	"fmt"
	"net"
	"net/http"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	exhibits "orchlab/patterns/go"
	"orchlab/patterns/go/census"
	"orchlab/patterns/go/fetch"
)

const (
	bucketNs    = int64(100 * time.Millisecond) // the time series' 100 ms
	lateStartNs = int64(time.Millisecond)       // open loop: a start this late is "late"
	peakEveryNs = 10 * time.Millisecond         // the sampler's period for the peaks
)

var clockEpoch = time.Now()

// nowNs is Go's monotonic clock in ns since the driver started; fetch.MonoNs converts.
func nowNs() int64 { return int64(time.Since(clockEpoch)) }

// monoOf converts a nowNs instant to absolute CLOCK_MONOTONIC ns.
func monoOf(t int64) int64 { return t + (fetch.MonoNs() - nowNs()) }

func splitmix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// callKey is harness/src/driver.cpp's call_key: the same (repetition, caller, seq,
// call) gives the same key in C++ and Go, so the mock replays the same faults.
func callKey(repetition, caller int, seq uint64, call int) uint64 {
	h := splitmix64(uint64(repetition) + 1)
	h = splitmix64(h ^ uint64(caller))
	h = splitmix64(h ^ seq)
	h = splitmix64(h ^ uint64(call))
	if h == 0 {
		return 1 // 0 means "no key"
	}
	return h
}

// callerStats is one caller's counters: written by its goroutine only, summed after
// the join (no shared atomics on the hot path).
type callerStats struct {
	latency, overshoot                              logHistogram
	orchestrations, completedInWindow               uint64
	complete, partial, failed, timedOut             uint64
	calls, ok, http, transport, cancelled, unanswer uint64
	startsLate, startsExpired                       uint64
	panicked                                        uint64
	firstPanic                                      string
	started, finished                               []uint64
	lastEndNs                                       int64
	traced                                          []orchRec // --trace: the window's orchestrations
}

func bump(v *[]uint64, sinceT0 int64) {
	if sinceT0 < 0 {
		sinceT0 = 0
	}
	i := int(sinceT0 / bucketNs)
	for len(*v) <= i {
		*v = append(*v, 0)
	}
	(*v)[i]++
}

// load is what every caller of the repetition shares, read-only but `next`.
type load struct {
	c                          *cell
	client                     *fetch.Client
	ledger                     *census.Ledger
	warmupStart, t0, windowEnd int64        // nowNs instants
	next                       atomic.Int64 // open loop: index of the next start
	tr                         *tracer      // --trace (nil: off)
}

func (l *load) record(s *callerStats, intended, end int64) {
	bump(&s.started, intended-l.t0)
	bump(&s.finished, end-l.t0)
	if end > s.lastEndNs {
		s.lastEndNs = end
	}
	s.orchestrations++
	if end <= l.windowEnd {
		s.completedInWindow++
	}
	lat := end - intended // from the intended start: a stalled schedule shows
	if lat < 0 {
		lat = 0
	}
	s.latency.record(uint64(lat))
	over := lat - l.c.deadlineNs
	if over < 0 {
		over = 0
	}
	s.overshoot.record(uint64(over))
}

// verdict is pattern.hpp's classify(): complete when every slot holds a 2xx answer,
// timed_out when the orchestration returned at or after its deadline with a slot
// empty, failed when no slot is usable, partial otherwise. A slot is empty when no
// result names it or its result is a cancellation (the call did not answer).
func verdict(fanout int, results []exhibits.Result, deadlinePassed bool) string {
	kinds := make([]fetch.Kind, fanout)
	for _, r := range results {
		if r.Done && r.Index >= 0 && r.Index < fanout {
			kinds[r.Index] = fetch.Classify(r)
		}
	}
	usable, empty := 0, 0
	for _, k := range kinds {
		switch k {
		case fetch.OK:
			usable++
		case fetch.Unanswered, fetch.Cancelled:
			empty++
		}
	}
	switch {
	case usable == fanout:
		return "complete"
	case deadlinePassed && empty > 0:
		return "timed_out"
	case usable == 0:
		return "failed"
	default:
		return "partial"
	}
}

// orchestrate runs one orchestration; its deadline counts from intended.
func (l *load) orchestrate(s *callerStats, caller int, seq uint64, intended int64, calls []exhibits.Call) {
	c := l.c
	start := nowNs()
	due := intended + c.deadlineNs
	dueMono := monoOf(due)
	for i := range calls {
		// Its calls tell the services whether they belong to the window, so the
		// services' counts cover the orchestrations the measurement counts.
		calls[i] = exhibits.Call{Index: i, URL: c.services[i%len(c.services)], DeadlineNs: dueMono,
			Window: intended >= l.t0}
		if c.keys {
			calls[i].Key = callKey(c.repetition, caller, seq, i)
		}
	}
	o := l.ledger.Open()
	kinds := make([]atomic.Int32, len(calls))
	f := l.client.For(o, kinds)
	// --trace: a window orchestration's calls are recorded while its caller's share
	// of the records and the call table last.
	base := -1
	if l.tr != nil && intended >= l.t0 && len(s.traced) < l.tr.perCaller {
		if base = l.tr.claim(len(calls)); base >= 0 {
			f = l.tr.wrap(f, base)
		}
	}
	env := exhibits.Env{Census: o, Fetch: f, Timeout: time.Duration(due - start), Limit: c.limit}
	var results []exhibits.Result
	panicked := ""
	func() {
		defer func() {
			if p := recover(); p != nil {
				panicked = fmt.Sprint(p)
			}
		}()
		results, _ = c.exhibit.Run(env, calls)
	}()
	end := nowNs()
	live := o.Return()
	if intended < l.t0 {
		return // warm-up: run, not counted
	}
	l.record(s, intended, end)
	s.calls += uint64(len(calls))
	v := "failed"
	if panicked == "" {
		v = verdict(len(calls), results, end >= due)
	}
	if l.tr != nil && len(s.traced) < l.tr.perCaller {
		s.traced = append(s.traced, orchRec{intended: intended, start: start, end: end, seq: seq,
			caller: caller, live: live, verdict: v, panicked: panicked != "", base: base})
	}
	if panicked != "" {
		s.failed++
		s.panicked++
		if s.firstPanic == "" {
			s.firstPanic = panicked
		}
		s.unanswer += uint64(len(calls))
		return
	}
	switch v {
	case "complete":
		s.complete++
	case "partial":
		s.partial++
	case "failed":
		s.failed++
	default:
		s.timedOut++
	}
	// Call outcomes from the fetch, as they stood at the return: the article's errgroup
	// drops an error's result from its slice, the fetch saw it.
	for i := range kinds {
		switch fetch.Kind(kinds[i].Load()) {
		case fetch.OK:
			s.ok++
		case fetch.HTTP:
			s.http++
		case fetch.Transport:
			s.transport++
		case fetch.Cancelled:
			s.cancelled++
		default:
			s.unanswer++
		}
	}
}

// closedCaller runs orchestrations back to back from the warm-up to the window's end.
func (l *load) closedCaller(caller int, s *callerStats) {
	calls := make([]exhibits.Call, l.c.fanout)
	for seq := uint64(0); nowNs() < l.windowEnd; seq++ {
		l.orchestrate(s, caller, seq, nowNs(), calls)
	}
}

// openWorker takes the next due start of the one schedule, waits for it, runs it. A
// start whose deadline passed (less than 1 ms of it left) while it waited for a worker
// is a timed-out orchestration that never ran, its wait in the histogram.
func (l *load) openWorker(s *callerStats) {
	calls := make([]exhibits.Call, l.c.fanout)
	for {
		i := int(l.next.Add(1) - 1)
		if i >= len(l.c.starts) {
			return
		}
		st := l.c.starts[i]
		intended := l.warmupStart + st.offsetNs
		if d := intended - nowNs(); d > 0 {
			time.Sleep(time.Duration(d))
		}
		now := nowNs()
		counts := intended >= l.t0
		if now-intended >= l.c.deadlineNs-int64(time.Millisecond) {
			if counts {
				s.startsExpired++
				s.timedOut++
				l.record(s, intended, now)
			}
			continue
		}
		if counts && now-intended > lateStartNs {
			s.startsLate++
		}
		l.orchestrate(s, 0, st.seq, intended, calls) // keys from the schedule position (caller 0)
	}
}

// sampler reads the census and runtime.NumGoroutine every 10 ms for the peaks, and
// every 100 ms (aligned to the window's start) for the time series.
type sampler struct {
	mu                          sync.Mutex
	liveSeries, goroutineSeries []int64
	livePeak, goroutinePeak     int64
	stop                        chan struct{}
	done                        chan struct{}
}

func startSampler(ledger *census.Ledger, t0 int64) *sampler {
	sp := &sampler{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(sp.done)
		tick := time.NewTicker(peakEveryNs)
		defer tick.Stop()
		nextBucket := t0 + bucketNs
		for {
			select {
			case <-sp.stop:
				return
			case <-tick.C:
			}
			live, g := ledger.Live(), int64(runtime.NumGoroutine())
			sp.mu.Lock()
			if live > sp.livePeak {
				sp.livePeak = live
			}
			if g > sp.goroutinePeak {
				sp.goroutinePeak = g
			}
			if nowNs() >= nextBucket {
				nextBucket += bucketNs
				sp.liveSeries = append(sp.liveSeries, live)
				sp.goroutineSeries = append(sp.goroutineSeries, g)
			}
			sp.mu.Unlock()
		}
	}()
	return sp
}

func (sp *sampler) halt() {
	close(sp.stop)
	<-sp.done
}

// transportFor builds the http.Transport the calls go through: the scenario's
// max_conns_per_host as MaxConnsPerHost with an idle pool to match ("lab"), or
// http.DefaultTransport's settings untouched ("default").
func transportFor(c *cell) (*http.Transport, transportJSON) {
	t := http.DefaultTransport.(*http.Transport).Clone()
	if c.goTransport == "lab" {
		t.MaxConnsPerHost = c.maxConnsPerHost
		t.MaxIdleConnsPerHost = c.maxConnsPerHost
		t.MaxIdleConns = 0 // no limit across hosts: each host's own pool is the bound
		t.DialContext = (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	}
	maxIdlePerHost := t.MaxIdleConnsPerHost
	if maxIdlePerHost == 0 {
		maxIdlePerHost = http.DefaultMaxIdleConnsPerHost
	}
	return t, transportJSON{Mode: c.goTransport, MaxConnsPerHost: t.MaxConnsPerHost,
		MaxIdleConnsPerHost: maxIdlePerHost, MaxIdleConns: t.MaxIdleConns,
		IdleConnTimeoutMs: t.IdleConnTimeout.Milliseconds()}
}
