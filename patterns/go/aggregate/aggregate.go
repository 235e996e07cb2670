// Package aggregate is the Go twin of BM_Aggregate (harness/micro/aggregate.cpp): how N
// concurrent tasks hand their results to the collector that waits for them, measured in
// the article's own runtime, so that its comparison (a mutex-guarded slice against a
// channel, and index slots) is answered for goroutines as it is for C++ threads.
//
// One fan-out is the C++ one: the collector hands a batch of N tasks to a crew of T
// goroutines (itself included; T = GOMAXPROCS, the benchmark's -cpu), task i runs on
// goroutine i mod T, does W ns of calibrated CPU work and publishes one result, and the
// collector waits until every result is in (a WaitGroup, or the channel's receives):
// the join is inside the timed region for every strategy. The tasks per fan-out and the
// work sizes are BM_Aggregate's. scripts/go_micro.py runs it and writes go_micro.json.
package aggregate

import (
	"sync"
	"sync/atomic"
	"time"
)

// Strategies are the ways a result reaches the collector, named as BM_Aggregate names them.
var Strategies = []string{"mutex-vector", "slots", "slots-padded", "channel-fan-in", "atomic-index"}

// WorkNs are the work sizes per task, ns: none (aggregation alone), then 1, 10 and 100 µs.
var WorkNs = []int64{0, 1_000, 10_000, 100_000}

// Result is a small result: 16 bytes, so four share a cache line in a plain slice.
type Result struct {
	Value  uint64
	Status uint32
	Size   uint32
}

type paddedResult struct {
	r Result
	_ [64 - 16]byte
}

// TasksFor is the tasks per fan-out: about 2 ms of work at one goroutine, 64 to 4096.
func TasksFor(workNs int64) int {
	n := int64(4096)
	if workNs > 0 {
		n = 2_000_000 / workNs
	}
	if n < 64 {
		n = 64
	}
	if n > 4096 {
		n = 4096
	}
	return int(n)
}

// Sink keeps the spin's result where the compiler cannot drop the loop.
var Sink uint64

func spin(rounds uint64) uint64 {
	x := uint64(0x9E3779B97F4A7C15)
	for i := uint64(0); i < rounds; i++ {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
	}
	return x
}

var calibrate sync.Once
var roundsPerNs float64

// RoundsPerNs is spin rounds per ns, from the fastest of seven 1,000,000-round runs (the
// slow ones were interrupted), as BM_Aggregate calibrates.
func RoundsPerNs() float64 {
	calibrate.Do(func() {
		for i := 0; i < 7; i++ {
			t0 := time.Now()
			Sink += spin(1_000_000)
			if r := 1e6 / float64(time.Since(t0).Nanoseconds()); r > roundsPerNs {
				roundsPerNs = r
			}
		}
	})
	return roundsPerNs
}

// Crew is T goroutines, the collector included, that run fan-outs of one strategy.
// NOTE: Close it to end its goroutines.
type Crew struct {
	strategy string
	threads  int
	tasks    int
	rounds   uint64

	mu      sync.Mutex
	results []Result // mutex-vector: mu.Lock(); results = append(results, r)
	slots   []Result // slots: results[i] = r
	padded  []paddedResult
	ring    []Result // atomic-index: ring[next++] = r
	next    uint64
	ch      chan Result // channel fan-in: ch <- r

	start []chan struct{} // one per worker: a fan-out begins
	wg    sync.WaitGroup  // the latch the collector waits on (not for channel fan-in)
}

// NewCrew starts threads-1 workers for strategy, tasks per fan-out, workNs per task.
func NewCrew(strategy string, threads, tasks int, workNs int64) *Crew {
	c := &Crew{strategy: strategy, threads: threads, tasks: tasks,
		rounds:  uint64(float64(workNs) * RoundsPerNs()),
		results: make([]Result, 0, tasks), slots: make([]Result, tasks),
		padded: make([]paddedResult, tasks), ring: make([]Result, tasks), ch: make(chan Result, tasks)}
	for t := 1; t < threads; t++ {
		start := make(chan struct{})
		c.start = append(c.start, start)
		go func(t int) {
			for range start {
				c.runShare(t)
				if c.strategy != "channel-fan-in" {
					c.wg.Done()
				}
			}
		}(t)
	}
	return c
}

// FanOut runs one fan-out, from the hand-off to the last result collected.
func (c *Crew) FanOut() {
	if c.strategy == "mutex-vector" {
		c.results = c.results[:0] // no worker is running
	}
	if c.strategy != "channel-fan-in" {
		c.wg.Add(c.threads - 1)
	}
	for _, s := range c.start {
		s <- struct{}{}
	}
	c.runShare(0)
	if c.strategy == "channel-fan-in" {
		for i := 0; i < c.tasks; i++ { // the channel is the join: receive every result
			<-c.ch
		}
		return
	}
	c.wg.Wait()
}

// Collected is how many results the last fan-out left where the collector reads them.
func (c *Crew) Collected() int {
	switch c.strategy {
	case "mutex-vector":
		return len(c.results)
	case "channel-fan-in":
		return c.tasks - len(c.ch)
	}
	n := 0
	for i := 0; i < c.tasks; i++ {
		switch c.strategy {
		case "slots":
			n += b2i(c.slots[i].Status == 200)
		case "slots-padded":
			n += b2i(c.padded[i].r.Status == 200)
		case "atomic-index":
			n += b2i(c.ring[i].Status == 200)
		}
	}
	return n
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// Close ends the crew's workers.
func (c *Crew) Close() {
	for _, s := range c.start {
		close(s)
	}
}

func (c *Crew) runShare(t int) {
	for i := t; i < c.tasks; i += c.threads {
		if c.rounds > 0 {
			atomic.AddUint64(&Sink, spin(c.rounds)&1)
		}
		c.publish(i)
	}
}

func (c *Crew) publish(i int) {
	r := Result{Value: uint64(i), Status: 200, Size: 64}
	switch c.strategy {
	case "mutex-vector":
		c.mu.Lock()
		c.results = append(c.results, r)
		c.mu.Unlock()
	case "slots":
		c.slots[i] = r
	case "slots-padded":
		c.padded[i].r = r
	case "channel-fan-in":
		c.ch <- r
	case "atomic-index":
		c.ring[(atomic.AddUint64(&c.next, 1)-1)%uint64(len(c.ring))] = r
	}
}
