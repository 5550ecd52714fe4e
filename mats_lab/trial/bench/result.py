"""The figures of a bench run, the ratios and checks derived from them, JSON and text.

Every ratio is MATS / baseline: ``pretrain_*`` compares MATS pre-training with VideoMAE
(tube) pre-training, ``finetune_*`` MATS fine-tuning with full-token fine-tuning. The time
ratio is the ratio of the median step times; the MACs ratio is that of the multiply-
accumulates of one training step (forward + backward) counted by
``torch.utils.flop_counter``; the memory ratio that of the peak memory.
"""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass, field

from mats_lab.trial.bench.spec import PAIRS, BenchSpec
from mats_lab.trial.bench.timing import paired_ratio

__all__ = ["LIMITS", "BenchResult", "WorkloadFigures", "format_result"]

# What the bench must show (issue 6): time ratio <= 1.1 x MACs ratio, pre-training peak
# memory <= 0.75 x VideoMAE's, scoring + selection <= 3 % of a MATS step.
LIMITS = {"time_over_macs": 1.1, "pretrain_memory": 0.75, "selection_share": 0.03}
_RATIO_KINDS = (
    "time",
    "paired_time",
    "cpu_time",
    "macs",
    "forward_macs",
    "memory",
    "saved_activations",
)


@dataclass
class WorkloadFigures:
    """Figures of one workload.

    Attributes:
        step_s: timed training steps, wall-clock seconds, in order.
        step_cpu_s: the same steps' process CPU seconds.
        train_gmacs: MACs of one training step (forward + backward) of the whole batch, G.
        forward_gmacs_per_clip: MACs of one forward per clip, G (the figure papers print).
        params_m: parameters, millions.
        tokens: tokens per clip through each part (``all``, ``encoder``, ...).
        saved_activations_mb: bytes autograd stores in one forward, by part, MiB.
        batch: clips per step.
        memory_mb: ``peak``, ``state``, ``activation_peak`` (MiB) and ``source``; ``None``
            when memory was not measured.
    """

    step_s: list[float]
    step_cpu_s: list[float]
    train_gmacs: float
    forward_gmacs_per_clip: float
    params_m: float
    tokens: dict[str, int]
    saved_activations_mb: dict[str, float]
    batch: int
    memory_mb: dict | None = None

    @property
    def median_s(self) -> float:
        return statistics.median(self.step_s)

    @property
    def median_cpu_s(self) -> float:
        return statistics.median(self.step_cpu_s)

    @property
    def clips_per_s(self) -> float:
        return self.batch / self.median_s

    def as_dict(self) -> dict:
        return dict(
            asdict(self),
            median_s=self.median_s,
            median_cpu_s=self.median_cpu_s,
            clips_per_s=self.clips_per_s,
        )


@dataclass
class BenchResult:
    """Everything one ``mats-lab bench`` run measured.

    Attributes:
        spec: the resolved spec.
        environment: date, hardware, threads, library versions, load averages.
        workloads: figures per workload name.
        selection_s: scoring + selection inside each timed MATS step, wall seconds.
        selection_cpu_s: the same spans in process CPU seconds (empty on a GPU).
        pipeline: data-pipeline throughput per sampler, or ``None`` when not measured.
        notes: lines printed after the report.
    """

    spec: BenchSpec
    environment: dict
    workloads: dict[str, WorkloadFigures]
    selection_s: dict[str, list[float]]
    selection_cpu_s: dict[str, list[float]]
    pipeline: dict | None = None
    notes: list[str] = field(default_factory=list)

    def selection_shares(self, clock: str = "wall") -> dict[str, float]:
        """Median selection time / median step time, per MATS workload, by ``wall`` clock
        or process ``cpu`` time."""
        if clock == "cpu":  # no CPU figures on a GPU
            return {
                name: statistics.median(times) / self.workloads[name].median_cpu_s
                for name, times in self.selection_cpu_s.items()
                if times
            }
        return {
            name: statistics.median(times) / self.workloads[name].median_s
            for name, times in self.selection_s.items()
        }

    def ratios(self) -> dict[str, float | None]:
        """The issue's keys (MATS / baseline) plus the paired time ratios; ``None`` for a
        pair or a figure that was not measured."""
        out: dict[str, float | None] = {}
        for pair, (base_name, mats_name) in PAIRS.items():
            base, mats = self.workloads.get(base_name), self.workloads.get(mats_name)
            if base is None or mats is None:
                out.update({f"{pair}_{kind}_ratio": None for kind in _RATIO_KINDS})
                continue
            out[f"{pair}_time_ratio"] = mats.median_s / base.median_s
            out[f"{pair}_paired_time_ratio"] = paired_ratio(mats.step_s, base.step_s)
            out[f"{pair}_cpu_time_ratio"] = mats.median_cpu_s / base.median_cpu_s
            out[f"{pair}_macs_ratio"] = mats.train_gmacs / base.train_gmacs
            out[f"{pair}_forward_macs_ratio"] = (
                mats.forward_gmacs_per_clip / base.forward_gmacs_per_clip
            )
            memory = None
            if base.memory_mb is not None and mats.memory_mb is not None:
                memory = mats.memory_mb["peak"] / base.memory_mb["peak"]
            out[f"{pair}_memory_ratio"] = memory
            out[f"{pair}_saved_activations_ratio"] = (
                mats.saved_activations_mb["total"] / base.saved_activations_mb["total"]
            )
        out["selection_share"] = max(self.selection_shares().values())
        out["selection_share_cpu"] = max(self.selection_shares("cpu").values(), default=None)
        return out

    def checks(self) -> dict[str, bool | None]:
        """The issue's must-shows; ``None`` where the figure was not measured."""
        r = self.ratios()
        limit = LIMITS["time_over_macs"]
        checks: dict[str, bool | None] = {}
        for pair in PAIRS:
            time_ratio, macs_ratio = r[f"{pair}_time_ratio"], r[f"{pair}_macs_ratio"]
            ok = None
            if time_ratio is not None and macs_ratio is not None:
                ok = time_ratio <= limit * macs_ratio
            checks[f"{pair}_time_within_{limit}x_macs"] = ok
        memory = r["pretrain_memory_ratio"]
        checks["pretrain_memory_at_most_0.75"] = (
            None if memory is None else memory <= LIMITS["pretrain_memory"]
        )
        share = r["selection_share"]
        assert share is not None
        checks["selection_share_at_most_3pct"] = share <= LIMITS["selection_share"]
        return checks

    def as_dict(self) -> dict:
        """Raw figures plus the ratio keys at the top level (the ``--json`` document)."""
        return {
            **self.ratios(),
            "selection_shares": self.selection_shares(),
            "selection_shares_cpu": self.selection_shares("cpu"),
            "checks": self.checks(),
            "spec": asdict(self.spec),
            "environment": self.environment,
            "workloads": {name: fig.as_dict() for name, fig in self.workloads.items()},
            "selection_s": self.selection_s,
            "selection_cpu_s": self.selection_cpu_s,
            "pipeline": self.pipeline,
            "notes": self.notes,
        }


def _fmt(value: float | None, spec: str = ".3f") -> str:
    return "-" if value is None else format(value, spec)


def format_result(result: BenchResult) -> str:
    """A plain-text report: one line per workload, then ratios, selection, pipeline, checks."""
    s, env = result.spec, result.environment
    lines = [
        f"mats-lab bench  model={s.model} clip={s.batch}x3x{s.frames}x{s.size}x{s.size} "
        f"device={s.device} threads={env.get('threads')} repeats={s.repeats} "
        f"warmup={s.warmup} amp={s.amp}",
        f"hardware: {env.get('hardware')}  busy CPUs before: {env.get('busy_cpus_before')}  "
        f"load average before/after: {env.get('load_before')} / {env.get('load_after')}",
        "",
        f"{'workload':<18} {'step ms':>9} {'CPU ms':>9} {'clips/s':>8} {'train GMACs':>12} "
        f"{'fwd GMACs/clip':>15} {'peak MiB':>9} {'act. MiB':>9} {'saved MiB':>10}  tokens",
    ]
    for name, fig in result.workloads.items():
        mem = fig.memory_mb or {}
        tokens = " ".join(f"{k}={v}" for k, v in fig.tokens.items())
        lines.append(
            f"{name:<18} {fig.median_s * 1e3:>9.1f} {fig.median_cpu_s * 1e3:>9.1f} "
            f"{fig.clips_per_s:>8.2f} "
            f"{fig.train_gmacs:>12.3f} {fig.forward_gmacs_per_clip:>15.4f} "
            f"{_fmt(mem.get('peak'), '.1f'):>9} {_fmt(mem.get('activation_peak'), '.1f'):>9} "
            f"{fig.saved_activations_mb['total']:>10.1f}  {tokens}"
        )
    r = result.ratios()
    lines += [
        "",
        f"{'MATS / baseline':<18} {'time':>7} {'paired':>7} {'CPU time':>9} {'MACs':>7} "
        f"{'memory':>7} {'stored act.':>12}",
    ]
    for pair in s.pairs:
        lines.append(
            f"{pair:<18} {_fmt(r[f'{pair}_time_ratio']):>7} "
            f"{_fmt(r[f'{pair}_paired_time_ratio']):>7} {_fmt(r[f'{pair}_cpu_time_ratio']):>9} "
            f"{_fmt(r[f'{pair}_macs_ratio']):>7} {_fmt(r[f'{pair}_memory_ratio']):>7} "
            f"{_fmt(r[f'{pair}_saved_activations_ratio']):>12}"
        )
    lines.append("")
    cpu_shares = result.selection_shares("cpu")
    for name, share in result.selection_shares().items():
        median_ms = statistics.median(result.selection_s[name]) * 1e3
        cpu = f" (CPU time: {cpu_shares[name]:.2%})" if name in cpu_shares else ""
        lines.append(
            f"scoring + selection in {name}: {median_ms:.2f} ms = {share:.2%} of a step{cpu}"
        )
    if result.pipeline:
        lines += ["", "data pipeline (one worker, real clip): clips/s"]
        for name, fig in result.pipeline.items():
            lines.append(f"  {name:<12} {fig['clips_per_s']:>7.2f}   clip {fig['shape']}")
    lines.append("")
    for check, ok in result.checks().items():
        lines.append(f"{'PASS' if ok else ('n/a ' if ok is None else 'FAIL')}  {check}")
    lines += result.notes
    return "\n".join(lines)
