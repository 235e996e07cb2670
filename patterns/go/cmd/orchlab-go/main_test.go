package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	exhibits "orchlab/patterns/go"
	"orchlab/patterns/go/internal/testserver"
)

// cellJSON is a small valid cell; overrides replace or add fields (nil deletes one).
func cellJSON(t *testing.T, services []string, overrides map[string]any) string {
	t.Helper()
	c := map[string]any{
		"protocol": 1, "pattern": "go-errgroup", "services": services, "fanout": 3,
		"concurrency": 4, "mode": "closed", "warmup_s": 0.1, "duration_s": 0.3,
		"deadline_ms": 100, "max_conns_per_host": 8, "limit": 2,
		"call_keys":        map[string]any{"rule": "orchlab-v1", "repetition": 0},
		"drain_timeout_ms": 1000,
	}
	for k, v := range overrides {
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
	}
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// drive runs the driver in-process and decodes its one measurement.
func drive(t *testing.T, in string) map[string]any {
	t.Helper()
	var out, errOut bytes.Buffer
	if rc := run(strings.NewReader(in), &out, &errOut); rc != 0 {
		t.Fatalf("exit %d, stderr %q", rc, errOut.String())
	}
	if errOut.Len() != 0 {
		t.Errorf("stderr %q on success", errOut.String())
	}
	if n := strings.Count(out.String(), "\n"); n != 1 {
		t.Fatalf("%d lines on stdout, want one JSON line", n)
	}
	var m map[string]any
	if err := json.Unmarshal(out.Bytes(), &m); err != nil {
		t.Fatalf("stdout is not JSON: %v", err)
	}
	return m
}

func num(t *testing.T, m map[string]any, k string) float64 {
	t.Helper()
	v, ok := m[k].(float64)
	if !ok {
		t.Fatalf("%s = %v, want a number", k, m[k])
	}
	return v
}

// checkInvariants holds for every measurement.
func checkInvariants(t *testing.T, m map[string]any) {
	t.Helper()
	it := num(t, m, "iterations")
	if it <= 0 {
		t.Fatalf("no iterations")
	}
	if s := num(t, m, "complete") + num(t, m, "partial") + num(t, m, "failed") + num(t, m, "timed_out"); s != it {
		t.Errorf("verdicts sum to %v, iterations %v", s, it)
	}
	fan := num(t, m, "fanout")
	calls := num(t, m, "calls")
	if m["mode"] == "closed" && calls != it*fan {
		t.Errorf("calls %v, want iterations x fanout = %v", calls, it*fan)
	}
	if s := num(t, m, "call_ok") + num(t, m, "call_http_errors") + num(t, m, "call_transport_errors") +
		num(t, m, "call_cancelled") + num(t, m, "call_unanswered"); s != calls {
		t.Errorf("call outcomes sum to %v, calls %v", s, calls)
	}
	if num(t, m, "latency_samples") != it {
		t.Errorf("latency_samples %v, iterations %v", m["latency_samples"], it)
	}
	h := m["histograms"].(map[string]any)["latency_ns"].(map[string]any)
	var n float64
	for _, b := range h["buckets"].([]any) {
		bb := b.([]any)
		if bb[0].(float64) > bb[1].(float64) || bb[2].(float64) <= 0 {
			t.Errorf("bad bucket %v", bb)
		}
		n += bb[2].(float64)
	}
	if n != it || num(t, h, "count") != it {
		t.Errorf("histogram holds %v (count %v), iterations %v", n, h["count"], it)
	}
	prev := 0.0
	for _, k := range []string{"p50_us", "p90_us", "p99_us", "p999_us", "max_us"} {
		if v, ok := m[k].(float64); ok {
			if v < prev {
				t.Errorf("%s %v below the percentile before it (%v)", k, v, prev)
			}
			prev = v
		} else if m[k] != nil {
			t.Errorf("%s = %v, want a number or null", k, m[k])
		}
	}
	if math.Abs(num(t, m, "max_us")*1000-num(t, h, "max")) > 1 {
		t.Errorf("max_us %v, histogram max %v ns", m["max_us"], h["max"])
	}
	if num(t, m, "leaked_tasks_end") > num(t, m, "live_tasks_peak") && m["drained"] == true {
		t.Errorf("leaked_tasks_end %v above the peak %v", m["leaked_tasks_end"], m["live_tasks_peak"])
	}
	if num(t, m, "tasks_started") < num(t, m, "tasks_finished") {
		t.Errorf("more tasks finished than started")
	}
	ser := m["series"].(map[string]any)
	l := len(ser["started"].([]any))
	for _, k := range []string{"finished", "in_flight", "live_tasks", "goroutines"} {
		if len(ser[k].([]any)) != l {
			t.Errorf("series %s has %d buckets, started %d", k, len(ser[k].([]any)), l)
		}
	}
	if m["runtime"] != "go" || m["protocol"] != 1.0 || !strings.HasPrefix(m["go_version"].(string), "go") || num(t, m, "gomaxprocs") < 1 {
		t.Errorf("identity: runtime %v protocol %v go %v gomaxprocs %v", m["runtime"], m["protocol"], m["go_version"], m["gomaxprocs"])
	}
	if num(t, m, "items_per_second") <= 0 {
		t.Errorf("items_per_second %v", m["items_per_second"])
	}
}

func TestClosedLoopHealthyCell(t *testing.T) {
	s := testserver.Start()
	defer s.Close()
	// A deadline far above the 5 ms calls: a loaded machine (make test on 2 cores) must
	// not turn a healthy call into a timeout.
	m := drive(t, cellJSON(t, []string{s.At("delay_ms=5")}, map[string]any{"deadline_ms": 2000}))
	checkInvariants(t, m)
	if m["complete"] != m["iterations"] || m["leaked_tasks_at_return"] != 0.0 || m["late_completions"] != 0.0 {
		t.Errorf("healthy errgroup: complete %v of %v, leaked %v, late %v", m["complete"], m["iterations"], m["leaked_tasks_at_return"], m["late_completions"])
	}
	tr := m["transport"].(map[string]any)
	if tr["mode"] != "lab" || tr["max_conns_per_host"] != 8.0 || tr["max_idle_conns_per_host"] != 8.0 {
		t.Errorf("transport %v, want lab with 8 per host", tr)
	}
	if m["exhibit_form"] != "article" {
		t.Errorf("exhibit_form %v", m["exhibit_form"])
	}
	// A closed loop of 4 callers at ~5 ms keeps ~4 x 3 calls in flight at the server.
	if s.MaxInFlight.Load() > 12 {
		t.Errorf("server saw %d calls in flight, 4 callers x 3 calls at most", s.MaxInFlight.Load())
	}
}

func TestDefaultTransportIsLeftAlone(t *testing.T) {
	s := testserver.Start()
	defer s.Close()
	m := drive(t, cellJSON(t, []string{s.At("delay_ms=5")}, map[string]any{"go_transport": "default", "duration_s": 0.1}))
	tr := m["transport"].(map[string]any)
	if tr["mode"] != "default" || tr["max_conns_per_host"] != 0.0 || tr["max_idle_conns_per_host"] != float64(http.DefaultMaxIdleConnsPerHost) {
		t.Errorf("transport %v, want Go's defaults (no per-host limit, %d idle)", tr, http.DefaultMaxIdleConnsPerHost)
	}
}

// The soup against a hanging service: every orchestration times out, leaves its
// hanging call behind, and the bounded drain gives up while the call still hangs.
func TestClosedLoopSoupLeaksIntoTheDrain(t *testing.T) {
	s := testserver.Start()
	defer s.Close()
	m := drive(t, cellJSON(t, []string{s.At("delay_ms=1"), s.At("delay_ms=1"), s.At("hang=1")},
		map[string]any{"pattern": "go-channel-soup", "fanout": 4, "concurrency": 2, "drain_timeout_ms": 150}))
	checkInvariants(t, m)
	if m["exhibit_form"] != "fanout-n" {
		t.Errorf("exhibit_form %v at fan-out 4", m["exhibit_form"])
	}
	it := num(t, m, "iterations")
	if m["timed_out"] != it {
		t.Errorf("timed_out %v of %v", m["timed_out"], it)
	}
	if num(t, m, "leaked_tasks_at_return") < it || num(t, m, "leaked_tasks_end") < 1 {
		t.Errorf("leaked at return %v, at end %v", m["leaked_tasks_at_return"], m["leaked_tasks_end"])
	}
	if m["drained"] != false || num(t, m, "drain_ms") < 140 {
		t.Errorf("drained %v after %v ms, want a drain that gave up at 150 ms", m["drained"], m["drain_ms"])
	}
	if num(t, m, "call_unanswered") < it || s.Aborts.Load() != 0 {
		t.Errorf("unanswered %v, server aborts %d", m["call_unanswered"], s.Aborts.Load())
	}
	// One deadline after its last fast reply: timed out, just past the deadline.
	if p50 := num(t, m, "p50_us"); p50 < 100e3 || p50 > 400e3 {
		t.Errorf("p50 %v us", p50)
	}
	s.Release()
}

func TestOpenLoopCountsExpiredStarts(t *testing.T) {
	s := testserver.Start()
	defer s.Close()
	// 100 starts per second over 0.1 s warm-up + 0.3 s window, one worker, 30 ms per
	// orchestration that no timeout cuts short (mutex-aggregation): the queue grows and
	// starts expire. (An errgroup would time out each start at its deadline, so the
	// queue would stop growing just short of expiry.)
	var offsets []int64
	for off := int64(0); off < 400e6; off += 10e6 {
		offsets = append(offsets, off)
	}
	m := drive(t, cellJSON(t, []string{s.At("delay_ms=30")}, map[string]any{
		"pattern": "go-mutex-aggregation", "mode": "open", "concurrency": 1, "start_offsets_ns": offsets,
		"target_rate": 100.0}))
	checkInvariants(t, m)
	if it := num(t, m, "iterations"); it != 30 {
		t.Errorf("iterations %v, want the window's 30 starts (run or expired)", it)
	}
	if num(t, m, "starts_expired") < 1 || m["saturated"] != true || num(t, m, "achieved_rate") >= 95 {
		t.Errorf("expired %v, saturated %v, achieved %v", m["starts_expired"], m["saturated"], m["achieved_rate"])
	}
	if num(t, m, "p50_us") < 100e3 {
		t.Errorf("p50 %v us: latency counts from the intended start", m["p50_us"])
	}
}

func TestBadInputExits2WithOneLine(t *testing.T) {
	good := cellJSON(t, []string{"http://127.0.0.1:1/"}, nil)
	cases := map[string]string{
		"not json":         "{",
		"two values":       good + good,
		"unknown pattern":  cellJSON(t, []string{"http://127.0.0.1:1/"}, map[string]any{"pattern": "channel-soup"}),
		"missing field":    cellJSON(t, []string{"http://127.0.0.1:1/"}, map[string]any{"deadline_ms": nil}),
		"wrong version":    cellJSON(t, []string{"http://127.0.0.1:1/"}, map[string]any{"protocol": 2}),
		"unknown field":    cellJSON(t, []string{"http://127.0.0.1:1/"}, map[string]any{"fan_out": 3}),
		"open, no starts":  cellJSON(t, []string{"http://127.0.0.1:1/"}, map[string]any{"mode": "open"}),
		"bad url":          cellJSON(t, []string{"127.0.0.1:1"}, nil),
		"bad transport":    cellJSON(t, []string{"http://127.0.0.1:1/"}, map[string]any{"go_transport": "fast"}),
		"start past end":   cellJSON(t, []string{"http://127.0.0.1:1/"}, map[string]any{"mode": "open", "start_offsets_ns": []int64{400e6}}),
		"no keys rule":     cellJSON(t, []string{"http://127.0.0.1:1/"}, map[string]any{"call_keys": map[string]any{}}),
		"zero concurrency": cellJSON(t, []string{"http://127.0.0.1:1/"}, map[string]any{"concurrency": 0}),
	}
	for name, in := range cases {
		var out, errOut bytes.Buffer
		rc := run(strings.NewReader(in), &out, &errOut)
		if rc != 2 || out.Len() != 0 {
			t.Errorf("%s: exit %d, stdout %q; want 2 and nothing", name, rc, out.String())
		}
		if e := errOut.String(); !strings.HasPrefix(e, "orchlab-go: ") || strings.Count(e, "\n") != 1 {
			t.Errorf("%s: stderr %q, want one line", name, e)
		}
	}
}

// The keys are harness/src/driver.cpp's call_key: golden values from its definition.
func TestCallKeyMatchesTheCppRule(t *testing.T) {
	if k := callKey(0, 0, 0, 0); k != 16321491304643971414 {
		t.Errorf("callKey(0,0,0,0) = %d", k)
	}
	if k := callKey(3, 5, 7, 2); k != 10159594445656331534 {
		t.Errorf("callKey(3,5,7,2) = %d", k)
	}
}

func TestHistogramBucketsAreTheLabs(t *testing.T) {
	for _, c := range []struct {
		v        uint64
		i        int
		low, hig uint64
	}{{0, 0, 0, 0}, {127, 127, 127, 127}, {128, 128, 128, 128}, {255, 255, 255, 255},
		{256, 256, 256, 257}, {257, 256, 256, 257}, {1000, 8*0 + 3*128 + 122 - 0, 0, 0}} {
		if c.v == 1000 {
			i := bucketOf(1000)
			if bucketLow(i) > 1000 || bucketHigh(i) < 1000 || bucketHigh(i)-bucketLow(i) != 3 {
				t.Errorf("1000 in [%d, %d]", bucketLow(i), bucketHigh(i))
			}
			continue
		}
		if i := bucketOf(c.v); i != c.i || bucketLow(i) != c.low || bucketHigh(i) != c.hig {
			t.Errorf("%d: bucket %d [%d, %d], want %d [%d, %d]", c.v, i, bucketLow(i), bucketHigh(i), c.i, c.low, c.hig)
		}
	}
	var h logHistogram
	for v := uint64(1); v <= 1000; v++ {
		h.record(v * 1000)
	}
	if p := h.quantile(0.5); p < 495000 || p > 505000 {
		t.Errorf("p50 of 1..1000 us = %d ns", p)
	}
	if h.quantileUs(0.999) == nil || (&logHistogram{count: 999}).quantileUs(0.999) != nil {
		t.Errorf("p99.9 needs 1000 samples")
	}
}

func TestVerdictIsClassify(t *testing.T) {
	ok := exhibits.Result{Done: true, Status: 200}
	bad := exhibits.Result{Done: true, Status: 503, Err: fmt.Errorf("x")}
	at := func(i int, r exhibits.Result) exhibits.Result { r.Index = i; return r }
	for _, c := range []struct {
		rs     []exhibits.Result
		passed bool
		want   string
	}{
		{[]exhibits.Result{at(0, ok), at(1, ok)}, true, "complete"},
		{[]exhibits.Result{at(1, ok)}, true, "timed_out"},
		{[]exhibits.Result{at(1, ok)}, false, "partial"},
		{[]exhibits.Result{at(0, bad), at(1, ok)}, true, "partial"},
		{[]exhibits.Result{at(0, bad)}, false, "failed"},
		{nil, true, "timed_out"},
	} {
		if got := verdict(2, c.rs, c.passed); got != c.want {
			t.Errorf("%v passed=%v: %s, want %s", c.rs, c.passed, got, c.want)
		}
	}
}

// One run against the real orchlab-mock, if it was built: the errgroup's first error
// reaches the slow services as client aborts; the soup's does not.
func TestAgainstOrchlabMock(t *testing.T) {
	bin := os.Getenv("ORCHLAB_MOCK")
	if bin == "" {
		bin, _ = filepath.Abs("../../../../build/release/mock_services/orchlab-mock")
	}
	if _, err := os.Stat(bin); err != nil {
		t.Skipf("orchlab-mock not found at %s (make release builds it; ORCHLAB_MOCK= names another)", bin)
	}
	cfg := filepath.Join(t.TempDir(), "mock.json")
	os.WriteFile(cfg, []byte(`{"bind":"127.0.0.1","services":[
	 {"name":"slow","port":0,"seed":1,"latency":{"dist":"fixed","ms":50}},
	 {"name":"slow2","port":0,"seed":2,"latency":{"dist":"fixed","ms":50}},
	 {"name":"bad","port":0,"seed":3,"latency":{"dist":"fixed","ms":1},
	  "faults":[{"kind":"status","code":503,"probability":1.0}]}]}`), 0o644)
	cmd := exec.Command(bin, "--config", cfg)
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Skipf("orchlab-mock would not start: %v", err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	var urls []string
	dec := json.NewDecoder(stdout)
	for {
		var line struct {
			URL   string `json:"url"`
			Ready bool   `json:"ready"`
		}
		if err := dec.Decode(&line); err != nil {
			t.Fatalf("reading the mock's start lines: %v", err)
		}
		if line.Ready {
			break
		}
		urls = append(urls, line.URL)
	}
	aborts := func() float64 {
		var sum float64
		for _, u := range urls[:2] {
			resp, err := http.Get(u + "/__stats")
			if err != nil {
				t.Fatal(err)
			}
			var st map[string]any
			json.NewDecoder(resp.Body).Decode(&st)
			resp.Body.Close()
			sum += st["client_aborts"].(float64)
		}
		return sum
	}
	for _, p := range []string{"go-errgroup", "go-channel-soup"} {
		before := aborts()
		m := drive(t, cellJSON(t, urls, map[string]any{"pattern": p, "duration_s": 0.3, "concurrency": 2}))
		checkInvariants(t, m)
		time.Sleep(20 * time.Millisecond)
		got := aborts() - before
		switch p {
		case "go-errgroup":
			if got < num(t, m, "iterations") || num(t, m, "p50_us") > 40e3 {
				t.Errorf("%s: %v aborts for %v orchestrations, p50 %v us", p, got, m["iterations"], m["p50_us"])
			}
		case "go-channel-soup":
			if got != 0 || num(t, m, "p50_us") < 45e3 || num(t, m, "partial") != num(t, m, "iterations") {
				t.Errorf("%s: %v aborts, p50 %v us, partial %v of %v", p, got, m["p50_us"], m["partial"], m["iterations"])
			}
		}
	}
}
