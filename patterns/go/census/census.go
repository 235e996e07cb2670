// Package census counts the goroutines an exhibit starts, per orchestration, with the
// definitions of the C++ census (patterns/support/census.cpp): a task is live from the
// moment it is registered until its function returns, whatever it is blocked on (a
// fetch, a channel send, wg.Wait()); an orchestration's leaked tasks are those still
// live when it returns; zombie time is a task's time past its orchestration's return,
// added when the task ends; a late completion is a call whose reply (or transport
// error) arrived after its orchestration returned.
//
// A Ledger holds one measurement's counters (the driver opens one per repetition);
// every Orchestration opened from it counts into it however late its tasks end.
package census

import (
	"sync/atomic"
	"time"
)

var epoch = time.Now()

// now is monotonic nanoseconds since the package's start (Go's monotonic clock).
func now() int64 { return int64(time.Since(epoch)) }

// Totals is a snapshot of a Ledger's counters.
type Totals struct {
	TasksStarted    int64 // tasks registered
	TasksFinished   int64 // tasks whose function returned
	LiveTasks       int64 // started - finished, now
	Orchestrations  int64 // orchestrations that returned
	LeakedAtReturn  int64 // sum over returned orchestrations of their live tasks at return
	Completions     int64 // calls that completed (an answer or a transport error), late or not
	LateCompletions int64 // completions after their orchestration had returned
	ZombieNs        int64 // task time past the orchestration's return, finished tasks only
}

// Ledger is one measurement's census. The zero value is ready to use.
type Ledger struct {
	started, finished, live                atomic.Int64
	orchestrations, leakedAtReturn         atomic.Int64
	completions, lateCompletions, zombieNs atomic.Int64
}

// Totals reads the counters (each atomically; the set is not one snapshot).
func (l *Ledger) Totals() Totals {
	return Totals{
		TasksStarted:    l.started.Load(),
		TasksFinished:   l.finished.Load(),
		LiveTasks:       l.live.Load(),
		Orchestrations:  l.orchestrations.Load(),
		LeakedAtReturn:  l.leakedAtReturn.Load(),
		Completions:     l.completions.Load(),
		LateCompletions: l.lateCompletions.Load(),
		ZombieNs:        l.zombieNs.Load(),
	}
}

// Live is the number of tasks of this ledger's orchestrations still running.
func (l *Ledger) Live() int64 { return l.live.Load() }

// WaitIdle waits until no task of this ledger is live, or timeout; reports which.
func (l *Ledger) WaitIdle(timeout time.Duration) bool {
	until := time.Now().Add(timeout)
	for l.live.Load() > 0 {
		if !time.Now().Before(until) {
			return false
		}
		time.Sleep(time.Millisecond)
	}
	return true
}

// Open starts an orchestration's bookkeeping. Call Return when it returns.
func (l *Ledger) Open() *Orchestration { return &Orchestration{ledger: l} }

// Orchestration is one orchestration's bookkeeping, shared by its tasks, which may
// outlive it. A nil *Orchestration counts nothing: Go and Func still run the function.
type Orchestration struct {
	ledger     *Ledger
	live       atomic.Int64
	returned   atomic.Bool
	returnedAt atomic.Int64
}

func (o *Orchestration) start() {
	o.live.Add(1)
	o.ledger.started.Add(1)
	o.ledger.live.Add(1)
}

// taskEndHook, when set, runs on a task's own goroutine as its function ends, before
// the census counts it finished: the driver's tracer stamps there the end of the
// goroutine that made a call (docs/drivers.md, "trace"). Nil: nothing runs.
var taskEndHook atomic.Pointer[func()]

// SetTaskEndHook installs f for every task that ends from now on (nil: none).
func SetTaskEndHook(f func()) {
	if f == nil {
		taskEndHook.Store(nil)
		return
	}
	taskEndHook.Store(&f)
}

func (o *Orchestration) end() {
	if h := taskEndHook.Load(); h != nil {
		(*h)()
	}
	o.live.Add(-1)
	if o.returned.Load() {
		if past := now() - o.returnedAt.Load(); past > 0 {
			o.ledger.zombieNs.Add(past)
		}
	}
	o.ledger.finished.Add(1)
	o.ledger.live.Add(-1)
}

// Go is the census's `go f()`: the task is registered before the goroutine exists,
// so a return racing its start still counts it live (as orchlab::go in C++).
func (o *Orchestration) Go(f func()) {
	if o == nil {
		go f()
		return
	}
	o.start()
	go func() {
		defer o.end()
		f()
	}()
}

// GoThen is Go(f) that calls then() once the task has been unregistered: a
// sync.WaitGroup's Done given as then makes wg.Wait() a join, as a C++ thread's join
// is (the task is no longer live when Wait returns).
func (o *Orchestration) GoThen(f func(), then func()) {
	if o == nil {
		go func() {
			defer then()
			f()
		}()
		return
	}
	o.start()
	go func() {
		defer then()
		defer o.end()
		f()
	}()
}

// Func wraps a function some other code runs on its own goroutine (errgroup's g.Go):
// the task is live from the wrapper's first line to its return. Only for code that
// joins its goroutines before the orchestration returns (g.Wait()), since a task
// registered late cannot be counted at a return that came first.
func (o *Orchestration) Func(f func() error) func() error {
	if o == nil {
		return f
	}
	return func() error {
		o.start()
		defer o.end()
		return f()
	}
}

// Return records that the orchestration returned and how many of its tasks were
// still live; it returns that number. Idempotent.
func (o *Orchestration) Return() int64 {
	if o == nil || o.returned.Load() {
		return 0
	}
	// The return is published before `live` is read: a task either ended before the
	// read, or it sees `returned` and counts its zombie time.
	o.returnedAt.Store(now())
	o.returned.Store(true)
	live := o.live.Load()
	o.ledger.orchestrations.Add(1)
	o.ledger.leakedAtReturn.Add(live)
	return live
}

// Returned reports whether Return was called.
func (o *Orchestration) Returned() bool { return o != nil && o.returned.Load() }

// Live is the number of this orchestration's tasks still running.
func (o *Orchestration) Live() int64 {
	if o == nil {
		return 0
	}
	return o.live.Load()
}

// NoteCompletion records that one of the orchestration's calls completed (an answer or
// a transport error, not a cancellation); late when the orchestration had returned.
func (o *Orchestration) NoteCompletion() {
	if o == nil {
		return
	}
	o.ledger.completions.Add(1)
	if o.returned.Load() {
		o.ledger.lateCompletions.Add(1)
	}
}
