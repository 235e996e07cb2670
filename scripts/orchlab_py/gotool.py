"""The go command as the Makefile runs it: offline (Debian's Go, GOPROXY off), its build
cache in build/go/cache. Shared by scripts/demos.py and scripts/go_micro.py."""

import os
import re
import subprocess

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def go_env():
    """The environment the Makefile gives Go: offline, build cache in build/go/cache."""
    env = dict(os.environ)
    env.setdefault("GOFLAGS", "-mod=mod")
    env["GOPROXY"], env["GOSUMDB"] = "off", "off"
    env.setdefault("GOCACHE", os.path.join(ROOT, "build", "go", "cache"))
    return env


def go_version(go, env):
    """`go version`'s version word (go1.19.8), or None when the go command does not run."""
    try:
        out = subprocess.run([go, "version"], capture_output=True, text=True, env=env, timeout=30).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    m = re.search(r"\bgo version (\S+)", out)
    return m.group(1) if m else None
