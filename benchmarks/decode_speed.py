"""Decoding speed of mats-lab's checked pipeline against MMAction2's decord pipeline.

Clips per second for one worker (one process, one decoding thread), every method on the same
videos in the same run, interleaved sample by sample (so machine load drifts hit them alike):

(a) ``clips``: 16x4x1 clips (``SampleFrames(clip_len=16, frame_interval=4)``) from the real
    clips of ../shared/data/videos: ``DecordInit`` -> ``SampleFrames`` -> ``DecordDecode``
    (MMAction2) against ``CheckedVideoInit(backend='auto')`` -> ``SampleFrames`` ->
    ``CheckedVideoDecode`` (mats-lab).
(b) ``long``: the adaptive-frame-selection sampler's candidate frames
    (``CandidateSampleFrames(clip_len=16, frame_interval=4, candidate_ratio=2.0)``: 32 frames
    in 16 tubelets spread over the whole video) from generated videos of several minutes
    (320x240, 25 fps, a keyframe every 5 s, written to a temporary folder): decord fetching
    the same frames (``DecordInit`` + ``DecordDecode``), mats-lab's checked decoding (which
    seeks), and the same reader with seeking disabled (decode from frame 0: mats-lab before
    issue 14).

One worker = one process pinned to one core (``--core``; ``--core -2`` leaves it unpinned).
decord's reader runs its decoder in a thread of its own; mats-lab decodes in the calling
thread. Both are asked for one decoding thread.

Usage::

    .venv/bin/python benchmarks/decode_speed.py [--part clips|long|both] [--rounds N]
        [--long-rounds N] [--minutes M] [--videos K] [--core C]

Prints a table per part and ``uptime``.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import av
import numpy as np

REPO = Path(__file__).resolve().parents[1]
REAL = REPO.parent / "shared" / "data" / "videos"
REAL_CLIPS = ["demo.mp4", "car-detection.mp4", "eye-makeup-xvid-packed.avi"]


def write_long_video(
    path: Path, minutes: float, seed: int, gop_s: float = 5.0, size: tuple[int, int] = (240, 320)
) -> Path:
    """A ``minutes``-long ``size`` (H, W) 25 fps H.264 video: a textured background panning slowly
    with a bright square moving over it (so that inter frames carry real residuals)."""
    rng = np.random.default_rng(seed)
    (height, width), fps = size, 25
    texture = rng.integers(0, 256, (height * 2, width * 2, 3), dtype=np.uint8)
    frames = int(minutes * 60 * fps)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        gop = str(int(gop_s * fps))
        stream.codec_context.options = {
            "preset": "veryfast",
            "crf": "23",
            "g": gop,
            "keyint_min": gop,
            "sc_threshold": "0",
        }
        for t in range(frames):
            y, x = (t // 3) % height, (t // 2) % width
            img = texture[y : y + height, x : x + width].copy()
            sy, sx = (t * 3) % (height - 40), (t * 5) % (width - 40)
            img[sy : sy + 40, sx : sx + 40] = 255
            container.mux(stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")))
        container.mux(stream.encode(None))
    return path


def _pipelines(sampler: dict) -> dict[str, list]:
    """name -> list of built transforms."""
    from mmaction.registry import TRANSFORMS

    build = TRANSFORMS.build
    return {
        "mmaction decord": [
            build(dict(type="DecordInit", num_threads=1)),
            build(dict(sampler)),
            build(dict(type="DecordDecode")),
        ],
        "mats-lab auto": [
            build(dict(type="CheckedVideoInit", backend="auto", num_threads=1)),
            build(dict(sampler)),
            build(dict(type="CheckedVideoDecode")),
        ],
    }


class _FromFrameZero:
    """mats-lab's checked PyAV decoding with seeking disabled (every read decodes from frame
    0): the decoding of mats-lab before issue 14. Same keys as ``CheckedVideoInit``."""

    def __call__(self, results: dict) -> dict:
        from mats_lab.data.decode import PyAVReader, probe_video

        info = dataclasses.replace(probe_video(results["filename"]), keyframes=(0,))
        reader = PyAVReader(results["filename"], num_threads=1, info=info)
        results.update(video_reader=reader, total_frames=reader.num_frames, avg_fps=reader.fps)
        return results


def _run(pipeline: list, path: Path, seed: int) -> int:
    results = {"filename": str(path), "start_index": 0, "modality": "RGB"}
    np.random.seed(seed)  # noqa: NPY002  mmaction's SampleFrames uses numpy's global generator
    for step in pipeline:
        results = step(results)
    return len(results["imgs"])


def measure(
    pipelines: dict[str, list], videos: list[Path], rounds: int
) -> dict[str, dict[str, list[tuple[float, float]]]]:
    """``method -> video -> [(wall s, CPU s)]`` per clip, interleaved: each round, each video,
    each method in turn."""
    times: dict[str, dict[str, list[tuple[float, float]]]] = {
        name: {p.name: [] for p in videos} for name in pipelines
    }
    for pipeline in pipelines.values():  # warm-up: imports, first opens
        _run(pipeline, videos[0], 0)
    for r in range(rounds):
        for v, path in enumerate(videos):
            for name, pipeline in pipelines.items():
                wall, cpu = time.perf_counter(), time.process_time()
                _run(pipeline, path, seed=r * 1000 + v)
                times[name][path.name].append(
                    (time.perf_counter() - wall, time.process_time() - cpu)
                )
    return times


def report(
    title: str, times: dict[str, dict[str, list[tuple[float, float]]]], reference: str
) -> None:
    """Clips/s = clips / total seconds (wall, and process CPU time: steadier on a shared
    machine), with the ratio to ``reference``; then the median wall ms per video."""
    print(f"\n{title}")

    def rate(name: str, which: int) -> float:
        values = [t[which] for per_video in times[name].values() for t in per_video]
        return len(values) / sum(values)

    print(f"{'method':24s} {'clips/s':>8s} {'ratio':>7s} {'CPU clips/s':>12s} {'ratio':>7s}")
    for name in times:
        wall, cpu = rate(name, 0), rate(name, 1)
        print(
            f"{name:24s} {wall:8.2f} {wall / rate(reference, 0):6.2f}x "
            f"{cpu:12.2f} {cpu / rate(reference, 1):6.2f}x"
        )
    videos = list(next(iter(times.values())))
    print(
        "median wall ms per clip: "
        + "; ".join(
            f"{video}: "
            + ", ".join(
                f"{name} {statistics.median(t[0] for t in times[name][video]) * 1e3:.0f}"
                for name in times
            )
            for video in videos
        )
    )


def part_clips(rounds: int) -> None:
    videos = [REAL / name for name in REAL_CLIPS]
    missing = [str(p) for p in videos if not p.is_file()]
    if missing:
        raise SystemExit(f"missing real clips: {missing}")
    sampler = dict(type="SampleFrames", clip_len=16, frame_interval=4, num_clips=1)
    times = measure(_pipelines(sampler), videos, rounds)
    report(
        f"(a) 16x4x1 clips from {len(videos)} real clips, {rounds} rounds "
        f"({rounds * len(videos)} clips per method)",
        times,
        "mmaction decord",
    )


def part_long(rounds: int, minutes: float, count: int, folder: Path) -> None:
    start = time.perf_counter()
    videos = [write_long_video(folder / f"long{i}.mp4", minutes, seed=i) for i in range(count)]
    print(f"\nwrote {count} videos of {minutes:g} min in {time.perf_counter() - start:.0f} s")
    sampler = dict(
        type="CandidateSampleFrames", clip_len=16, frame_interval=4, candidate_ratio=2.0, seed=0
    )  # one generator per pipeline, same seed: every method gets the same frames
    pipelines = _pipelines(sampler)
    checked = pipelines["mats-lab auto"]
    pipelines["mats-lab from frame 0"] = [_FromFrameZero(), checked[1], checked[2]]
    times = measure(pipelines, videos, rounds)
    report(
        f"(b) 32 candidate frames spread over {minutes:g}-minute videos, {rounds} rounds "
        f"({rounds * count} clips per method)",
        times,
        "mmaction decord",
    )


def part_check(count: int, jobs: int, folder: Path) -> None:
    """Files/s of ``mats-lab data check`` (its library call) on ``count`` Kinetics-like videos:
    10 s, 340x256, 25 fps H.264 with a keyframe every 2 s, plus the real clips."""
    from mats_lab.cli.main import app

    start = time.perf_counter()
    names = []
    for i in range(count):
        path = folder / f"k{i:03d}.mp4"
        write_long_video(path, 10 / 60, seed=100 + i, gop_s=2.0, size=(256, 340))
        names.append(path)
    names += [REAL / n for n in REAL_CLIPS if (REAL / n).is_file()]
    print(f"\nwrote {count} 10-second videos in {time.perf_counter() - start:.0f} s")
    ann = folder / "list.txt"
    ann.write_text("".join(f"{p} {i % 7}\n" for i, p in enumerate(names)))
    from typer.testing import CliRunner

    argv = ["data", "check", str(ann), "--jobs", str(jobs), "--report", str(folder / "r.json")]
    os.sched_setaffinity(0, set(range(os.cpu_count() or 1)))  # the check uses every core
    print(f"(c) mats-lab {' '.join(argv[:2])} LIST --jobs {jobs}, {len(names)} videos:")
    result = CliRunner().invoke(app, argv)
    print(result.output.replace("checking", "").strip())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--part", choices=["clips", "long", "both", "check"], default="both")
    parser.add_argument("--check-videos", type=int, default=60)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--long-rounds", type=int, default=4)
    parser.add_argument("--minutes", type=float, default=4.0)
    parser.add_argument("--videos", type=int, default=3)
    parser.add_argument(
        "--core",
        type=int,
        default=-1,
        help="pin the process to this CPU (-1, default: the last one it may use): one worker "
        "= one core, so decord's extra decoder thread shares the core with its main thread as "
        "it does when every core runs a DataLoader worker; --core -2: do not pin",
    )
    args = parser.parse_args(argv)
    if args.core != -2:
        core = sorted(os.sched_getaffinity(0))[-1] if args.core == -1 else args.core
        os.sched_setaffinity(0, {core})

    import cv2

    cv2.setNumThreads(1)
    from mmengine.registry import init_default_scope

    import mats_lab.mm  # noqa: F401  registers the transforms, applies the stack fixes

    init_default_scope("mmaction")
    print(
        f"started {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())}, pid {os.getpid()}, "
        f"CPUs {sorted(os.sched_getaffinity(0))}"
    )
    if args.part in ("clips", "both"):
        part_clips(args.rounds)
    if args.part in ("long", "both"):
        with tempfile.TemporaryDirectory() as folder:
            part_long(args.long_rounds, args.minutes, args.videos, Path(folder))
    if args.part == "check":
        with tempfile.TemporaryDirectory() as folder:
            part_check(args.check_videos, args.jobs, Path(folder))
    print("\nuptime:", subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip())


if __name__ == "__main__":
    main()
