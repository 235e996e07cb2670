"""report_html.py: a self-contained index.html, checked in headless chromium (DevTools protocol
over a pipe, scripts/tests/cdp.py): no console errors, no network, every figure drawn, sortable
tables, a full-page screenshot."""

import copy
import re
import shutil

import pytest

from conftest import MICRO, REPORT, TRACE, first_feasible_cell, run_cli, run_script, set_cell, write

cdp = pytest.importorskip("cdp")


@pytest.fixture(scope="module")
def page_file(tmp_path_factory):
    """index.html generated beside a copy of the sample report, micro.json and trace.json."""
    d = tmp_path_factory.mktemp("html")
    shutil.copy(REPORT, d / "report.json")
    shutil.copy(MICRO, d / "micro.json")
    shutil.copy(TRACE, d / "trace.json")
    r = run_cli("report_html.py", d / "report.json")
    assert r.code == 0, r.err
    assert (d / "index.html").exists()
    return d / "index.html"


def test_page_is_self_contained(page_file):
    text = page_file.read_text(encoding="utf-8")
    # Nothing fetched: no external script, stylesheet, image, font or frame.
    assert not re.search(r'<(script|link|img|iframe)[^>]+(src|href)="(https?:)?//', text)
    assert "@import" not in text and "url(http" not in text
    assert text.count("<svg") >= 10
    for section in ('id="context"', 'id="claims"', 'id="comparison"', 'id="scenarios"', 'id="files"'):
        assert section in text, section
    # In order: the run, the claims, the comparison table, the scenarios, the files.
    order = [text.index(s) for s in ('id="context"', 'id="claims"', 'id="comparison"', 'id="scenarios"',
                                     'id="files"')]
    assert order == sorted(order)
    assert 'href="report.json"' in text and 'href="micro.json"' in text
    ids = re.findall(r'\bid="([^"]+)"', text)
    assert len(ids) == len(set(ids)), "duplicate element ids across the inline SVGs"


def test_bad_input_exits_2(tmp_path):
    cut = tmp_path / "cut.json"
    cut.write_text("{\"benchmarks\": [", encoding="utf-8")
    r = run_cli("report_html.py", cut)
    assert r.code == 2 and r.err.startswith(f"report_html.py: {cut}: not valid JSON")
    assert not (tmp_path / "index.html").exists()


@pytest.fixture(scope="module")
def page(page_file):
    try:
        browser = cdp.Browser()
    except cdp.BrowserError as e:
        pytest.skip(f"chromium cannot be started: {e}")
    with browser:
        yield browser.open(page_file.as_uri())


def test_no_console_errors_and_no_network(page):
    assert page.errors() == []
    urls = [e["request"]["url"] for e in page.events("Network.requestWillBeSent")]
    assert urls and all(u.startswith(("file:", "data:", "about:")) for u in urls), urls


def test_every_figure_is_drawn(page):
    sizes = page.eval("Array.from(document.querySelectorAll('figure svg'))"
                      ".map(s => { const r = s.getBoundingClientRect(); return [r.width, r.height]; })")
    assert len(sizes) >= 10
    assert all(w > 100 and h > 50 for w, h in sizes), sizes


FIND_UNSORTED_COLUMN = """
(() => {
  const tables = Array.from(document.querySelectorAll('table.sortable'));
  for (let t = 0; t < tables.length; t++) {
    const rows = Array.from(tables[t].tBodies[0].rows);
    const ncol = tables[t].tHead.rows[0].cells.length;
    for (let c = 1; c < ncol; c++) {
      const v = rows.map(r => r.cells[c].dataset.v).filter(x => x !== undefined && x !== '').map(Number);
      if (v.length < 3 || v.some(isNaN)) continue;
      if (v.some((x, i) => i > 0 && v[i - 1] > x)) return [t, c];
    }
  }
  return null;
})()
"""


def _column(page, t, c):
    return page.eval(f"Array.from(document.querySelectorAll('table.sortable')[{t}].tBodies[0].rows)"
                     f".map(r => [r.cells[0].textContent, r.cells[{c}].dataset.v])")


def _click_header(page, t, c):
    x, y = page.eval(f"(() => {{ const th = document.querySelectorAll('table.sortable')[{t}].tHead.rows[0]"
                     f".cells[{c}]; th.scrollIntoView({{block: 'center'}}); const r = th.getBoundingClientRect();"
                     f" return [r.x + r.width / 2, r.y + r.height / 2]; }})()")
    page.click(x, y)


def test_clicking_a_header_sorts_the_rows(page):
    found = page.eval(FIND_UNSORTED_COLUMN)
    assert found, "no sortable table with an unsorted numeric column"
    t, c = found
    before = _column(page, t, c)
    _click_header(page, t, c)
    after = _column(page, t, c)
    assert after != before, "the rows did not move"
    assert sorted(after) == sorted(before), "rows were lost or changed"
    nums = [float(v) for _, v in after if v not in (None, "")]
    assert nums == sorted(nums)
    assert [v for _, v in after if v in (None, "")] == [v for _, v in after[len(nums):]]  # unknown last
    _click_header(page, t, c)
    nums = [float(v) for _, v in _column(page, t, c) if v not in (None, "")]
    assert nums == sorted(nums, reverse=True)
    assert page.errors() == []


def test_traced_scenarios_show_their_timelines_and_link_each_orchestration(page_file):
    import json
    import os
    text = page_file.read_text(encoding="utf-8")
    for scenario in ("one-hangs", "fail-fast"):
        section = text[text.index(f'id="s-{scenario}"'):]
        section = section[:section.index("</section>")]
        assert '<div class="traces">' in section and "<svg" in section.split('<div class="traces">')[1]
        assert "ui.perfetto.dev" in section
        links = re.findall(r'href="(traces/[^"]+\.json)"', section)
        assert len(links) >= 5, scenario
        for link in links:  # each a small trace of its own, one orchestration
            with open(os.path.join(page_file.parent, link), encoding="utf-8") as f:
                part = json.load(f)
            assert part["otherData"]["sample"] >= 1 and part["traceEvents"]
        assert 'href="trace.json"' in section
    # A scenario the trace does not cover has no timelines.
    healthy = text[text.index('id="s-healthy"'):]
    assert '<div class="traces">' not in healthy[:healthy.index("</section>")]


def test_the_timelines_are_drawn(page):
    sizes = page.eval("Array.from(document.querySelectorAll('.traces figure svg'))"
                      ".map(s => { const r = s.getBoundingClientRect(); return [r.width, r.height]; })")
    assert len(sizes) == 2
    assert all(w > 500 and h > 300 for w, h in sizes), sizes
    assert page.eval("document.querySelectorAll('.traces a[href^=\"traces/\"]').length") >= 10


def test_full_page_screenshot(page, tmp_path_factory):
    path = tmp_path_factory.mktemp("screenshot") / "index.png"
    size = page.screenshot(path)
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert size["width"] <= 1200, "the page is wider than the window"
    assert size["height"] > 2000 and len(data) > 50_000
    print(f"screenshot: {path}")


def test_compare_html_highlights_a_regression(sample, tmp_path):
    cell = first_feasible_cell(sample)
    old = set_cell(copy.deepcopy(sample), cell, {"items_per_second": [100, 101, 99, 100.5, 99.5]})
    new = set_cell(copy.deepcopy(sample), cell, {"items_per_second": [33, 34, 33.5, 32.5, 33.2]})
    out = tmp_path / "compare.html"
    r = run_cli("compare_html.py", write(tmp_path, "old.json", old), write(tmp_path, "new.json", new), "-o", out)
    assert r.code == 0, r.err
    text = out.read_text(encoding="utf-8")
    assert "Performance has regressed in 1 cell" in text
    row = next(tr for tr in text.split("<tr>") if "items_per_second *" in tr and "regressed" in tr)
    assert "background:#fbe3d6" in row  # highlighted
    r = run_cli("compare_html.py", tmp_path / "missing.json", out)
    assert r.code == 2 and "cannot read" in r.err


def test_claim_numbers_are_shown_with_their_interval():
    import report_html
    text = report_html._interval_text({"estimate": 0.42, "interval": [0.31, 0.55], "threshold": [0.3, 0.6],
                                       "unit": "share", "statistic": "gap"})
    assert text == "gap: 0.42 share [0.31, 0.55]; threshold 0.3–0.6"
    assert report_html._interval_text({"estimate": 23, "threshold": 30}) == "23 (no interval); threshold 30"
    assert report_html._interval_text({"verdict": "not testable here"}) == "–"


def test_a_failing_claims_py_leaves_a_page_with_a_note(sample, tmp_path, monkeypatch):
    from orchlab_py import verdicts

    def broken(*_args, **_kw):
        raise verdicts.ClaimsError("claims.py failed: boom")
    monkeypatch.setattr(verdicts, "run_claims", broken)
    doc = copy.deepcopy(sample)
    doc["benchmarks"] = [b for b in doc["benchmarks"] if b.get("scenario") == "healthy"]
    out = tmp_path / "index.html"
    r = run_script("report_html.py", write(tmp_path, "report.json", doc), "--no-micro", "-o", out)
    assert r.code == 0, r.err
    assert "no claims section: claims.py failed: boom" in r.err
    text = out.read_text(encoding="utf-8")
    assert "No claims: claims.py failed: boom" in text and 'id="s-healthy"' in text
