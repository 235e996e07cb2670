"""One colour, marker and line style per pattern, shared by every figure and the HTML report.

A Go exhibit is drawn in its C++ counterpart's colour (runtimes.COUNTERPART) with a marker
of its own, a dotted line and a cross-hatched bar, and is ordered after every C++ exhibit.
"""

from . import runtimes

# The Okabe–Ito palette: told apart with every common colour-vision deficiency.
# Anti-patterns in warm colours, the fixes in blues and green; each pattern also has
# its own marker, so it reads in greyscale print too.
OKABE_ITO = {
    "orange": "#E69F00", "sky blue": "#56B4E9", "bluish green": "#009E73", "yellow": "#F0E442",
    "blue": "#0072B2", "vermillion": "#D55E00", "reddish purple": "#CC79A7", "black": "#000000",
}

PATTERN_COLOURS = {
    "channel-soup": OKABE_ITO["vermillion"],
    "latch-select": OKABE_ITO["orange"],
    "mutex-aggregation": OKABE_ITO["reddish purple"],
    "slots-aggregation": OKABE_ITO["yellow"],
    "cancellable-group": OKABE_ITO["blue"],
    "bounded-group": OKABE_ITO["sky blue"],
    "async-group": OKABE_ITO["bluish green"],
}

PATTERN_MARKERS = {
    "channel-soup": "o",
    "latch-select": "s",
    "mutex-aggregation": "^",
    "slots-aggregation": "<",
    "cancellable-group": "D",
    "bounded-group": "v",
    "async-group": "P",
}

PATTERN_ORDER = list(PATTERN_COLOURS)

# Go exhibits: markers no C++ exhibit uses; the colour is the counterpart's.
GO_MARKERS = {
    "go-channel-soup": "h",
    "go-waitgroup-select": "p",
    "go-mutex-aggregation": ">",
    "go-errgroup": "*",
    "go-errgroup-limit": "H",
}
GO_HATCH, GO_VARIANT_HATCH = "xx", "x//"

# Unknown patterns: black or grey, told apart by their marker.
_FALLBACK = [OKABE_ITO["black"], "#7F7F7F"]
_FALLBACK_MARKERS = ["X", "h", "*", "<", ">", "p"]

# Aggregation strategies of BM_Aggregate, coloured like the pattern that uses them.
STRATEGY_COLOURS = {
    "mutex-vector": OKABE_ITO["reddish purple"],
    "channel-fan-in": OKABE_ITO["vermillion"],
    "slots-padded": OKABE_ITO["blue"],
    "slots": OKABE_ITO["sky blue"],
    "atomic-index": OKABE_ITO["bluish green"],
}
STRATEGY_MARKERS = {"mutex-vector": "^", "channel-fan-in": "o", "slots-padded": "D", "slots": "d",
                    "atomic-index": "P"}

# Verdicts, for the forest plot and the HTML badges.
VERDICT_COLOURS = {
    "supported": OKABE_ITO["bluish green"],
    "refuted": OKABE_ITO["vermillion"],
    "inconclusive": OKABE_ITO["orange"],
}
VERDICT_OTHER = "#7F7F7F"  # not testable here, anything else


def _stable(name, choices):
    # From the name, not from the order patterns were first seen: every figure agrees.
    return choices[sum(name.encode()) % len(choices)]


def base_pattern(pattern):
    """The pattern a variant belongs to ("cancellable-group+collect-all" → "cancellable-group")."""
    return pattern.split("+", 1)[0]


def is_variant(pattern):
    """True for a variant such as "cancellable-group+collect-all"."""
    return "+" in pattern


def is_go(pattern):
    """True for one of the article's Go exhibits (go-errgroup, ...)."""
    return runtimes.runtime_of_pattern(pattern) == runtimes.GO


def pattern_colour(pattern):
    """The colour of a pattern; variants share their base pattern's colour, a Go exhibit
    its C++ counterpart's."""
    base = base_pattern(runtimes.counterpart(pattern))
    return PATTERN_COLOURS.get(base) or _stable(base, _FALLBACK)


def pattern_marker(pattern):
    """The marker of a pattern; variants share it and draw it hollow (see marker_kwargs)."""
    base = base_pattern(pattern)
    if is_go(pattern):
        return GO_MARKERS.get(base) or _stable(base, _FALLBACK_MARKERS)
    return PATTERN_MARKERS.get(base) or _stable(base, _FALLBACK_MARKERS)


def pattern_linestyle(pattern):
    """Solid for a pattern, dashed for a variant; dotted for a Go exhibit, dash-dot for a
    Go variant."""
    if is_go(pattern):
        return "-." if is_variant(pattern) else ":"
    return "--" if is_variant(pattern) else "-"


def pattern_hatch(pattern):
    """Bar hatch: none for a pattern, "//" for a variant; "xx" for a Go exhibit, "x//" for
    a Go variant."""
    if is_go(pattern):
        return GO_VARIANT_HATCH if is_variant(pattern) else GO_HATCH
    return "//" if is_variant(pattern) else None


def marker_kwargs(pattern, size=4):
    """matplotlib keyword arguments that draw a pattern's marker (hollow for a variant)."""
    colour = pattern_colour(pattern)
    return {"marker": pattern_marker(pattern), "markersize": size, "markeredgecolor": colour,
            "markerfacecolor": "white" if is_variant(pattern) else colour}


def strategy_colour(strategy):
    """The colour of a microbenchmark aggregation strategy ('_' and '-' spellings alike)."""
    strategy = strategy.replace("_", "-")
    return STRATEGY_COLOURS.get(strategy) or _stable(strategy, _FALLBACK)


def strategy_marker(strategy):
    """The marker of an aggregation strategy."""
    strategy = strategy.replace("_", "-")
    return STRATEGY_MARKERS.get(strategy) or _stable(strategy, _FALLBACK_MARKERS)


def verdict_colour(verdict):
    """The colour of a verdict word (supported, refuted, inconclusive; not testable here grey)."""
    return VERDICT_COLOURS.get(str(verdict).lower(), VERDICT_OTHER)


def sort_patterns(patterns):
    """Known C++ patterns in the canonical order, then the other C++ ones alphabetically,
    then the Go exhibits in their counterparts' order."""
    def rank(p):
        go = is_go(p)
        base = base_pattern(runtimes.counterpart(p) if go else p)
        return (go, PATTERN_ORDER.index(base) if base in PATTERN_ORDER else len(PATTERN_ORDER), p)
    return sorted(patterns, key=rank)
