// What it is: go-errgroup+ignores-ctx, the article's FAQ ("If a goroutine ignores
// context entirely, you're stuck waiting for it"): go-errgroup's listing, line for
// line, except that one call (fetchUser, call 0) is made with context.Background()
// instead of the group's ctx, as a helper written before the codebase had contexts is.
//
// Where it rots: at that call. The deadline and the first error cancel ctx, and every
// other request is aborted on time; the one that ignores ctx runs on until its service
// answers or closes, and g.Wait() waits for it. Nothing leaks (the group joins); the
// orchestration overshoots its deadline by as long as that call takes.
//
// What to watch in the report: deadline_overshoot_p99_us in claim-ignores-context
// (about the hang, against go-errgroup's few milliseconds), leaked_tasks_at_return
// (0: it waits instead of leaking).
package exhibits

import (
	"context"

	"golang.org/x/sync/errgroup"
)

// ErrGroupIgnoresCtx runs the listing for any fan-out; call 0 ignores ctx.
func ErrGroupIgnoresCtx(e Env, calls []Call) ([]Result, error) {
	ctx, cancel := context.WithTimeout(context.Background(), e.Timeout)
	defer cancel()
	g, ctx := errgroup.WithContext(ctx)
	results := make([]Result, len(calls))
	for i, c := range calls {
		i, c := i, c
		callCtx := ctx
		if i == 0 {
			// ROTS HERE: fetchUser ignores the group's ctx; neither the deadline nor
			// a sibling's error can stop it, and g.Wait() below waits for it.
			callCtx = context.Background()
		}
		g.Go(e.Func(func() error { // census: g.Go(func() error {...})
			r, err := e.Fetch(callCtx, c)
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
