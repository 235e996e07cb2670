package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"sort"

	exhibits "orchlab/patterns/go"
)

// ProtocolVersion is the driver protocol this binary speaks (docs/drivers.md).
const ProtocolVersion = 1

// input is one cell's repetition as the harness describes it (protocol 1). Pointer
// fields are required unless their comment says otherwise; docs/drivers.md has each
// field's meaning.
type input struct {
	Protocol        *int     `json:"protocol"`
	Pattern         *string  `json:"pattern"`
	Services        []string `json:"services"`
	Fanout          *int     `json:"fanout"`
	Concurrency     *int     `json:"concurrency"`
	Mode            *string  `json:"mode"`
	WarmupS         *float64 `json:"warmup_s"`
	DurationS       *float64 `json:"duration_s"`
	DeadlineMs      *float64 `json:"deadline_ms"`
	MaxConnsPerHost *int     `json:"max_conns_per_host"`
	Limit           *int     `json:"limit"`
	CallKeys        *struct {
		Rule       *string `json:"rule"`
		Repetition *int    `json:"repetition"`
	} `json:"call_keys"`
	// Optional.
	GoTransport     *string  `json:"go_transport"`       // "lab" (default) or "default"
	StartOffsetsNs  []int64  `json:"start_offsets_ns"`   // open loop: required
	StartSeqs       []uint64 `json:"start_seqs"`         // open loop: default 0, 1, ...
	TargetRate      *float64 `json:"target_rate"`        // open loop: for achieved_rate
	CallerIDs       []int    `json:"caller_ids"`         // a shard's callers: default 0..C-1
	DrainTimeoutMs  *float64 `json:"drain_timeout_ms"`   // default 5000
	LoadStartMonoNs *int64   `json:"load_start_mono_ns"` // default: when the input is read
	Trace           *struct {
		MaxOrchestrations *int `json:"max_orchestrations"` // default 262144
		MaxCalls          *int `json:"max_calls"`          // default 131072
	} `json:"trace"` // record the calls and return the samples' spans
}

// cell is the validated input.
type cell struct {
	pattern         string
	exhibit         exhibits.Info
	services        []string
	fanout          int
	concurrency     int
	open            bool
	warmupNs        int64
	durationNs      int64
	deadlineNs      int64
	maxConnsPerHost int
	goTransport     string
	limit           int
	keys            bool
	repetition      int
	starts          []start // open loop, sorted by offset
	targetRate      *float64
	callerIDs       []int
	drainTimeoutNs  int64
	loadStartMonoNs *int64
	trace           *traceBounds // nil: no trace
}

type traceBounds struct{ maxOrchestrations, maxCalls int }

type start struct {
	offsetNs int64
	seq      uint64
}

// parseInput reads and validates the whole of r. Its error is one line for stderr.
func parseInput(r io.Reader) (*cell, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("reading stdin: %v", err)
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, fmt.Errorf("stdin is empty: expected one protocol %d cell (JSON); --help for usage", ProtocolVersion)
	}
	var in input
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil {
		return nil, fmt.Errorf("stdin is not a protocol %d cell: %v", ProtocolVersion, err)
	}
	if dec.More() {
		return nil, errors.New("stdin holds more than one JSON value")
	}
	missing := func(name string) error { return fmt.Errorf("missing field %q", name) }
	switch {
	case in.Protocol == nil:
		return nil, missing("protocol")
	case *in.Protocol != ProtocolVersion:
		return nil, fmt.Errorf("protocol %d is not supported (this driver speaks %d)", *in.Protocol, ProtocolVersion)
	case in.Pattern == nil:
		return nil, missing("pattern")
	case in.Services == nil:
		return nil, missing("services")
	case in.Fanout == nil:
		return nil, missing("fanout")
	case in.Concurrency == nil:
		return nil, missing("concurrency")
	case in.Mode == nil:
		return nil, missing("mode")
	case in.WarmupS == nil:
		return nil, missing("warmup_s")
	case in.DurationS == nil:
		return nil, missing("duration_s")
	case in.DeadlineMs == nil:
		return nil, missing("deadline_ms")
	case in.MaxConnsPerHost == nil:
		return nil, missing("max_conns_per_host")
	case in.Limit == nil:
		return nil, missing("limit")
	case in.CallKeys == nil:
		return nil, missing("call_keys")
	case in.CallKeys.Rule == nil:
		return nil, missing("call_keys.rule")
	}
	c := &cell{pattern: *in.Pattern, services: in.Services, fanout: *in.Fanout,
		concurrency: *in.Concurrency, maxConnsPerHost: *in.MaxConnsPerHost, limit: *in.Limit,
		goTransport: "lab", targetRate: in.TargetRate, loadStartMonoNs: in.LoadStartMonoNs,
		drainTimeoutNs: 5e9}
	var ok bool
	if c.exhibit, ok = exhibits.Lookup(c.pattern); !ok {
		return nil, fmt.Errorf("unknown pattern %q (known: %v)", c.pattern, exhibits.Names())
	}
	if len(c.services) == 0 {
		return nil, errors.New("services is empty")
	}
	for i, s := range c.services {
		if u, err := url.Parse(s); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("services[%d] %q is not an http URL", i, s)
		}
	}
	if c.fanout < 1 || c.fanout > 100000 {
		return nil, fmt.Errorf("fanout %d is outside 1..100000", c.fanout)
	}
	if c.concurrency < 1 || c.concurrency > 1000000 {
		return nil, fmt.Errorf("concurrency %d is outside 1..1000000", c.concurrency)
	}
	switch *in.Mode {
	case "closed":
	case "open":
		c.open = true
	default:
		return nil, fmt.Errorf("mode %q is neither \"closed\" nor \"open\"", *in.Mode)
	}
	if *in.WarmupS < 0 || *in.DurationS <= 0 || *in.WarmupS+*in.DurationS > 86400 {
		return nil, fmt.Errorf("warmup_s %g / duration_s %g: want warmup_s >= 0, duration_s > 0, together at most a day", *in.WarmupS, *in.DurationS)
	}
	c.warmupNs, c.durationNs = int64(*in.WarmupS*1e9), int64(*in.DurationS*1e9)
	if *in.DeadlineMs <= 0 || *in.DeadlineMs > 600000 {
		return nil, fmt.Errorf("deadline_ms %g is outside (0, 600000]", *in.DeadlineMs)
	}
	c.deadlineNs = int64(*in.DeadlineMs * 1e6)
	if c.maxConnsPerHost < 1 {
		return nil, fmt.Errorf("max_conns_per_host %d: want at least 1", c.maxConnsPerHost)
	}
	if c.limit < 1 {
		return nil, fmt.Errorf("limit %d: want at least 1", c.limit)
	}
	if in.GoTransport != nil {
		if *in.GoTransport != "lab" && *in.GoTransport != "default" {
			return nil, fmt.Errorf("go_transport %q is neither \"lab\" nor \"default\"", *in.GoTransport)
		}
		c.goTransport = *in.GoTransport
	}
	switch *in.CallKeys.Rule {
	case "orchlab-v1":
		if in.CallKeys.Repetition == nil {
			return nil, missing("call_keys.repetition")
		}
		c.keys, c.repetition = true, *in.CallKeys.Repetition
	case "none":
	default:
		return nil, fmt.Errorf("call_keys.rule %q is neither \"orchlab-v1\" nor \"none\"", *in.CallKeys.Rule)
	}
	if in.DrainTimeoutMs != nil {
		if *in.DrainTimeoutMs < 0 {
			return nil, errors.New("drain_timeout_ms is negative")
		}
		c.drainTimeoutNs = int64(*in.DrainTimeoutMs * 1e6)
	}
	if c.open {
		if in.StartOffsetsNs == nil {
			return nil, errors.New("mode \"open\" needs start_offsets_ns")
		}
		if in.StartSeqs != nil && len(in.StartSeqs) != len(in.StartOffsetsNs) {
			return nil, fmt.Errorf("start_seqs has %d entries, start_offsets_ns %d", len(in.StartSeqs), len(in.StartOffsetsNs))
		}
		end := c.warmupNs + c.durationNs
		for i, off := range in.StartOffsetsNs {
			if off < 0 || off >= end {
				return nil, fmt.Errorf("start_offsets_ns[%d] = %d is outside [0, warm-up + window = %d)", i, off, end)
			}
			s := start{offsetNs: off, seq: uint64(i)}
			if in.StartSeqs != nil {
				s.seq = in.StartSeqs[i]
			}
			c.starts = append(c.starts, s)
		}
		sort.SliceStable(c.starts, func(i, j int) bool { return c.starts[i].offsetNs < c.starts[j].offsetNs })
	} else if in.StartOffsetsNs != nil || in.StartSeqs != nil || in.TargetRate != nil {
		return nil, errors.New("start_offsets_ns, start_seqs and target_rate belong to mode \"open\"")
	}
	if in.Trace != nil {
		c.trace = &traceBounds{defaultTraceOrchestrations, defaultTraceCalls}
		for _, b := range []struct {
			name string
			v    *int
			into *int
		}{{"trace.max_orchestrations", in.Trace.MaxOrchestrations, &c.trace.maxOrchestrations},
			{"trace.max_calls", in.Trace.MaxCalls, &c.trace.maxCalls}} {
			if b.v == nil {
				continue
			}
			if *b.v < 0 || *b.v > maxTraceBound {
				return nil, fmt.Errorf("%s %d is outside 0..%d", b.name, *b.v, maxTraceBound)
			}
			*b.into = *b.v
		}
	}
	if in.CallerIDs != nil {
		if len(in.CallerIDs) == 0 {
			return nil, errors.New("caller_ids is empty")
		}
		for i, id := range in.CallerIDs {
			if id < 0 || id >= c.concurrency {
				return nil, fmt.Errorf("caller_ids[%d] = %d is outside 0..concurrency-1", i, id)
			}
		}
		c.callerIDs = in.CallerIDs
	} else {
		for i := 0; i < c.concurrency; i++ {
			c.callerIDs = append(c.callerIDs, i)
		}
	}
	return c, nil
}
