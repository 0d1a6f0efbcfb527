#!/usr/bin/env python3
"""Summarise cargo-mutants' outcomes.json: a per-file table, then every mutant with its outcome.

Usage: scripts/mutants-summary.py mutants.out/outcomes.json [more outcomes.json ...] > summary.txt
Several runs are merged; a mutant run twice keeps its last outcome (a rerun with new tests).
"""
import collections
import json
import sys

NAMES = {
    "CaughtMutant": "caught",
    "MissedMutant": "missed",
    "Unviable": "unviable",
    "Timeout": "timeout",
}


def main(paths):
    outcome = {}
    runs = []
    for path in paths:
        data = json.load(open(path))
        runs.append(
            f"{path}: cargo-mutants {data['cargo_mutants_version']}, "
            f"{data['start_time'][:19]} to {(data['end_time'] or 'interrupted')[:19]} UTC, "
            f"{data['total_mutants']} mutants"
        )
        for o in data["outcomes"]:
            scenario = o["scenario"]
            if scenario == "Baseline":
                continue
            m = scenario["Mutant"]
            outcome[m["name"]] = (m["file"], NAMES.get(o["summary"], o["summary"]))
    per_file = collections.defaultdict(collections.Counter)
    for file, result in outcome.values():
        per_file[file][result] += 1
    print("\n".join(runs))
    print()
    cols = ["caught", "missed", "unviable", "timeout"]
    print(f"{'file':28} {'mutants':>7} " + " ".join(f"{c:>8}" for c in cols))
    total = collections.Counter()
    for file in sorted(per_file):
        c = per_file[file]
        total.update(c)
        print(f"{file:28} {sum(c.values()):7} " + " ".join(f"{c[k]:8}" for k in cols))
    print(f"{'total':28} {sum(total.values()):7} " + " ".join(f"{total[k]:8}" for k in cols))
    print()
    for name in sorted(outcome, key=lambda n: (outcome[n][0], n)):
        print(f"{outcome[name][1]:8} {name}")


if __name__ == "__main__":
    main(sys.argv[1:])
