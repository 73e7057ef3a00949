#!/usr/bin/env python3
"""Writes repodata/defaults/index4-subset.json from conda's tests/data/index4.json.

SolveTest.AgreesWithPeerSolver solves `python=3.6 numpy`, `scipy`, `python 2.7.* requests` and
`r-essentials` on index4 (5,643 records, 3 MB); SolveTest.Issue20CondasOrderOfPreferences solves
`readline`, `scipy`, `r-abind` and `r-base`. A solver only ever looks at the records of names it can reach
from the specs: through `depends` and `constrains`, and through the legacy `features` /
`track_features`, which name packages too (nomkl). So the subset keeps every record (unchanged,
same formatting) of every name reachable from the specs' names and drops the rest: 3,954 records,
2.1 MB. Checked when it was made: envbuild and rattler (tests/peer-solve) give the same answer
for each case on the subset as on the whole file.

Usage: make_index4_subset.py INDEX4_JSON OUT_JSON [ROOT_NAME ...]
(default roots: python numpy scipy requests r-essentials)
"""

import json
import re
import sys

DEFAULT_ROOTS = ["python", "numpy", "scipy", "requests", "r-essentials"]


def dependency_name(spec):
    return re.split(r"[ =<>!\[]", spec.strip(), maxsplit=1)[0]


def reachable_names(records, roots):
    by_name = {}
    for record in records.values():
        by_name.setdefault(record["name"], []).append(record)
    seen, todo = set(), list(roots)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        for record in by_name.get(name, []):
            for spec in (record.get("depends") or []) + (record.get("constrains") or []):
                todo.append(dependency_name(spec))
            for key in ("features", "track_features"):
                todo.extend((record.get(key) or "").replace(",", " ").split())
    return seen


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    with open(sys.argv[1]) as f:
        records = json.load(f)
    names = reachable_names(records, sys.argv[3:] or DEFAULT_ROOTS)
    subset = {fn: r for fn, r in records.items() if r["name"] in names}
    with open(sys.argv[2], "w") as f:
        # The source is written this way: the subset's records are byte-for-byte the source's.
        f.write(json.dumps(subset, indent=2, sort_keys=True) + "\n")
    print(f"{len(subset)} of {len(records)} records, {len(names)} names", file=sys.stderr)


if __name__ == "__main__":
    main()
