// Command orchlab-go is the lab's driver for the Go exhibits (docs/drivers.md): it
// reads one repetition of one cell as JSON on stdin, drives the load itself (warm-up,
// window, closed or open loop), drains, and prints one JSON measurement on stdout.
//
//	parse the cell → open a census ledger → start callers → join → drain → sum → print
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"sort"
	"strings"
	"sync"
	"time"

	exhibits "orchlab/patterns/go"
	"orchlab/patterns/go/census"
	"orchlab/patterns/go/fetch"
)

const usage = `usage: orchlab-go [--help] [--list] < cell.json > measurement.json

Runs one repetition of one cell of a Go exhibit, as the orchlab harness describes it
(JSON on stdin, driver protocol 1), and prints one measurement (JSON on stdout).

  --help   this text
  --list   the exhibits this driver runs, one per line

Exit status: 0 measured (the measurement is on stdout); 2 bad input (one line on
stderr, nothing on stdout); 1 the driver itself failed.
Fields, units and nulls: docs/drivers.md.

Example:
  echo '{"protocol":1,"pattern":"go-errgroup","services":["http://127.0.0.1:8080/"],
         "fanout":3,"concurrency":16,"mode":"closed","warmup_s":0.2,"duration_s":1,
         "deadline_ms":100,"max_conns_per_host":64,"limit":16,
         "call_keys":{"rule":"orchlab-v1","repetition":0}}' | orchlab-go
`

func main() {
	flags := flag.NewFlagSet("orchlab-go", flag.ContinueOnError)
	flags.SetOutput(io.Discard)
	help := flags.Bool("help", false, "")
	list := flags.Bool("list", false, "")
	if err := flags.Parse(os.Args[1:]); err != nil || flags.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "orchlab-go: bad arguments %q (--help for usage)\n", os.Args[1:])
		os.Exit(2)
	}
	switch {
	case *help:
		fmt.Print(usage)
		return
	case *list:
		fmt.Println(strings.Join(exhibits.Names(), "\n"))
		return
	}
	os.Exit(run(os.Stdin, os.Stdout, os.Stderr))
}

// run is the whole driver; it returns the exit status.
func run(stdin io.Reader, stdout, stderr io.Writer) int {
	c, err := parseInput(stdin)
	if err != nil {
		fmt.Fprintf(stderr, "orchlab-go: %v\n", err)
		return 2
	}
	m := measure(c)
	out, err := json.Marshal(m)
	if err != nil {
		fmt.Fprintf(stderr, "orchlab-go: encoding the measurement: %v\n", err)
		return 1
	}
	if _, err := fmt.Fprintf(stdout, "%s\n", out); err != nil {
		fmt.Fprintf(stderr, "orchlab-go: writing the measurement: %v\n", err)
		return 1
	}
	return 0
}

func measure(c *cell) *measurement {
	transport, tj := transportFor(c)
	defer transport.CloseIdleConnections()
	l := &load{c: c, client: fetch.New(transport), ledger: &census.Ledger{}}
	if c.trace != nil {
		l.tr = newTracer(c.trace.maxOrchestrations, c.trace.maxCalls, len(c.callerIDs))
		l.tr.install()
		defer l.tr.uninstall()
	}
	m := &measurement{Protocol: ProtocolVersion, Runtime: "go", Pattern: c.pattern,
		ExhibitForm: c.exhibit.Form(c.fanout), Fanout: c.fanout, Concurrency: c.concurrency,
		Callers: len(c.callerIDs), Mode: map[bool]string{false: "closed", true: "open"}[c.open],
		DeadlineMs: float64(c.deadlineNs) / 1e6, GoVersion: runtime.Version(),
		GOMAXPROCS: runtime.GOMAXPROCS(0), Transport: tj, Limit: c.limit, TimeUnit: "us", Notes: []string{}}

	// The load begins now, or at the harness's instant (a shard's common start).
	l.warmupStart = nowNs()
	if c.loadStartMonoNs != nil {
		if at := *c.loadStartMonoNs - fetch.MonoNs() + nowNs(); at > l.warmupStart {
			time.Sleep(time.Duration(at - l.warmupStart))
			l.warmupStart = at
		} else if late := l.warmupStart - at; late > int64(time.Millisecond) {
			m.Notes = append(m.Notes, fmt.Sprintf("the load began %d ms after load_start_mono_ns", late/1e6))
		}
	}
	l.t0 = l.warmupStart + c.warmupNs
	l.windowEnd = l.t0 + c.durationNs
	m.WarmupS, m.WindowS = float64(c.warmupNs)/1e9, float64(c.durationNs)/1e9
	m.GoroutinesBaseline = runtime.NumGoroutine()
	sp := startSampler(l.ledger, l.t0)

	// Drive: C callers (closed) or C workers (open), joined before anything is summed.
	per := make([]callerStats, len(c.callerIDs))
	var wg sync.WaitGroup
	for k, id := range c.callerIDs {
		k, id := k, id
		wg.Add(1)
		go func() {
			defer wg.Done()
			if c.open {
				l.openWorker(&per[k])
			} else {
				l.closedCaller(id, &per[k])
			}
		}()
	}
	wg.Wait()
	callersDone := nowNs()
	m.LeakedTasksEnd = l.ledger.Live()
	m.GoroutinesEnd = runtime.NumGoroutine() - m.GoroutinesBaseline

	// Drain: wait (bounded) for what the orchestrations left running, so their zombie
	// time is measured in full.
	drainStart := time.Now()
	m.Drained = l.ledger.WaitIdle(time.Duration(c.drainTimeoutNs))
	m.DrainMs = float64(time.Since(drainStart).Microseconds()) / 1000
	sp.halt()
	drainEnd := nowNs()
	if !m.Drained {
		m.Notes = append(m.Notes, fmt.Sprintf("the drain gave up after %.0f ms with %d tasks still live: zombie_task_s counts the finished ones only",
			m.DrainMs, l.ledger.Live()))
	}

	// Sum per-caller counters.
	var lat, over logHistogram
	var started, finished []uint64
	lastEnd := l.t0
	firstPanic := ""
	for i := range per {
		s := &per[i]
		lat.merge(&s.latency)
		over.merge(&s.overshoot)
		m.Iterations += s.orchestrations
		m.CompletedInWindow += s.completedInWindow
		m.Complete += s.complete
		m.Partial += s.partial
		m.Failed += s.failed
		m.TimedOut += s.timedOut
		m.Calls += s.calls
		m.CallOK += s.ok
		m.CallHTTPErrors += s.http
		m.CallTransportErrors += s.transport
		m.CallCancelled += s.cancelled
		m.CallUnanswered += s.unanswer
		m.OrchestrationsPanicked += s.panicked
		if firstPanic == "" {
			firstPanic = s.firstPanic
		}
		started = addInto(started, s.started)
		finished = addInto(finished, s.finished)
		if s.lastEndNs > lastEnd {
			lastEnd = s.lastEndNs
		}
		if c.open {
			late, expired := s.startsLate, s.startsExpired
			m.StartsLate = addPtr(m.StartsLate, late)
			m.StartsExpired = addPtr(m.StartsExpired, expired)
		}
	}
	if m.OrchestrationsPanicked > 0 {
		m.Notes = append(m.Notes, fmt.Sprintf("%d orchestration(s) panicked (counted as failed), the first: %s", m.OrchestrationsPanicked, firstPanic))
	}
	m.WallS = float64(lastEnd-l.t0) / 1e9
	m.ItemsPerSecond = float64(m.CompletedInWindow) / m.WindowS
	if lat.count > 0 {
		mean := float64(lat.sum) / float64(lat.count) / 1000
		m.RealTime = &mean
		mx := float64(lat.max) / 1000
		m.MaxUs = &mx
	} else {
		m.Notes = append(m.Notes, "no orchestration counted in the window: every latency field is null")
	}
	m.P50Us, m.P90Us, m.P99Us, m.P999Us = lat.quantileUs(0.50), lat.quantileUs(0.90), lat.quantileUs(0.99), lat.quantileUs(0.999)
	m.LatencySamples = lat.count
	m.DeadlineOvershootP99Us = over.quantileUs(0.99)
	for _, p := range []struct {
		field string
		q     float64
		v     *float64
	}{{"p50_us", .5, m.P50Us}, {"p90_us", .9, m.P90Us}, {"p99_us", .99, m.P99Us}, {"p999_us", .999, m.P999Us}} {
		if p.v == nil && lat.count > 0 {
			m.Notes = append(m.Notes, fmt.Sprintf("%s is null: %d latency samples, it needs %d", p.field, lat.count, minSamples(p.q)))
		}
	}
	if c.open {
		achieved := float64(m.Iterations-*m.StartsExpired) / m.WindowS
		m.AchievedRate = &achieved
		if c.targetRate != nil {
			m.TargetRate = c.targetRate
			sat := achieved < 0.95**c.targetRate
			m.Saturated = &sat
		} else {
			m.Notes = append(m.Notes, "saturated is null: the input gave no target_rate")
		}
	}

	tot := l.ledger.Totals()
	m.LeakedTasksAtReturn = tot.LeakedAtReturn
	m.ZombieTaskS = float64(tot.ZombieNs) / 1e9
	m.LateCompletions = tot.LateCompletions
	m.TasksStarted, m.TasksFinished = tot.TasksStarted, tot.TasksFinished
	m.LiveTasksPeak = sp.livePeak
	if live := l.ledger.Live(); live > m.LiveTasksPeak {
		m.LiveTasksPeak = live
	}
	m.GoroutinesPeak = int(sp.goroutinePeak) - m.GoroutinesBaseline

	// The time series: buckets of 100 ms from the window's start to the drain's end.
	buckets := int((drainEnd - l.t0 + bucketNs - 1) / bucketNs)
	if buckets < 0 {
		buckets = 0
	}
	ser := &m.Series
	ser.BucketMs = float64(bucketNs) / 1e6
	ser.WindowMs = float64(minInt64(callersDone, l.windowEnd)-l.t0) / 1e6
	ser.Started, ser.Finished = resize(started, buckets, 0), resize(finished, buckets, 0)
	var inFlight int64
	ser.InFlight = make([]int64, buckets)
	for i := 0; i < buckets; i++ {
		inFlight += int64(ser.Started[i]) - int64(ser.Finished[i])
		ser.InFlight[i] = inFlight
	}
	ser.LiveTasks = resizeInt(sp.liveSeries, buckets, l.ledger.Live())
	ser.Goroutines = resizeInt(sp.goroutineSeries, buckets, int64(runtime.NumGoroutine()))
	if l.tr != nil {
		var records []orchRec
		for i := range per {
			records = append(records, per[i].traced...)
		}
		m.Trace = l.tr.result(records, &lat, c)
	}
	m.Histograms.LatencyNs = lat.json()
	m.Histograms.OvershootNs = over.json()
	sort.Strings(m.Notes)
	return m
}

func addInto(dst, src []uint64) []uint64 {
	for len(dst) < len(src) {
		dst = append(dst, 0)
	}
	for i, v := range src {
		dst[i] += v
	}
	return dst
}

func addPtr(p *uint64, v uint64) *uint64 {
	if p == nil {
		p = new(uint64)
	}
	*p += v
	return p
}

func resize(v []uint64, n int, fill uint64) []uint64 {
	out := make([]uint64, n)
	for i := range out {
		if i < len(v) {
			out[i] = v[i]
		} else {
			out[i] = fill
		}
	}
	return out
}

func resizeInt(v []int64, n int, fill int64) []int64 {
	out := make([]int64, n)
	for i := range out {
		if i < len(v) {
			out[i] = v[i]
		} else {
			out[i] = fill
		}
	}
	return out
}

func minInt64(a, b int64) int64 {
	if a < b {
		return a
	}
	return b
}
