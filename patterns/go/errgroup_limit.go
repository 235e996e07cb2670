// What it is: go-errgroup-limit, go-errgroup with g.SetLimit(limit): at most `limit`
// calls of one orchestration in flight; g.Go blocks until a slot is free.
//
// Where it rots: fan-out / limit rounds of latency; after a cancellation g.Go still
// starts the queued functions, whose fetches fail at once on the cancelled context.
//
// What to watch in the report: p50_us against go-errgroup (the rounds), the mock's
// max_in_flight (at most concurrency x limit), call_cancelled.
package exhibits

import (
	"context"

	"golang.org/x/sync/errgroup"
)

// ErrGroupLimit runs the listing for any fan-out with SetLimit(e.Limit).
func ErrGroupLimit(e Env, calls []Call) ([]Result, error) {
	ctx, cancel := context.WithTimeout(context.Background(), e.Timeout)
	defer cancel()
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(e.Limit)
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
