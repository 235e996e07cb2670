"""The Go demonstrations (issue 25): demos.py's runner and parser, and the "demonstration"
statistic reaching each verdict from crafted demos.json files, both ways."""

import copy
import json
import os
import stat

import pytest

from conftest import INPUTS, REPORT, run_script, write

import demos  # noqa: E402  (scripts/demos.py)

SAMPLE = os.path.join(INPUTS, "demos_sample.json")  # a real run on the lab's host (paths shortened); not
# named demos.json, which claims.py would read beside the sample report
IDS = ("done-panics", "add-after-wait-races")


@pytest.fixture(scope="module")
def sample_demos():
    with open(SAMPLE, encoding="utf-8") as f:
        return json.load(f)


def _claims(tmp_path, demos_doc=None, *extra):
    args = [REPORT, "--no-micro", "--format", "json", *extra]
    if demos_doc is not None:
        args += ["--demos", write(tmp_path, "demos.json", demos_doc)]
    r = run_script("claims.py", *args)
    assert r.code == 0, r.err
    return {c["id"]: c for c in json.loads(r.out)["claims"]}


def _go(claim):
    (rv,) = [rv for rv in claim["runtimes"] if rv["runtime"] == "go"]
    return rv


def _entry(doc, demo_id):
    return next(d for d in doc["demos"] if d["id"] == demo_id)


def test_the_sample_run_supports_both_claims_and_shows_the_legal_case_beside(tmp_path, sample_demos):
    got = _claims(tmp_path, sample_demos)
    done, race = _go(got["done-panics"]), _go(got["add-after-wait-races"])
    assert done["verdict"] == "supported" and race["verdict"] == "supported"
    assert "panicked: sync: negative WaitGroup counter (exit 2)" in done["reason"]
    assert "the race detector reported a race" in race["reason"] and "add_after_wait/main.go:" in race["reason"]
    (ctx,) = got["add-after-wait-races"]["context"]
    assert ctx["estimate"] == 0.0 and "reported nothing (exit 0)" in ctx["note"]
    for cid in IDS:  # a Go runtime property: the C++ column says why it has no answer
        cpp = [rv for rv in got[cid]["runtimes"] if rv["runtime"] == "cpp-thread"]
        assert cpp[0]["status"] == "not run" and "a Go runtime property" in cpp[0]["reason"]


def test_a_program_that_did_not_do_it_refutes_the_claim(tmp_path, sample_demos):
    doc = copy.deepcopy(sample_demos)
    e = _entry(doc, "done-after-add")
    e.update(exit_status=0, panicked=False, panic=None, stderr_head=[])
    e = _entry(doc, "add-after-wait")
    e.update(exit_status=0, race_reported=False, race_report=None, race_accesses=[], races_found=0)
    got = _claims(tmp_path, doc)
    assert _go(got["done-panics"])["verdict"] == "refuted"
    assert "ran to its end without a panic (exit 0)" in _go(got["done-panics"])["reason"]
    assert _go(got["add-after-wait-races"])["verdict"] == "refuted"
    assert "the race detector reported nothing (exit 0)" in _go(got["add-after-wait-races"])["reason"]


@pytest.mark.parametrize("change, why", [
    ({"built": False, "build_error": "go: cannot find GOROOT directory", "exit_status": None},
     "could not be built: go: cannot find GOROOT directory"),
    ({"timed_out": True, "exit_status": None}, "did not end within its timeout"),
    ({"race_detector": False, "race_reported": None}, "ran without the race detector"),
])
def test_a_program_that_could_not_say_is_not_testable_with_the_reason(tmp_path, sample_demos, change, why):
    doc = copy.deepcopy(sample_demos)
    _entry(doc, "add-after-wait").update(change)
    rv = _go(_claims(tmp_path, doc)["add-after-wait-races"])
    assert rv["verdict"] == "not testable here" and why in rv["reason"], rv["reason"]


def test_without_demos_json_both_claims_are_not_testable(tmp_path):
    got = _claims(tmp_path)
    for cid in IDS:
        rv = _go(got[cid])
        assert rv["verdict"] == "not testable here" and "needs demos.json" in rv["reason"]


def test_a_demos_json_missing_one_demonstration_names_it(tmp_path, sample_demos):
    doc = {**sample_demos, "demos": [d for d in sample_demos["demos"] if d["id"] != "done-after-add"]}
    rv = _go(_claims(tmp_path, doc)["done-panics"])
    assert rv["verdict"] == "not testable here" and "no demonstration `done-after-add`" in rv["reason"]


def test_demos_json_beside_the_report_is_read_and_named(tmp_path, sample_demos):
    with open(REPORT, encoding="utf-8") as f:
        report = json.load(f)
    path = write(tmp_path, "report.json", report)
    write(tmp_path, "demos.json", sample_demos)
    r = run_script("claims.py", path, "--no-micro")
    assert r.code == 0, r.err
    assert "demos `" in r.out.split("\n\n", 2)[1]  # the Source line
    row = next(x for x in r.out.splitlines() if x.startswith("| ") and "Done() called more times" in x)
    assert "**supported**: panicked: sync: negative WaitGroup counter (exit 2), one run of " \
           "`build/go/demo/done_after_add` (go1.19.8)" in row


def test_an_unusable_demos_json_is_exit_2_in_one_line(tmp_path):
    r = run_script("claims.py", REPORT, "--no-micro", "--demos", write(tmp_path, "demos.json", {"runs": []}))
    assert r.code == 2 and "not a demos.json" in r.err and len(r.err.strip().splitlines()) == 1


# --- demos.py: the runner ----------------------------------------------------------------

def test_observe_reads_a_panic_and_a_race_report(sample_demos):
    panic = demos.observe("\n".join(_entry(sample_demos, "done-after-add")["stderr_head"]), race=False)
    assert panic["panicked"] and panic["panic"] == "sync: negative WaitGroup counter"
    assert panic["race_reported"] is None  # the detector was not on
    race = demos.observe("\n".join(_entry(sample_demos, "add-after-wait")["stderr_head"]), race=True)
    assert race["race_reported"] and not race["panicked"] and race["races_found"] == 1
    assert race["race_accesses"][0].startswith("Write by main goroutine at demo/add_after_wait/main.go:")
    assert race["race_accesses"][1].startswith("Previous read by goroutine ")
    quiet = demos.observe("", race=True)
    assert quiet["race_reported"] is False and quiet["races_found"] == 0 and not quiet["panicked"]


def _fake_go(tmp_path, body):
    path = tmp_path / "go"
    path.write_text("#!/bin/sh\n" + body + "\n", encoding="utf-8")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


def test_a_build_that_fails_is_recorded_not_skipped(tmp_path):
    go = _fake_go(tmp_path, 'case "$1" in version) echo "go version go1.19.8 linux/amd64";;\n'
                            '*) echo "demo/x.go:1: syntax error" >&2; exit 1;; esac')
    out = tmp_path / "demos.json"
    r = run_script("demos.py", "--go", go, "--build-dir", tmp_path / "bin", "-o", out)
    assert r.code == 0, r.err
    doc = json.loads(out.read_text(encoding="utf-8"))
    assert doc["go_version"] == "go1.19.8" and [d["id"] for d in doc["demos"]] == [d["id"] for d in demos.DEMOS]
    for d in doc["demos"]:
        assert d["built"] is False and d["build_error"] == "demo/x.go:1: syntax error"
        assert d["exit_status"] is None and d["go_version"] == "go1.19.8"
    assert "not built: demo/x.go:1: syntax error" in r.err


def test_no_go_command_is_a_build_error(tmp_path):
    out = tmp_path / "demos.json"
    r = run_script("demos.py", "--go", tmp_path / "nope", "--build-dir", tmp_path / "bin", "-o", out,
                   "--only", "done-after-add")
    assert r.code == 0
    (d,) = json.loads(out.read_text(encoding="utf-8"))["demos"]
    assert not d["built"] and "no such command" in d["build_error"]


def test_an_unknown_demonstration_is_exit_2(tmp_path):
    r = run_script("demos.py", "--only", "add-after-done")
    assert r.code == 2 and "unknown demonstration 'add-after-done'" in r.err
