"""The claims and their verdicts as claims.py computes them (its --format json), for figures and HTML."""

import json
import math
import os
import subprocess
import sys

SCRIPTS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class ClaimsError(Exception):
    """claims.py could not produce its JSON; the message says why."""


def run_claims(report_path, micro_path=None, timeout=120):
    """claims.py REPORT --format json, parsed. micro_path None: claims.py's own default
    (micro.json next to the report); "" : --no-micro."""
    cmd = [sys.executable, os.path.join(SCRIPTS, "claims.py"), str(report_path), "--format", "json"]
    if micro_path == "":
        cmd.append("--no-micro")
    elif micro_path:
        cmd += ["--micro", str(micro_path)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise ClaimsError(f"claims.py did not run: {e}") from None
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or [f"exit {proc.returncode}"])[-1]
        raise ClaimsError(f"claims.py failed: {last}")
    try:
        doc = json.loads(proc.stdout)
    except json.JSONDecodeError as e:
        raise ClaimsError(f"claims.py printed no JSON: {e.msg}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("claims"), list):
        raise ClaimsError("claims.py's JSON has no 'claims' list")
    return doc


def _num(v):
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        return None
    return float(v)


def _pair(v):
    """(low, high) from [low, high], {"low","high"} or {"lo","hi"}; (None, None) otherwise."""
    if isinstance(v, (list, tuple)) and len(v) == 2:
        return _num(v[0]), _num(v[1])
    if isinstance(v, dict):
        lo = v.get("low", v.get("lo", v.get("lower")))
        hi = v.get("high", v.get("hi", v.get("upper")))
        return _num(lo), _num(hi)
    return None, None


def numbers(claim):
    """The claim's statistic, estimate, interval and threshold, whichever spelling claims.py uses.

    Returns {"statistic", "unit", "estimate", "low", "high", "confidence" (the interval's
    achieved confidence, 0..1), "threshold": (lo, hi) or None};
    missing values are None. A single threshold t is (t, t); a range (lo, hi).
    """
    stat = claim.get("statistic")
    stat_name = stat.get("name") if isinstance(stat, dict) else stat
    src = stat if isinstance(stat, dict) else claim
    est = src.get("estimate", claim.get("estimate"))
    if isinstance(est, dict):  # {"value", "low", "high"}
        src, est = est, est.get("value", est.get("estimate"))
    low, high = _pair(src.get("interval", src.get("ci", claim.get("interval", claim.get("ci")))))
    if low is None and high is None:
        low, high = _num(src.get("low", claim.get("low"))), _num(src.get("high", claim.get("high")))
    thr = src.get("threshold", claim.get("threshold"))
    if _num(thr) is not None:
        threshold = (_num(thr), _num(thr))
    else:
        threshold = _pair(thr)
        threshold = None if threshold == (None, None) else threshold
    unit = src.get("unit", claim.get("unit"))
    if unit == "%":  # shares are stored as fractions: show them as percentages
        k = 100.0
        est, low, high = (None if v is None else k * v for v in (_num(est), low, high))
        threshold = None if threshold is None else tuple(None if v is None else k * v for v in threshold)
    conf = _num(src.get("confidence", claim.get("confidence")))
    return {"statistic": stat_name if isinstance(stat_name, str) else None,
            "unit": unit if isinstance(unit, str) else None,
            "estimate": _num(est), "low": low, "high": high, "threshold": threshold,
            "confidence": conf if low is not None else None}


SHORT = {"cpp-thread": "C++", "cpp-asio": "Asio", "go": "Go"}


def rows(claims_doc):
    """One row per claim and runtime that answered it (claims.py's "runtimes"; a
    configuration gets its own row): [(number, id, tag, row)], tag "" for a claim
    without runtimes. A claim no runtime answered keeps one row, its own verdict."""
    out = []
    for i, c in enumerate(claims_doc.get("claims") or []):
        answers = [rv for rv in c.get("runtimes") or [] if rv.get("status") == "evaluated"]
        if not answers:
            out.append((i + 1, str(c.get("id", i + 1)), "", c))
            continue
        for rv in answers:
            tag = SHORT.get(rv.get("runtime"), str(rv.get("runtime")))
            if rv.get("configuration") and sum(1 for x in answers if x.get("runtime") == rv.get("runtime")) > 1:
                tag += f" ({rv['configuration']})"
            out.append((i + 1, str(c.get("id", i + 1)), tag, rv))
    return out
