"""scripts/soak.sh: --help prints its header and exits 0; bad arguments exit 2 with a
usage line, before anything is started (the soak itself takes 20 minutes and is not
run here)."""
import os
import pathlib
import subprocess

import pytest

SOAK = pathlib.Path(__file__).resolve().parent.parent / "soak.sh"


def run(*args, env=None):
    return subprocess.run([str(SOAK), *args], capture_output=True, text=True, timeout=30, env=env)


@pytest.mark.parametrize("flag", ["-h", "--help"])
def test_help_prints_the_header_and_exits_0(flag):
    r = run(flag)
    assert r.returncode == 0, r.stderr
    assert "5,000" in r.stdout and "orchlab run --scenario flaky --patterns all" in r.stdout
    assert "#" not in r.stdout.splitlines()[0]  # the comment marks are stripped
    assert "set -e" not in r.stdout  # the header ends where the code starts


@pytest.mark.parametrize(
    "argv",
    [
        ["--frobnicate"],
        ["/nonexistent/orchlab-mock"],
        ["/bin/true", "/bin/true", "a-third-argument"],
    ],
)
def test_bad_arguments_exit_2_with_usage(argv):
    r = run(*argv)
    assert r.returncode == 2
    assert "usage" in r.stderr.lower()


def test_bad_environment_exits_2():
    r = run("/bin/true", "/bin/true", env=dict(os.environ, SOAK_S="ten"))
    assert r.returncode == 2
    assert "usage" in r.stderr.lower()
