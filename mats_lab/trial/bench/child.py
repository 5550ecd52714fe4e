"""Child process of the memory measurement: ``python -m mats_lab.trial.bench.child SPEC NAME``.

Builds workload ``NAME`` for the JSON ``SPEC`` in this fresh process, runs its steps and
prints one JSON line of memory figures (:func:`mats_lab.trial.bench.memory.child_measure`).
"""

from __future__ import annotations

import json
import sys

from mats_lab.trial.bench.memory import child_measure
from mats_lab.trial.bench.spec import BenchSpec


def main(argv: list[str]) -> None:
    if len(argv) != 2:
        raise SystemExit("usage: python -m mats_lab.trial.bench.child SPEC_JSON WORKLOAD")
    print(json.dumps(child_measure(BenchSpec.from_json(argv[0]), argv[1])))


if __name__ == "__main__":
    main(sys.argv[1:])
