// Package fetch is the exhibits' Fetch over net/http, with the lab's call headers
// (X-Orchlab-Key, the deadline header) and the census's completions: what the C++
// harness's HTTP client does for a C++ exhibit (harness/src/http_client.cpp).
package fetch

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	exhibits "orchlab/patterns/go"
	"orchlab/patterns/go/census"
)

// Kind is a call's outcome, as the report counts calls.
type Kind int32

// The outcomes; Unanswered is the zero value.
const (
	Unanswered Kind = iota // no answer when the orchestration returned
	OK                     // a 2xx answer
	HTTP                   // an HTTP answer with another status
	Transport              // connect/read/write failed, reset, closed or malformed
	Cancelled              // the request's context ended first
)

// StatusError is a non-2xx answer.
type StatusError struct{ Status int }

func (e StatusError) Error() string { return "HTTP " + strconv.Itoa(e.Status) }

// Classify says which outcome a Result stands for.
func Classify(r exhibits.Result) Kind {
	var se StatusError
	switch {
	case !r.Done:
		return Unanswered
	case r.Err == nil:
		return OK
	case errors.As(r.Err, &se):
		return HTTP
	case errors.Is(r.Err, context.Canceled), errors.Is(r.Err, context.DeadlineExceeded):
		return Cancelled
	default:
		return Transport
	}
}

// Client sends the exhibits' calls through one http.Client.
type Client struct {
	http     *http.Client
	loopback sync.Map // URL -> bool: the host shares this machine's CLOCK_MONOTONIC
}

// New returns a Client over transport (nil: http.DefaultTransport).
func New(transport http.RoundTripper) *Client {
	if transport == nil {
		transport = http.DefaultTransport
	}
	return &Client{http: &http.Client{Transport: transport}}
}

// For returns the Fetch one orchestration's exhibit calls. Each call's outcome is
// stored in kinds[c.Index] if it ends before the orchestration returns (nil kinds:
// not recorded); a completion (an answer or a transport error, not a cancellation)
// is noted in the census, late when o had returned.
func (cl *Client) For(o *census.Orchestration, kinds []atomic.Int32) exhibits.Fetch {
	return func(ctx context.Context, c exhibits.Call) (exhibits.Result, error) {
		r := cl.get(ctx, c)
		k := Classify(r)
		if k != Cancelled {
			o.NoteCompletion()
		}
		if kinds != nil && !o.Returned() {
			kinds[c.Index].Store(int32(k))
		}
		return r, r.Err
	}
}

func (cl *Client) get(ctx context.Context, c exhibits.Call) exhibits.Result {
	r := exhibits.Result{Index: c.Index, Done: true}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.URL, nil)
	if err != nil {
		r.Err = fmt.Errorf("bad url: %w", err)
		return r
	}
	if c.Key != 0 {
		req.Header.Set("X-Orchlab-Key", strconv.FormatUint(c.Key, 10))
	}
	if c.Window {
		req.Header.Set("X-Orchlab-Phase", "window")
	}
	if c.DeadlineNs != 0 {
		if cl.isLoopback(c.URL, req.URL) {
			req.Header.Set("X-Orchlab-Deadline-Ns", strconv.FormatInt(c.DeadlineNs, 10))
		} else {
			left := (c.DeadlineNs - MonoNs()) / 1e6
			if left < 0 {
				left = 0
			}
			req.Header.Set("X-Orchlab-Timeout-Ms", strconv.FormatInt(left, 10))
		}
	}
	resp, err := cl.http.Do(req)
	if err != nil {
		r.Err = cancelledOr(ctx, err)
		return r
	}
	r.Status = resp.StatusCode
	r.Bytes, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	switch {
	case err != nil:
		r.Err = cancelledOr(ctx, err)
	case resp.StatusCode < 200 || resp.StatusCode > 299:
		r.Err = StatusError{resp.StatusCode}
	}
	return r
}

// cancelledOr names a failure the context caused as the context's error.
func cancelledOr(ctx context.Context, err error) error {
	if ctxErr := ctx.Err(); ctxErr != nil {
		return fmt.Errorf("%w (%v)", ctxErr, err)
	}
	return err
}

func (cl *Client) isLoopback(raw string, u *url.URL) bool {
	if v, ok := cl.loopback.Load(raw); ok {
		return v.(bool)
	}
	loop := IsLoopbackHost(u.Hostname())
	cl.loopback.Store(raw, loop)
	return loop
}

// IsLoopbackHost is true for 127.0.0.0/8, ::1 or "localhost": hosts that share this
// machine's CLOCK_MONOTONIC (pattern.hpp's is_loopback_host).
func IsLoopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

var (
	monoBase  int64
	monoEpoch = time.Now()
)

func init() {
	var ts syscall.Timespec
	const clockMonotonic = 1
	if _, _, e := syscall.Syscall(syscall.SYS_CLOCK_GETTIME, clockMonotonic, uintptr(unsafe.Pointer(&ts)), 0); e != 0 {
		panic("fetch: clock_gettime(CLOCK_MONOTONIC): " + e.Error())
	}
	monoBase = ts.Nano()
}

// MonoNs is CLOCK_MONOTONIC in ns, the clock X-Orchlab-Deadline-Ns speaks: read once,
// then advanced by Go's monotonic clock (itself CLOCK_MONOTONIC on Linux).
func MonoNs() int64 { return monoBase + int64(time.Since(monoEpoch)) }
