package census

import (
	"testing"
	"time"
)

func TestATaskIsLiveFromGoUntilItsFunctionReturns(t *testing.T) {
	var l Ledger
	o := l.Open()
	release := make(chan struct{})
	o.Go(func() { <-release }) // blocked, as a goroutine on a send or in wg.Wait()
	if o.Live() != 1 || l.Live() != 1 {
		t.Fatalf("live %d / %d right after Go, want 1: registered before the goroutine runs", o.Live(), l.Live())
	}
	if leaked := o.Return(); leaked != 1 {
		t.Errorf("Return: %d live, want 1", leaked)
	}
	o.NoteCompletion() // a reply after the return
	time.Sleep(20 * time.Millisecond)
	close(release)
	if !l.WaitIdle(time.Second) {
		t.Fatal("not idle")
	}
	tot := l.Totals()
	if tot.LeakedAtReturn != 1 || tot.LateCompletions != 1 || tot.Completions != 1 || tot.Orchestrations != 1 {
		t.Errorf("totals %+v", tot)
	}
	if tot.ZombieNs < int64(20*time.Millisecond) {
		t.Errorf("zombie %v, want the 20 ms past the return", time.Duration(tot.ZombieNs))
	}
	if tot.TasksStarted != 1 || tot.TasksFinished != 1 || tot.LiveTasks != 0 {
		t.Errorf("tasks %+v", tot)
	}
}

func TestAJoinedTaskIsNeitherLeakedNorZombie(t *testing.T) {
	var l Ledger
	o := l.Open()
	done := make(chan struct{})
	o.Go(func() { close(done) })
	f := o.Func(func() error { o.NoteCompletion(); return nil })
	_ = f()
	<-done
	l.WaitIdle(time.Second)
	if o.Return() != 0 {
		t.Error("a finished task counted at return")
	}
	if tot := l.Totals(); tot.ZombieNs != 0 || tot.LateCompletions != 0 || tot.TasksStarted != 2 {
		t.Errorf("totals %+v", tot)
	}
	if o.Return() != 0 || l.Totals().Orchestrations != 1 {
		t.Error("Return is not idempotent")
	}
}

func TestNilOrchestrationRunsWithoutCounting(t *testing.T) {
	var o *Orchestration
	done := make(chan struct{})
	o.Go(func() { close(done) })
	<-done
	if err := o.Func(func() error { return nil })(); err != nil || o.Return() != 0 || o.Returned() {
		t.Error("nil orchestration")
	}
	o.NoteCompletion()
}

func TestGoThenSignalsAfterTheTaskEnds(t *testing.T) {
	var l Ledger
	o := l.Open()
	for i := 0; i < 100; i++ {
		done := make(chan struct{})
		o.GoThen(func() {}, func() { close(done) })
		<-done
		if o.Live() != 0 {
			t.Fatalf("a task still live after its then() ran")
		}
	}
	var nilO *Orchestration
	done := make(chan struct{})
	nilO.GoThen(func() {}, func() { close(done) })
	<-done
}
