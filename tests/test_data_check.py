"""`mats-lab data check` names each planted bad video with the right reason and exits 1; a
clean list exits 0; --write-clean keeps only the good lines."""

from __future__ import annotations

import json
from pathlib import Path

import av
import pytest
from typer.testing import CliRunner
from video_clips import write_dropped_frame_video, write_index_video

from mats_lab.cli.main import app
from mats_lab.data import datacheck

runner = CliRunner()


def _zero_frame_container(path: Path) -> Path:
    """A valid AVI with a video stream and no frames in it (header written, nothing muxed)."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=25)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        container.start_encoding()
    return path


def _truncated(src: Path, dst: Path) -> Path:
    """The first half of a file: its header promises more than the data holds."""
    data = src.read_bytes()
    dst.write_bytes(data[: len(data) // 2])
    return dst


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("dataset")
    good = write_index_video(root / "good.mp4", "libx264", 40)
    files = {
        "good.mp4": good,
        "good.avi": write_index_video(root / "good.avi", "mpeg4", 40),
        "good-vfr.mkv": write_index_video(
            root / "good-vfr.mkv", "libx264", 40, stamps=[i * 40 + (i % 3) * 9 for i in range(40)]
        ),
        "empty.mp4": root / "empty.mp4",
        "truncated.avi": _truncated(
            write_index_video(root / "long.avi", "mpeg4", 120), root / "truncated.avi"
        ),
        "truncated.mkv": _truncated(
            write_index_video(root / "long.mkv", "libx264", 120), root / "truncated.mkv"
        ),
        "cut-index.mp4": _truncated(good, root / "cut-index.mp4"),
        "zero-frame.avi": _zero_frame_container(root / "zero-frame.avi"),
        "short.mp4": write_index_video(root / "short.mp4", "libx264", 8),
        "notes.mp4": root / "notes.mp4",
        "dropped-frame.mp4": write_dropped_frame_video(root, "mp4", at=10),
    }
    files["empty.mp4"].touch()
    files["notes.mp4"].write_text("not a video, just text\n" * 50)
    return files


EXPECTED = {  # file -> the reason data check must give
    "empty.mp4": "empty",
    "truncated.avi": "truncated",
    "truncated.mkv": "truncated",
    "cut-index.mp4": "truncated",
    "zero-frame.avi": "zero-frame",
    "short.mp4": "too-short",
    "notes.mp4": "unreadable",
    "missing.mp4": "missing",
}
GOOD = ["good.mp4", "good.avi", "good-vfr.mkv"]


def _write_list(path: Path, names: list[str]) -> Path:
    path.write_text("".join(f"{name} {i % 3}\n" for i, name in enumerate(names)))
    return path


def test_each_planted_bad_file_is_named_with_its_reason(
    dataset: dict[str, Path], tmp_path: Path
) -> None:
    names = [*GOOD, *EXPECTED]
    ann = _write_list(tmp_path / "list.txt", names)
    root = next(iter(dataset.values())).parent
    report = tmp_path / "report.json"
    clean = tmp_path / "clean.txt"
    result = runner.invoke(
        app,
        [
            "data", "check", str(ann), "--root", str(root), "--min-frames", "16",
            "--jobs", "2", "--report", str(report), "--write-clean", str(clean),
        ],
    )  # fmt: skip
    assert result.exit_code == 1, result.output
    records = {Path(v["path"]).name: v for v in json.loads(report.read_text())["videos"]}
    for name, reason in EXPECTED.items():
        kinds = [kind for kind, _ in records[name]["problems"]]
        assert kinds and kinds[0] == reason, (name, records[name]["problems"])
        assert f"BAD  {reason}" in result.output and name in result.output
    for name in GOOD:
        assert records[name]["problems"] == [], records[name]
        assert "pyav" in records[name]["backends"]
    assert clean.read_text().split("\n")[:-1] == [f"{n} {i % 3}" for i, n in enumerate(GOOD)]
    summary = json.loads(report.read_text())["summary"]
    assert summary["videos"] == len(names) and summary["bad"] == len(EXPECTED)


def test_a_clean_list_exits_zero(dataset: dict[str, Path], tmp_path: Path) -> None:
    ann = _write_list(tmp_path / "clean.txt", GOOD)
    root = dataset["good.mp4"].parent
    report = tmp_path / "r.json"
    result = runner.invoke(
        app, ["data", "check", str(ann), "--root", str(root), "--report", str(report)]
    )
    assert result.exit_code == 0, result.output
    assert "3 videos, 0 bad" in result.output
    records = json.loads(report.read_text())["videos"]
    vfr = next(r for r in records if r["path"].endswith("good-vfr.mkv"))
    assert [kind for kind, _ in vfr["warnings"]] == ["odd-frame-rate"]


def test_full_mode_decodes_every_frame(dataset: dict[str, Path]) -> None:
    entry = datacheck.Entry(str(dataset["good.avi"]), "good.avi 0", "list.txt")
    result = datacheck.check_video(entry, backends=("pyav",), full=True)
    assert result.ok and result.backends == ["pyav"] and result.num_frames == 40


def test_full_mode_finds_a_frame_the_decoder_drops(dataset: dict[str, Path]) -> None:
    # The quick check reads the first and last frames; frame 10 lies in another GOP.
    entry = datacheck.Entry(str(dataset["dropped-frame.mp4"]), "x 0", "list.txt")
    assert datacheck.check_video(entry, backends=("pyav",)).ok
    result = datacheck.check_video(entry, backends=("pyav",), full=True)
    assert [kind for kind, _ in result.problems] == ["frame-identity"]
    assert "decoded frame 10 has timestamp" in result.problems[0][1]


def test_a_config_is_expanded_into_its_lists(dataset: dict[str, Path], tmp_path: Path) -> None:
    root = dataset["good.mp4"].parent
    train = _write_list(tmp_path / "train.txt", ["good.mp4", "short.mp4"])
    val = _write_list(tmp_path / "val.txt", ["good.avi"])
    pipeline = "[dict(type='SampleFrames', clip_len=4, frame_interval=4)]"
    config = tmp_path / "cfg.py"
    config.write_text(
        f"train_dataloader = dict(dataset=dict(ann_file='{train}', "
        f"data_prefix=dict(video='{root}'), pipeline={pipeline}))\n"
        f"val_dataloader = dict(dataset=dict(ann_file='{val}', "
        f"data_prefix=dict(video='{root}'), pipeline={pipeline}))\n"
        "test_dataloader = val_dataloader\n"
    )
    entries = datacheck.load_entries(config, None, None)
    assert [Path(e.path).name for e in entries] == ["good.mp4", "short.mp4", "good.avi"]
    assert {e.min_frames for e in entries} == {13}  # (4 - 1) * 4 + 1
    results = datacheck.check_videos(entries, jobs=1)
    assert [r.ok for r in results] == [True, False, True]  # short.mp4: 8 frames < 13
    assert results[1].problems[0][0] == "too-short"
    with pytest.raises(ValueError, match="videos come from 2"):
        datacheck.write_clean_list(results, tmp_path / "clean.txt")


def test_a_missing_list_is_an_error_naming_it(tmp_path: Path) -> None:
    result = runner.invoke(app, ["data", "check", str(tmp_path / "nope.txt")])
    assert result.exit_code == 2
    assert "nope.txt: no such annotation list or config" in result.output


def test_backends_are_chosen_and_unknown_ones_refused(
    dataset: dict[str, Path], tmp_path: Path
) -> None:
    ann = _write_list(tmp_path / "one.txt", ["good.mp4"])
    root = str(dataset["good.mp4"].parent)
    report = tmp_path / "r.json"
    args = ["data", "check", str(ann), "--root", root, "--report", str(report)]
    result = runner.invoke(app, [*args, "--backends", "pyav,opencv"])
    assert result.exit_code == 0, result.output
    assert json.loads(report.read_text())["videos"][0]["backends"] == ["pyav", "opencv"]
    result = runner.invoke(app, [*args, "--backends", "pyav,ffmpeg"])
    assert result.exit_code == 2 and "'ffmpeg' is not an installed backend" in result.output
