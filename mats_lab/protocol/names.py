"""Names both sides agree on: Optuna user attributes of a trial, MLflow tags, metric names.

Only the standard library is imported here.
"""

from __future__ import annotations

__all__ = [
    "ATTR_ERROR",
    "ATTR_FAILURE",
    "ATTR_HISTORY",
    "ATTR_LOG_TAIL",
    "ATTR_METRICS",
    "ATTR_POINT_KEY",
    "ATTR_SEED",
    "ATTR_STAGES",
    "ATTR_SWEEP",
    "ATTR_VARIABLES",
    "ATTR_WALL_TIME",
    "COST_METRICS",
    "FAILURE_CONFIG",
    "FAILURE_CRASH",
    "FAILURE_INTERRUPTED",
    "TAG_STUDY",
    "TAG_SWEEP",
    "TAG_SYNCED",
    "TAG_TRIAL",
]

# -- Optuna user attributes of a trial (written by the sweep, read by sync and the report) ----
ATTR_POINT_KEY = "point_key"  # the grid point (parameters + seed) the trial runs
ATTR_SEED = "seed"
ATTR_VARIABLES = "variables"  # every variable's value, bundles expanded
ATTR_SWEEP = "sweep"  # id of the sweep invocation that ran the trial
ATTR_METRICS = "metrics"  # {metric: value} of the finished trial
ATTR_HISTORY = "history"  # {metric: [[epoch, value], ...]}
ATTR_STAGES = "stages"  # [{name, key, work_dir, config_hash, reused, resumed_from}]
ATTR_WALL_TIME = "wall_time_s"
ATTR_FAILURE = "failure"  # why a FAIL trial failed: one of the FAILURE_* kinds
ATTR_ERROR = "error"  # the failure in words
ATTR_LOG_TAIL = "log_tail"  # the failed stage's last log lines

FAILURE_CRASH = "crash"  # retried while retries are left
FAILURE_CONFIG = "config"  # the trial cannot be built: never retried
FAILURE_INTERRUPTED = "interrupted"  # the sweep was stopped: re-queued, not counted

# -- MLflow tags of the runs a sweep creates ------------------------------------------------------
TAG_STUDY = "mats_lab.study"
TAG_TRIAL = "mats_lab.trial"
TAG_SWEEP = "mats_lab.sweep"
TAG_SYNCED = "mats_lab.synced"

#: Metrics a trial produces besides ``val/<metric>`` and ``test/<metric>`` (which come from
#: MMAction2's evaluators): the trial's own measurements of its cost.
COST_METRICS = (
    "train_gmacs",
    "test_gmacs",
    "params_m",
    "peak_memory_mb",
    "throughput",
    "wall_time_s",
)
