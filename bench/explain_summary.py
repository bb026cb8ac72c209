#!/usr/bin/env python3
"""Summarises auto_explain's plans in a PostgreSQL server log.

    python3 bench/explain_summary.py SERVER_LOG [TOP]

Groups the logged plans by statement (the first 100 characters of the query
text, whitespace folded), and prints for the TOP (default 8) statements with
the largest total logged duration: how many plans were logged, their total
and mean duration, and the plan of the slowest one, with its node times,
rows and buffers. With auto_explain.sample_rate < 1 the totals are of the
sample; compare them with each other, not with wall time.
"""
import re
import sys


def plans(path):
    entry = None
    with open(path, errors="replace") as f:
        for line in f:
            m = re.search(r"LOG:\s+duration: ([0-9.]+) ms\s+plan:", line)
            if m:
                if entry:
                    yield entry
                entry = {"ms": float(m.group(1)), "lines": []}
                continue
            if entry is None:
                continue
            # auto_explain's continuation lines start with a tab; anything
            # else (the next log line) ends the entry.
            if line.startswith("\t") or line.startswith(" "):
                entry["lines"].append(line.rstrip("\n"))
            else:
                yield entry
                entry = None
    if entry:
        yield entry


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    top = int(sys.argv[2]) if len(sys.argv) > 2 else 8
    groups = {}
    for e in plans(sys.argv[1]):
        text = next((l for l in e["lines"] if "Query Text:" in l), "")
        text = re.sub(r"\s+", " ", text.split("Query Text:", 1)[-1]).strip()[:100]
        g = groups.setdefault(text, {"n": 0, "ms": 0.0, "max": None})
        g["n"] += 1
        g["ms"] += e["ms"]
        if g["max"] is None or e["ms"] > g["max"]["ms"]:
            g["max"] = e
    if not groups:
        print("explain: no auto_explain plan in the log")
        return
    total = sum(g["ms"] for g in groups.values())
    for text, g in sorted(groups.items(), key=lambda kv: -kv[1]["ms"])[:top]:
        print(f"-- {g['ms']:.0f} ms in {g['n']} logged plans ({100 * g['ms'] / total:.0f} %),"
              f" mean {g['ms'] / g['n']:.2f} ms: {text}")
        print(f"   slowest ({g['max']['ms']:.2f} ms):")
        for l in g["max"]["lines"]:
            if "Query Text:" in l:
                continue
            print("   " + l.replace("\t", "  ")[:160])
        print()


main()
