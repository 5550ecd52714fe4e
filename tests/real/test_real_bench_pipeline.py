"""The bench's data-pipeline throughput on a real clip (../shared/data/videos)."""

from __future__ import annotations

from pathlib import Path

import pytest
from ci_guard import require

pytestmark = pytest.mark.real

VIDEO = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "videos" / "demo.mp4"


def test_pipelines_deliver_their_clips_and_a_rate(mm) -> None:
    require(
        VIDEO.is_file(),
        f"real clip {VIDEO} is absent (expected the repo's sibling 'shared' folder)",
    )
    from mats_lab.trial.bench.pipeline import PIPELINES, pipeline_throughput

    figures = pipeline_throughput(VIDEO, frames=8, size=32, repeats=1)
    assert set(figures) == set(PIPELINES)
    assert figures["uniform"]["shape"] == [1, 3, 8, 32, 32]
    assert figures["afs"]["shape"] == [1, 3, 12, 32, 32]  # 1.5 x the frames, for the model
    assert figures["afs_pixdiff"]["shape"] == [1, 3, 8, 32, 32]  # chosen in the pipeline
    assert all(f["clips_per_s"] > 0 for f in figures.values())
