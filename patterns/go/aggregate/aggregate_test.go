package aggregate

import (
	"fmt"
	"runtime"
	"testing"
)

// BenchmarkAggregate is BM_Aggregate in Go: BenchmarkAggregate/<strategy>/work_ns:<W>,
// one op = one fan-out of TasksFor(W) tasks on a crew of GOMAXPROCS goroutines (set it
// with -cpu 1,2,...). It reports tasks/op; items/s = tasks/op / (ns/op × 1e-9)
// (scripts/go_micro.py converts the output to go_micro.json).
func BenchmarkAggregate(b *testing.B) {
	for _, s := range Strategies {
		for _, w := range WorkNs {
			s, w := s, w
			b.Run(fmt.Sprintf("%s/work_ns:%d", s, w), func(b *testing.B) {
				tasks := TasksFor(w)
				c := NewCrew(s, runtime.GOMAXPROCS(0), tasks, w)
				defer c.Close()
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					c.FanOut()
				}
				b.StopTimer()
				b.ReportMetric(float64(tasks), "tasks/op")
			})
		}
	}
}

func TestEveryStrategyCollectsEveryResult(t *testing.T) {
	for _, threads := range []int{1, 2, 3} {
		for _, s := range Strategies {
			c := NewCrew(s, threads, 97, 0)
			for k := 0; k < 3; k++ {
				c.FanOut()
				if got := c.Collected(); got != 97 {
					t.Fatalf("%s on %d goroutines, fan-out %d: %d of 97 results collected", s, threads, k, got)
				}
			}
			c.Close()
		}
	}
}

func TestTasksPerFanOutAreBMAggregates(t *testing.T) {
	for w, want := range map[int64]int{0: 4096, 1_000: 2000, 10_000: 200, 100_000: 64} {
		if got := TasksFor(w); got != want {
			t.Errorf("TasksFor(%d) = %d, want %d", w, got, want)
		}
	}
}
