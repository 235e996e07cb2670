// What it is: go-channel-soup, the article's first listing. One buffered channel per
// call, a goroutine per call, and a loop of selects over every channel with a
// time.After inside the loop. Every result is appended; none is looked at.
//
// Where it rots: the fetches run on context.Background(), so nothing can stop them:
// when the timer wins, every goroutine still inside its fetch keeps its connection
// and the service's work until the service answers, for nobody. An error does not end
// the wait. The timer restarts with every result, so a run may return up to N
// timeouts after it started.
//
// What to watch in the report: leaked_tasks_at_return, zombie_task_s,
// late_completions, deadline_overshoot_p99_us (the restarted timer), p50_us in
// fail-fast (the error does not end the wait), server_client_aborts (none).
package exhibits

import (
	"errors"
	"reflect"
	"time"
)

// ChannelSoup runs the article's lines at fan-out 3, the reflect.Select form otherwise.
func ChannelSoup(e Env, calls []Call) ([]Result, error) {
	if len(calls) == 3 {
		return channelSoup3(e, calls)
	}
	return channelSoupN(e, calls)
}

func channelSoup3(e Env, calls []Call) ([]Result, error) {
	// Completion: the article's three fetches, bound to the lab's calls.
	// ROTS HERE: context.Background(): nothing can stop these calls once the loop gives up.
	fetchUser, fetchOrders, fetchAuth := e.background(calls[0]), e.background(calls[1]), e.background(calls[2])

	ch1, ch2, ch3 := make(chan Result, 1), make(chan Result, 1), make(chan Result, 1)
	e.Go(func() { ch1 <- fetchUser() })   // census: go func() { ch1 <- fetchUser(id) }()
	e.Go(func() { ch2 <- fetchOrders() }) // census: go func() { ch2 <- fetchOrders(id) }()
	e.Go(func() { ch3 <- fetchAuth() })   // census: go func() { ch3 <- fetchAuth(id) }()
	var results []Result
	for i := 0; i < 3; i++ {
		select {
		case r := <-ch1:
			results = append(results, r) // ROTS HERE: never looked at: an error does not end the wait
		case r := <-ch2:
			results = append(results, r)
		case r := <-ch3:
			results = append(results, r)
		case <-time.After(e.Timeout): // ROTS HERE: a new timer per select: it restarts with every result
			return results, errors.New("timeout") // ROTS HERE: the calls still running are abandoned
		}
	}
	return results, nil
}

// channelSoupN is the same loop for N calls: N channels in a slice and one
// reflect.Select over N receive cases plus the timer, a new timer per select.
func channelSoupN(e Env, calls []Call) ([]Result, error) {
	chans := make([]chan Result, len(calls)) // ch1, ch2, ch3 := make(chan Result, 1), ...
	cases := make([]reflect.SelectCase, len(calls)+1)
	for i, c := range calls {
		ch, fetch := make(chan Result, 1), e.background(c) // ROTS HERE: context.Background()
		chans[i] = ch
		cases[i] = reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(ch)}
		e.Go(func() { ch <- fetch() }) // census: go func() { ch <- fetch(id) }()
	}
	var results []Result
	for i := 0; i < len(calls); i++ {
		// ROTS HERE: a new timer per select (case <-time.After(...) inside the loop).
		cases[len(calls)] = reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(time.After(e.Timeout))}
		chosen, v, _ := reflect.Select(cases)
		if chosen == len(calls) {
			return results, errors.New("timeout") // ROTS HERE: abandoned, not stopped
		}
		results = append(results, v.Interface().(Result)) // ROTS HERE: never looked at
	}
	return results, nil
}
