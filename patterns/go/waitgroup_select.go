// What it is: go-waitgroup-select, the article's second listing. A goroutine per call
// writing results[i] under a sync.WaitGroup, a waiter goroutine that closes `done`
// after wg.Wait(), and one select between `done` and time.After.
//
// Where it rots: the fetches run on context.Background(): when the timer wins, the
// calls and the waiter (blocked in wg.Wait()) run on for nobody. An error does not
// close `done`: a failed call still waits for its slowest sibling or the timeout. On
// timeout even the results that arrived are thrown away (nil).
//
// What to watch in the report: leaked_tasks_at_return (the calls plus the waiter),
// zombie_task_s, late_completions, p50_us in fail-fast, server_client_aborts (none).
package exhibits

import (
	"errors"
	"sync"
	"time"
)

// WaitGroupSelect runs the article's lines at fan-out 3, the loop form otherwise.
func WaitGroupSelect(e Env, calls []Call) ([]Result, error) {
	if len(calls) == 3 {
		return waitGroupSelect3(e, calls)
	}
	return waitGroupSelectN(e, calls)
}

func waitGroupSelect3(e Env, calls []Call) ([]Result, error) {
	// Completion: the article's three fetches, bound to the lab's calls.
	// ROTS HERE: context.Background(): nothing can stop these calls once the select gives up.
	fetchUser, fetchOrders, fetchAuth := e.background(calls[0]), e.background(calls[1]), e.background(calls[2])

	var wg sync.WaitGroup
	results := make([]Result, 3)
	wg.Add(3)
	e.Go(func() { defer wg.Done(); results[0] = fetchUser() })   // census: go func() {...}()
	e.Go(func() { defer wg.Done(); results[1] = fetchOrders() }) // census: go func() {...}()
	e.Go(func() { defer wg.Done(); results[2] = fetchAuth() })   // census: go func() {...}()
	done := make(chan struct{})
	e.Go(func() { wg.Wait(); close(done) }) // census: go func() {...}(); ROTS HERE: outlives a timeout
	select {
	case <-done:
		return results, nil
	case <-time.After(e.Timeout):
		return nil, errors.New("timeout") // ROTS HERE: abandoned, not stopped
	}
}

// waitGroupSelectN is the same for N calls: wg.Add(N) and one goroutine per call in
// a loop, each writing its own slot.
func waitGroupSelectN(e Env, calls []Call) ([]Result, error) {
	var wg sync.WaitGroup
	results := make([]Result, len(calls))
	wg.Add(len(calls))
	for i, c := range calls {
		i, fetch := i, e.background(c)                         // ROTS HERE: context.Background()
		e.Go(func() { defer wg.Done(); results[i] = fetch() }) // census: go func() {...}()
	}
	done := make(chan struct{})
	e.Go(func() { wg.Wait(); close(done) }) // census: go func() {...}(); ROTS HERE: outlives a timeout
	select {
	case <-done:
		return results, nil
	case <-time.After(e.Timeout):
		return nil, errors.New("timeout") // ROTS HERE: abandoned, not stopped
	}
}
