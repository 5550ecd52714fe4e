"""``mats-lab bench``: measured speed and memory of MATS against VideoMAE, side by side.

:func:`run_bench` returns a :class:`BenchResult` (raw figures, ratios, checks);
:func:`format_result` prints it. The pieces: :mod:`.spec` (sizes and workloads),
:mod:`.workloads` (the training steps), :mod:`.timing` (interleaved timing),
:mod:`.memory` (peak memory in child processes, stored activations), :mod:`.selection`
(scoring + selection), :mod:`.pipeline` (data-pipeline throughput), :mod:`.result`.
"""

from mats_lab.trial.bench.result import BenchResult, WorkloadFigures, format_result
from mats_lab.trial.bench.run import run_bench
from mats_lab.trial.bench.spec import MODEL_SIZES, WORKLOADS, BenchSpec

__all__ = [
    "MODEL_SIZES",
    "WORKLOADS",
    "BenchResult",
    "BenchSpec",
    "WorkloadFigures",
    "format_result",
    "run_bench",
]
