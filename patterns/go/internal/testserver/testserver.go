// Package testserver is a small in-process service for the Go exhibits' tests, with
// the mock's per-request overrides in the query: delay_ms, status, hang=1 (never
// answers until the client leaves or Close). It counts what the tests assert on:
// requests, the peak of requests in flight, and client aborts (a request whose
// context ended while the handler waited: the client cancelled or closed).
package testserver

import (
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Server is an httptest.Server with counters.
type Server struct {
	*httptest.Server
	Requests    atomic.Int64
	InFlight    atomic.Int64
	MaxInFlight atomic.Int64
	Aborts      atomic.Int64
	Answered    atomic.Int64
	release     chan struct{}
	closeOnce   sync.Once
}

// Start starts a Server; Close releases hanging requests and stops it.
func Start() *Server {
	s := &Server{release: make(chan struct{})}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	return s
}

// Close releases every hanging request (they answer 200) and stops the server.
func (s *Server) Close() {
	s.Release()
	s.Server.Close()
}

// Release makes every hanging request, now and later, answer 200 at once.
func (s *Server) Release() { s.closeOnce.Do(func() { close(s.release) }) }

// URL returns the server's URL with the query q ("delay_ms=50&status=503").
func (s *Server) At(q string) string { return s.Server.URL + "/?" + q }

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	s.Requests.Add(1)
	n := s.InFlight.Add(1)
	defer s.InFlight.Add(-1)
	for {
		m := s.MaxInFlight.Load()
		if n <= m || s.MaxInFlight.CompareAndSwap(m, n) {
			break
		}
	}
	q := r.URL.Query()
	delay, _ := strconv.Atoi(q.Get("delay_ms"))
	status := http.StatusOK
	if v, err := strconv.Atoi(q.Get("status")); err == nil {
		status = v
	}
	var wait <-chan time.Time
	if q.Get("hang") == "" {
		wait = time.After(time.Duration(delay) * time.Millisecond)
	}
	select {
	case <-wait:
	case <-s.release:
	case <-r.Context().Done():
		s.Aborts.Add(1)
		return
	}
	s.Answered.Add(1)
	w.WriteHeader(status)
	_, _ = w.Write([]byte("ok"))
}

// Eventually polls cond every millisecond for up to d; reports whether it held.
func Eventually(d time.Duration, cond func() bool) bool {
	until := time.Now().Add(d)
	for !cond() {
		if time.Now().After(until) {
			return false
		}
		time.Sleep(time.Millisecond)
	}
	return true
}
