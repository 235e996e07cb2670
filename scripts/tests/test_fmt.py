"""Number formatting used in every output."""

import math

from orchlab_py import fmt


def test_num_significant_digits_and_separators():
    assert fmt.num(None) == "-"
    assert fmt.num(0) == "0"
    assert fmt.num(1234567.8) == "1,234,568"
    assert fmt.num(12.345) == "12.3"
    assert fmt.num(0.0012345) == "0.00123"
    assert fmt.num(math.inf) == "inf"


def test_pct_and_pvalue():
    assert fmt.pct(0.1234) == "+12.3%"
    assert fmt.pct(-0.5, signed=False) == "-50.0%"
    assert fmt.pct(math.inf) == "+inf%"
    assert fmt.pct(None) == "-"
    assert fmt.pvalue(0.04567) == "0.0457"
    assert fmt.pvalue(1e-7) == "1.0e-07"


def test_tables():
    md = fmt.md_table(["a", "b"], [["x|y", 1]])
    assert md.splitlines() == ["| a | b |", "|---|---|", "| x\\|y | 1 |"]
    text = fmt.text_table(["name", "v"], [["long-name", "1"], ["n", "22"]])
    assert text.splitlines()[1] == "long-name   1"
