"""Shared analysis code for orchlab reports: loading, metric metadata, statistics, style."""

import importlib.util
import os
import sys


def require(*modules):
    """Exit 2 with one line naming the missing modules, instead of a traceback on import."""
    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if missing:
        prog = os.path.basename(sys.argv[0]) or "orchlab"
        print(f"{prog}: {sys.executable} has no {', '.join(missing)}: run make deps, or use /usr/bin/python3",
              file=sys.stderr)
        sys.exit(2)


# Every script needs numpy (orchlab_py.stats); plot.py and report_html.py ask for matplotlib too.
require("numpy")
