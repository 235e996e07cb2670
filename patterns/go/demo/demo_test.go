package demo

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

// build compiles one demonstration (with -race when race is set) into a temporary
// directory, with the go command that runs this test and its environment (make test-go's
// GOFLAGS, GOPROXY=off and GOCACHE: nothing is downloaded).
func build(t *testing.T, name string, race bool) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), name)
	args := []string{"build", "-o", bin}
	if race {
		args = append(args, "-race")
	}
	cmd := exec.Command(filepath.Join(runtime.GOROOT(), "bin", "go"), append(args, "./"+name)...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return bin
}

// run runs a built demonstration (10 s at most) and returns its exit status and stderr.
func run(t *testing.T, bin string) (int, string) {
	t.Helper()
	cmd := exec.Command(bin)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	timer := time.AfterFunc(10*time.Second, func() { _ = cmd.Process.Kill() })
	defer timer.Stop()
	err := cmd.Wait()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return 0, stderr.String()
	case errors.As(err, &exit):
		return exit.ExitCode(), stderr.String()
	}
	t.Fatalf("%s: %v", bin, err)
	return -1, ""
}

// rotsAt is the line number of a demonstration's "// ROTS HERE" comment.
func rotsAt(t *testing.T, name string) string {
	t.Helper()
	src, err := os.ReadFile(filepath.Join(name, "main.go"))
	if err != nil {
		t.Fatal(err)
	}
	for i, line := range strings.Split(string(src), "\n") {
		if strings.Contains(line, "// ROTS HERE") {
			return strconv.Itoa(i + 1)
		}
	}
	t.Fatalf("%s/main.go has no ROTS HERE line", name)
	return ""
}

func TestDoneAfterAddPanicsTheRuntime(t *testing.T) {
	code, stderr := run(t, build(t, "done_after_add", false))
	if code != 2 || !strings.HasPrefix(stderr, "panic: sync: negative WaitGroup counter\n") {
		t.Fatalf("exit %d, stderr:\n%s", code, stderr)
	}
}

func TestAddAfterWaitIsReportedAsARace(t *testing.T) {
	bin := build(t, "add_after_wait", true)
	for i := 0; i < 3; i++ { // the timing is fixed: every run reports it
		code, stderr := run(t, bin)
		if code != 66 || !strings.Contains(stderr, "WARNING: DATA RACE") ||
			!strings.Contains(stderr, "add_after_wait/main.go:"+rotsAt(t, "add_after_wait")) {
			t.Fatalf("run %d: exit %d, stderr:\n%s", i, code, stderr)
		}
	}
}

func TestAddWhileWaitingOnANonZeroCounterIsNotARace(t *testing.T) {
	code, stderr := run(t, build(t, "add_while_waiting", true))
	if code != 0 || strings.Contains(stderr, "DATA RACE") {
		t.Fatalf("exit %d, stderr:\n%s", code, stderr)
	}
}

func TestWithoutTheRaceDetectorAddAfterWaitIsSilent(t *testing.T) {
	code, stderr := run(t, build(t, "add_after_wait", false))
	if code != 0 || stderr != "" {
		t.Fatalf("exit %d, stderr:\n%s", code, stderr)
	}
}
