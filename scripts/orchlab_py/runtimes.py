"""Runtimes: which runtime an exhibit runs on (DESIGN.md "Runtimes and drivers"), each Go
exhibit's C++ counterpart, and the labels the reports print.

A report entry names its `runtime`; a report written before entries did is read by
deriving it from the pattern name (runtime_of_pattern), so old reports keep their meaning.
"""

CPP_THREAD, CPP_ASIO, GO = "cpp-thread", "cpp-asio", "go"
RUNTIMES = (CPP_THREAD, CPP_ASIO, GO)  # the order of columns, figures and tables
LABELS = {CPP_THREAD: "C++ threads", CPP_ASIO: "C++ Asio", GO: "Go"}

# The C++ exhibits on Asio coroutines (their +variants too); every other C++ exhibit runs
# a thread per call.
_ASIO = ("async-group",)
_GO_PREFIX = "go-"

# Each Go exhibit and the C++ exhibit that follows the same listing (docs/drivers.md).
# go-errgroup's counterparts are cancellable-group (threads) and async-group (Asio); the
# first is the one it is drawn and ordered with.
COUNTERPART = {
    "go-channel-soup": "channel-soup",
    "go-waitgroup-select": "latch-select",
    "go-mutex-aggregation": "mutex-aggregation",
    "go-errgroup": "cancellable-group",
    "go-errgroup-limit": "bounded-group",
    "go-errgroup+collect-all": "cancellable-group+collect-all",
    "go-errgroup+ignores-ctx": "cancellable-group+ignores-stop",
}


def runtime_of_pattern(pattern):
    """The runtime of an exhibit, from its name alone (reports written before `runtime`)."""
    if pattern.startswith(_GO_PREFIX):
        return GO
    base = pattern.split("+", 1)[0]
    return CPP_ASIO if base in _ASIO else CPP_THREAD


def runtime_of_entry(entry):
    """An entry's `runtime`, or the one its pattern name implies when it has none."""
    rt = entry.get("runtime")
    if isinstance(rt, str) and rt:
        return rt
    return runtime_of_pattern(entry.get("pattern") or "")


def counterpart(pattern):
    """The C++ exhibit a Go exhibit follows (the pattern itself for a C++ exhibit)."""
    if pattern in COUNTERPART:
        return COUNTERPART[pattern]
    base, sep, variant = pattern.partition("+")
    if base in COUNTERPART:
        return COUNTERPART[base] + sep + variant
    return pattern


def label(runtime):
    """The runtime as a reader reads it ("C++ threads", "Go"); unknown ones as written."""
    return LABELS.get(runtime, runtime)


def rank(runtime):
    """Sort key: the known runtimes in RUNTIMES order, then the rest."""
    return (RUNTIMES.index(runtime) if runtime in RUNTIMES else len(RUNTIMES), runtime)
