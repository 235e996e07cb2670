package fetch

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	exhibits "orchlab/patterns/go"
	"orchlab/patterns/go/census"
)

func TestCallHeadersAndOutcomes(t *testing.T) {
	var key, deadline, phase atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key.Store(r.Header.Get("X-Orchlab-Key"))
		deadline.Store(r.Header.Get("X-Orchlab-Deadline-Ns"))
		phase.Store(r.Header.Get("X-Orchlab-Phase"))
		if r.URL.Query().Get("status") != "" {
			w.WriteHeader(503)
		}
	}))
	defer srv.Close()
	var l census.Ledger
	o := l.Open()
	kinds := make([]atomic.Int32, 2)
	f := New(nil).For(o, kinds)
	due := MonoNs() + int64(time.Second)
	r, err := f(context.Background(), exhibits.Call{Index: 0, URL: srv.URL, Key: 42, DeadlineNs: due, Window: true})
	if err != nil || Classify(r) != OK || r.Index != 0 {
		t.Fatalf("%+v %v", r, err)
	}
	if key.Load() != "42" || deadline.Load() != strconv.FormatInt(due, 10) || phase.Load() != "window" {
		t.Errorf("headers: key %v, deadline %v, phase %q (want %d, absolute CLOCK_MONOTONIC to a loopback host; window)", key.Load(), deadline.Load(), phase.Load(), due)
	}
	r, err = f(context.Background(), exhibits.Call{Index: 1, URL: srv.URL + "/?status=503"})
	if se, ok := err.(StatusError); !ok || se.Status != 503 || Classify(r) != HTTP {
		t.Errorf("503: %+v %v", r, err)
	}
	if phase.Load() != "" {
		t.Errorf("a warm-up call sent X-Orchlab-Phase %q", phase.Load())
	}
	if Kind(kinds[0].Load()) != OK || Kind(kinds[1].Load()) != HTTP {
		t.Errorf("recorded kinds %d %d", kinds[0].Load(), kinds[1].Load())
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if r, _ := f(ctx, exhibits.Call{URL: srv.URL}); Classify(r) != Cancelled {
		t.Errorf("cancelled: %+v", r)
	}
	if r, _ := f(context.Background(), exhibits.Call{URL: "http://127.0.0.1:1/"}); Classify(r) != Transport {
		t.Errorf("refused: %+v", r)
	}
	// Completions: the 200, the 503 and the refused connection; not the cancellation.
	if tot := l.Totals(); tot.Completions != 3 || tot.LateCompletions != 0 {
		t.Errorf("totals %+v", tot)
	}
}

func TestLoopbackHosts(t *testing.T) {
	for h, want := range map[string]bool{"127.0.0.1": true, "127.1.2.3": true, "::1": true,
		"localhost": true, "10.0.0.1": false, "example.com": false} {
		if IsLoopbackHost(h) != want {
			t.Errorf("%s: %v", h, !want)
		}
	}
}

func TestMonoNsIsClockMonotonic(t *testing.T) {
	a := MonoNs()
	time.Sleep(5 * time.Millisecond)
	if d := MonoNs() - a; d < int64(5*time.Millisecond) || d > int64(time.Second) {
		t.Errorf("MonoNs advanced %d ns over 5 ms", d)
	}
}
