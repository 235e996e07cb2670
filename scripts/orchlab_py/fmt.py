"""Number formatting shared by the text, Markdown and JSON outputs."""

import math


def num(v, digits=3):
    """A value with `digits` significant digits and thousands separators; '-' for None."""
    if v is None:
        return "-"
    if isinstance(v, float) and not math.isfinite(v):
        return "inf" if v > 0 else ("-inf" if v < 0 else "nan")
    if v == 0:
        return "0"
    a = abs(v)
    if a >= 10 ** digits:
        return f"{v:,.0f}"
    decimals = max(0, digits - 1 - int(math.floor(math.log10(a))))
    s = f"{v:,.{decimals}f}"
    if "." in s:
        s = s.rstrip("0").rstrip(".")
    return s


def with_unit(v, unit, digits=3):
    """Value followed by its unit."""
    return f"{num(v, digits)} {unit}".rstrip() if v is not None else "-"


def pct(change, signed=True):
    """A relative change (0.123) as '+12.3%'; '-' for None."""
    if change is None:
        return "-"
    if not math.isfinite(change):
        return "+inf%" if change > 0 else "-inf%"
    return f"{change * 100:+.1f}%" if signed else f"{change * 100:.1f}%"


def pvalue(p):
    """A p-value with sensible precision; '-' for None."""
    if p is None:
        return "-"
    return f"{p:.4f}" if p >= 0.0001 else f"{p:.1e}"


def md_table(header, rows):
    """A GitHub Markdown table; '|' in cells is escaped."""
    def esc(c):
        return str(c).replace("|", "\\|")
    lines = ["| " + " | ".join(esc(h) for h in header) + " |",
             "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(esc(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def text_table(header, rows):
    """A plain aligned table, first column left-aligned, the others right-aligned."""
    cols = list(zip(*([header] + [list(map(str, r)) for r in rows])))
    widths = [max(len(c) for c in col) for col in cols]
    def line(cells):
        out = [str(cells[0]).ljust(widths[0])]
        out += [str(c).rjust(w) for c, w in zip(cells[1:], widths[1:])]
        return "  ".join(out).rstrip()
    return "\n".join([line(header)] + [line(r) for r in rows])


def pct_interval(low, estimate, high):
    """A relative change with its interval, criterion.rs style: '[-1.2% +0.3% +1.8%]'.

    Without an interval only the estimate is shown, with 'no interval'."""
    if estimate is None:
        return "-"
    if low is None or high is None:
        return f"{pct(estimate)} (no interval)"
    return f"[{pct(low)} {pct(estimate)} {pct(high)}]"
