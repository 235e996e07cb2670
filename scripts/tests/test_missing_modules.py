"""Under a Python without numpy (here: Debian's with -S, no dist-packages), every script says what
is missing and how to fix it, instead of a traceback."""

import os
import subprocess
import sys

import pytest

from conftest import REPORT, SCRIPTS


@pytest.mark.parametrize("script", ["plot.py", "claims.py", "compare.py", "report_html.py", "compare_html.py"])
def test_a_missing_module_is_named_not_traced(script):
    run = subprocess.run([sys.executable, "-S", os.path.join(SCRIPTS, script), REPORT, REPORT],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 2
    assert "Traceback" not in run.stderr
    assert run.stderr.startswith(f"{script}: ") and "has no numpy: run make deps, or use /usr/bin/python3" in run.stderr
