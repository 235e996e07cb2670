"""One fixed colour per pattern, shared by every figure."""

# Anti-patterns in warm colours, the fixes in cool ones, so a figure reads at a glance
# and in greyscale print the order of lightness stays distinct.
PATTERN_COLOURS = {
    "channel-soup": "#d62728",
    "latch-select": "#ff7f0e",
    "mutex-aggregation": "#8c564b",
    "cancellable-group": "#1f77b4",
    "bounded-group": "#17becf",
    "async-group": "#2ca02c",
}

PATTERN_ORDER = list(PATTERN_COLOURS)

_FALLBACK = ["#9467bd", "#e377c2", "#7f7f7f", "#bcbd22", "#393b79", "#637939"]

STRATEGY_COLOURS = {
    "mutex-vector": "#8c564b",
    "slots-packed": "#9467bd",
    "slots-padded": "#1f77b4",
    "channel-fan-in": "#d62728",
    "atomic-index": "#2ca02c",
}


def base_pattern(pattern):
    """The pattern a variant belongs to ("cancellable-group+collect-all" → "cancellable-group")."""
    return pattern.split("+", 1)[0]


def pattern_colour(pattern):
    """The colour of a pattern; variants share their base pattern's colour."""
    base = base_pattern(pattern)
    if base in PATTERN_COLOURS:
        return PATTERN_COLOURS[base]
    # Unknown patterns get a stable colour from their name, not from their position.
    return _FALLBACK[sum(base.encode()) % len(_FALLBACK)]


def pattern_linestyle(pattern):
    """Solid for a pattern, dashed for a variant of it."""
    return "--" if "+" in pattern else "-"


def strategy_colour(strategy):
    """The colour of a microbenchmark aggregation strategy ('_' and '-' spellings alike)."""
    strategy = strategy.replace("_", "-")
    return STRATEGY_COLOURS.get(strategy, _FALLBACK[sum(strategy.encode()) % len(_FALLBACK)])


def sort_patterns(patterns):
    """Known patterns in the canonical order, then the rest alphabetically."""
    def rank(p):
        base = base_pattern(p)
        return (PATTERN_ORDER.index(base) if base in PATTERN_ORDER else len(PATTERN_ORDER), p)
    return sorted(patterns, key=rank)
