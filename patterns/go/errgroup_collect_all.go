// What it is: go-errgroup+collect-all, the article's FAQ answer to "I want all
// results even if some fail": handle the error inside the function, write the failed
// result to its slot and return nil, under the same context.WithTimeout.
//
// Where it rots: an error stops nobody (by design); only the deadline cancels, so a
// failed orchestration waits for its slowest sibling.
//
// What to watch in the report: partial (every slot keeps its own error),
// p50_us in fail-fast (the siblings' time), leaked_tasks_at_return (0).
package exhibits

import (
	"context"

	"golang.org/x/sync/errgroup"
)

// ErrGroupCollectAll runs the FAQ's listing for any fan-out.
func ErrGroupCollectAll(e Env, calls []Call) ([]Result, error) {
	ctx, cancel := context.WithTimeout(context.Background(), e.Timeout)
	defer cancel()
	g, ctx := errgroup.WithContext(ctx)
	results := make([]Result, len(calls))
	for i, c := range calls {
		i, c := i, c
		g.Go(e.Func(func() error { // census: g.Go(func() error {...})
			r, _ := e.Fetch(ctx, c) // handled internally: r.Err holds the error
			results[i] = r          // the failed result goes to its slot
			return nil
		}))
	}
	if err := g.Wait(); err != nil { // never: no function returns an error
		return results, err
	}
	return results, nil
}
