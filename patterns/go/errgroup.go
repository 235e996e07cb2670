// What it is: go-errgroup, the article's recommended listing: context.WithTimeout,
// errgroup.WithContext, one g.Go per call writing only its own slot, g.Wait().
//
// Where it rots: nowhere in its own lines; it is only as prompt as its fetch, which
// here is net/http with the request's context: the first error or the deadline
// cancels ctx, every sibling's request is aborted, and g.Wait() returns once every
// function has returned.
//
// What to watch in the report: leaked_tasks_at_return and late_completions (0),
// server_client_aborts (the siblings it stopped), p50_us in fail-fast (the error's
// time, not the siblings'), deadline_overshoot_p99_us (how promptly cancellation ends
// a call).
package exhibits

import (
	"context"

	"golang.org/x/sync/errgroup"
)

// ErrGroup runs the listing for any fan-out (it ranges over the calls).
func ErrGroup(e Env, calls []Call) ([]Result, error) {
	ctx, cancel := context.WithTimeout(context.Background(), e.Timeout)
	defer cancel()
	g, ctx := errgroup.WithContext(ctx)
	results := make([]Result, len(calls))
	for i, c := range calls {
		i, c := i, c
		g.Go(e.Func(func() error { // census: g.Go(func() error {...})
			r, err := e.Fetch(ctx, c)
			if err != nil {
				return err
			}
			results[i] = r
			return nil
		}))
	}
	if err := g.Wait(); err != nil {
		return results, err
	}
	return results, nil
}
