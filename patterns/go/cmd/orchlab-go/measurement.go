package main

// measurement is the driver's one line of output (protocol 1). Field names and
// meanings are a C++ report entry's where they apply (harness/src/report.cpp);
// docs/drivers.md lists each with its unit and when it is null.
type measurement struct {
	Protocol    int     `json:"protocol"`
	Runtime     string  `json:"runtime"`
	Pattern     string  `json:"pattern"`
	ExhibitForm string  `json:"exhibit_form"`
	Fanout      int     `json:"fanout"`
	Concurrency int     `json:"concurrency"`
	Callers     int     `json:"callers"`
	Mode        string  `json:"mode"`
	DeadlineMs  float64 `json:"deadline_ms"`
	Limit       int     `json:"limit"`

	Iterations             uint64   `json:"iterations"`
	RealTime               *float64 `json:"real_time"`
	TimeUnit               string   `json:"time_unit"`
	ItemsPerSecond         float64  `json:"items_per_second"`
	P50Us                  *float64 `json:"p50_us"`
	P90Us                  *float64 `json:"p90_us"`
	P99Us                  *float64 `json:"p99_us"`
	P999Us                 *float64 `json:"p999_us"`
	MaxUs                  *float64 `json:"max_us"`
	LatencySamples         uint64   `json:"latency_samples"`
	Complete               uint64   `json:"complete"`
	Partial                uint64   `json:"partial"`
	Failed                 uint64   `json:"failed"`
	TimedOut               uint64   `json:"timed_out"`
	DeadlineOvershootP99Us *float64 `json:"deadline_overshoot_p99_us"`
	LeakedTasksAtReturn    int64    `json:"leaked_tasks_at_return"`
	LeakedTasksEnd         int64    `json:"leaked_tasks_end"`
	ZombieTaskS            float64  `json:"zombie_task_s"`
	LateCompletions        int64    `json:"late_completions"`
	LiveTasksPeak          int64    `json:"live_tasks_peak"`
	DrainMs                float64  `json:"drain_ms"`
	Drained                bool     `json:"drained"`

	WarmupS                float64 `json:"warmup_s"`
	WindowS                float64 `json:"window_s"`
	WallS                  float64 `json:"wall_s"`
	CompletedInWindow      uint64  `json:"completed_in_window"`
	Calls                  uint64  `json:"calls"`
	CallOK                 uint64  `json:"call_ok"`
	CallHTTPErrors         uint64  `json:"call_http_errors"`
	CallTransportErrors    uint64  `json:"call_transport_errors"`
	CallCancelled          uint64  `json:"call_cancelled"`
	CallUnanswered         uint64  `json:"call_unanswered"`
	OrchestrationsPanicked uint64  `json:"orchestrations_panicked"`
	TasksStarted           int64   `json:"tasks_started"`
	TasksFinished          int64   `json:"tasks_finished"`

	TargetRate    *float64 `json:"target_rate,omitempty"`
	AchievedRate  *float64 `json:"achieved_rate,omitempty"`
	Saturated     *bool    `json:"saturated,omitempty"`
	StartsLate    *uint64  `json:"starts_late,omitempty"`
	StartsExpired *uint64  `json:"starts_expired,omitempty"`

	GoVersion          string        `json:"go_version"`
	GOMAXPROCS         int           `json:"gomaxprocs"`
	Transport          transportJSON `json:"transport"`
	GoroutinesBaseline int           `json:"goroutines_baseline"`
	GoroutinesPeak     int           `json:"goroutines_peak"`
	GoroutinesEnd      int           `json:"goroutines_end"`

	Series     series `json:"series"`
	Histograms struct {
		LatencyNs   histogramJSON `json:"latency_ns"`
		OvershootNs histogramJSON `json:"overshoot_ns"`
	} `json:"histograms"`
	Notes []string `json:"notes"`
	// Trace: only when the input asked for it (docs/drivers.md, "trace").
	Trace *traceJSON `json:"trace,omitempty"`
}

type transportJSON struct {
	Mode                string `json:"mode"`
	MaxConnsPerHost     int    `json:"max_conns_per_host"`
	MaxIdleConnsPerHost int    `json:"max_idle_conns_per_host"`
	MaxIdleConns        int    `json:"max_idle_conns"`
	IdleConnTimeoutMs   int64  `json:"idle_conn_timeout_ms"`
}

type series struct {
	BucketMs   float64  `json:"bucket_ms"`
	WindowMs   float64  `json:"window_ms"`
	Started    []uint64 `json:"started"`
	Finished   []uint64 `json:"finished"`
	InFlight   []int64  `json:"in_flight"`
	LiveTasks  []int64  `json:"live_tasks"`
	Goroutines []int64  `json:"goroutines"`
}
