package main

import (
	"bytes"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestMain lets a test run this binary's main() in a child process (the test binary
// itself, re-executed), so exit codes and streams are the real ones.
func TestMain(m *testing.M) {
	if args, ok := os.LookupEnv("ORCHLAB_GO_MAIN_ARGS"); ok {
		os.Args = append([]string{"orchlab-go"}, strings.Fields(args)...)
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func runMain(t *testing.T, args, stdin string) (code int, stdout, stderr string) {
	t.Helper()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), "ORCHLAB_GO_MAIN_ARGS="+args)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return code, out.String(), errOut.String()
}

func TestProcessExitCodesAndStreams(t *testing.T) {
	if code, out, _ := runMain(t, "--help", ""); code != 0 || !strings.Contains(out, "usage: orchlab-go") || !strings.Contains(out, "Example:") {
		t.Errorf("--help: exit %d, %q", code, out)
	}
	if code, out, _ := runMain(t, "--list", ""); code != 0 || !strings.Contains(out, "go-errgroup+collect-all\n") ||
		!strings.Contains(out, "go-errgroup+ignores-ctx\n") {
		t.Errorf("--list: exit %d, %q", code, out)
	}
	if code, out, errOut := runMain(t, "--bogus", ""); code != 2 || out != "" || strings.Count(errOut, "\n") != 1 {
		t.Errorf("bad flag: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	for _, in := range []string{"", "not json", `{"protocol":2}`, `{"protocol":1,"pattern":"nope"}`} {
		code, out, errOut := runMain(t, "", in)
		if code != 2 || out != "" || !strings.HasPrefix(errOut, "orchlab-go: ") || strings.Count(errOut, "\n") != 1 {
			t.Errorf("stdin %q: exit %d, stdout %q, stderr %q", in, code, out, errOut)
		}
	}
}
