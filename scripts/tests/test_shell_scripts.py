"""The shell scripts answer --help with their own header and exit 0, and
refuse arguments they do not take with exit 2 and a usage line."""
import pathlib
import subprocess

import pytest

SCRIPTS = pathlib.Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(
    "script, words",
    [
        ("install-deps.sh", "installs only what is missing"),
        ("bench.sh", "BUILD_DIR OUT_DIR SCENARIO"),
        ("bench_mock.sh", "10,000 concurrent keep-alive connections"),
        ("bench_client.sh", "The client path against wrk"),
        ("callgrind_client.sh", "Instructions per downstream call"),
        ("unbounded.sh", "under resource limits and a watchdog"),
    ],
)
@pytest.mark.parametrize("flag", ["-h", "--help"])
def test_help_prints_the_header_and_exits_0(script, words, flag):
    run = subprocess.run([str(SCRIPTS / script), flag], capture_output=True, text=True, timeout=30)
    assert run.returncode == 0, run.stderr
    assert words in run.stdout
    assert "#" not in run.stdout.splitlines()[0]  # the comment marks are stripped
    assert "set -e" not in run.stdout  # the header ends where the code starts


@pytest.mark.parametrize(
    "argv",
    [
        ["install-deps.sh", "--frobnicate"],
        ["bench.sh", "only-one-argument"],
        ["bench.sh", "build", "out", "scenario", "--slow"],
        ["bench_mock.sh", "/nonexistent/orchlab-mock"],
        ["bench_client.sh"],
        ["bench_client.sh", "build", "1", "2", "3"],
        ["callgrind_client.sh"],
        ["callgrind_client.sh", "build", "5", "extra"],
        ["unbounded.sh", "build"],
    ],
)
def test_bad_arguments_exit_2_with_usage(argv):
    run = subprocess.run([str(SCRIPTS / argv[0]), *argv[1:]], capture_output=True, text=True,
                         timeout=30)
    assert run.returncode == 2
    assert "usage" in run.stderr.lower()


@pytest.mark.parametrize("rounds, seconds", [("many", "4"), ("3", "0"), ("3", "-1")])
def test_bench_client_refuses_bad_numbers(rounds, seconds):
    run = subprocess.run([str(SCRIPTS / "bench_client.sh"), "build", rounds, seconds], capture_output=True,
                         text=True, timeout=30)
    assert run.returncode == 2
    assert "must be" in run.stderr


def test_callgrind_client_refuses_a_bad_top():
    run = subprocess.run([str(SCRIPTS / "callgrind_client.sh"), "build", "many"], capture_output=True,
                         text=True, timeout=30)
    assert run.returncode == 2
    assert "must be" in run.stderr


@pytest.mark.parametrize("scenario, env, traced", [
    ("scenarios/default.json", {}, "one-hangs,fail-fast"),
    ("quick", {}, "one-hangs,fail-fast"),
    ("scenarios/scaling.json", {}, None),
    ("default", {"BENCH_TRACE": ""}, None),
    ("healthy", {"BENCH_TRACE": "healthy"}, "healthy"),
])
def test_bench_traces_one_hangs_and_fail_fast_into_the_results_folder(tmp_path, scenario, env, traced):
    # A stand-in orchlab that records its arguments and reports an interrupted run (130):
    # bench.sh then stops after the sweep.
    import os
    build = tmp_path / "build"
    (build / "harness").mkdir(parents=True)
    fake = build / "harness" / "orchlab"
    fake.write_text('#!/bin/sh\nprintf "%s\\n" "$@" > "$ARGS_FILE"\nexit 130\n')
    fake.chmod(0o755)
    out = tmp_path / "results" / "stamp"
    args_file = tmp_path / "args"
    run = subprocess.run([str(SCRIPTS / "bench.sh"), str(build), str(out), scenario], capture_output=True,
                         text=True, timeout=30, env={**os.environ, **env, "ARGS_FILE": str(args_file)})
    assert run.returncode == 130, run.stderr
    args = args_file.read_text().splitlines()
    if traced is None:
        assert "--trace" not in args and "--trace-scenarios" not in args
    else:
        assert args[args.index("--trace") + 1] == str(out / "trace.json")
        assert args[args.index("--trace-scenarios") + 1] == traced
