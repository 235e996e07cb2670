// What it is: go-mutex-aggregation, the article's third listing: a goroutine per
// call appending its result to one slice under one sync.Mutex. The article prints
// only the goroutine's body; its WaitGroup is the one addition, marked below.
//
// Where it rots: no timeout and nothing to cancel with: the orchestration returns
// when the slowest call does, however long after its deadline; every result passes
// through the one lock.
//
// What to watch in the report: deadline_overshoot_p99_us and max_us (the slowest
// call), timed_out in the hang scenario; leaked_tasks_at_return is 0 by construction.
package exhibits

import "sync"

// MutexAggregation runs the listing for any fan-out: the printed lines range over
// the fetches, three in the article, one per call here.
func MutexAggregation(e Env, calls []Call) ([]Result, error) {
	// Completion: the article's fetchUser, fetchOrders, fetchAuth at fan-out 3.
	// ROTS HERE: context.Background(): no deadline reaches the calls.
	fetches := make([]func() Result, len(calls))
	for i, c := range calls {
		fetches[i] = e.background(c)
	}

	var (
		mu      sync.Mutex
		wg      sync.WaitGroup // the one addition: the article shows only the goroutine's body
		results []Result
	)
	for _, fetch := range fetches {
		fetch := fetch
		wg.Add(1) // addition (WaitGroup)
		// census: go func() {...}(); addition: wg.Done once the goroutine is no longer
		// counted, so that wg.Wait() is the join the C++ twin does (no leak by construction).
		e.GoThen(func() {
			r := fetch()
			mu.Lock() // ROTS HERE: one lock for every result
			results = append(results, r)
			mu.Unlock()
		}, wg.Done)
	}
	wg.Wait() // addition (WaitGroup); ROTS HERE: no timeout: waits for the slowest call
	return results, nil
}
