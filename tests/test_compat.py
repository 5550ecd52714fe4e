"""The stack fixes of STACK.md: each test shows the failure the fix prevents."""

import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch


def run_python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=300
    )


def test_without_the_fix_mmaction_models_does_not_import():
    from mats_lab.mm.compat import drn_folder_missing

    if not drn_folder_missing():
        pytest.skip("this mmaction install ships the drn folder (source install)")
    proc = run_python("import mmaction.models")
    assert proc.returncode != 0 and "drn" in proc.stderr


def test_with_the_fix_mmaction_models_imports_and_drn_says_why():
    proc = run_python("""
        import mats_lab.mm, mmaction.models
        from mmaction.registry import MODELS
        try:
            MODELS.build(dict(type='DRN'))
        except RuntimeError as err:
            print('refused:', err)
    """)
    assert proc.returncode == 0, proc.stderr
    assert "refused: DRN is not available" in proc.stdout


def test_stand_in_only_when_the_folder_is_missing(tmp_path, monkeypatch):
    from importlib.machinery import ModuleSpec

    from mats_lab.mm import compat

    (tmp_path / "mmaction" / "models" / "localizers" / "drn").mkdir(parents=True)
    (tmp_path / "mmaction" / "models" / "localizers" / "drn" / "drn.py").write_text("")
    spec = ModuleSpec("mmaction", None, is_package=True)
    spec.submodule_search_locations = [str(tmp_path / "mmaction")]
    monkeypatch.setattr(compat.importlib.util, "find_spec", lambda name: spec)
    assert compat.drn_folder_missing() is False
    monkeypatch.delitem(sys.modules, compat.DRN_MODULE, raising=False)
    assert compat.install_drn_stand_in() is False


class Evil:
    """Anything that is not a tensor, a container or an allowed MMEngine class."""


def history_checkpoint(path):
    """What MMEngine writes into every training checkpoint: HistoryBuffers of numpy data."""
    from mmengine.logging import HistoryBuffer

    buf = HistoryBuffer()
    buf.update(np.float64(0.5))
    buf.update(1.5, count=2)
    torch.save(
        {
            "state_dict": {"w": torch.ones(2)},
            "message_hub": {
                "log_scalars": {"train/loss": buf},
                "runtime_info": {"iter": np.int64(7)},
            },
        },
        path,
    )


def test_plain_weights_only_load_rejects_mmengine_checkpoints(tmp_path):
    history_checkpoint(tmp_path / "epoch_1.pth")
    with pytest.raises(Exception, match="HistoryBuffer"):
        torch.load(tmp_path / "epoch_1.pth", weights_only=True)


def test_mmengine_loads_its_checkpoints_under_weights_only_with_scoped_allow_list(mm, tmp_path):
    from mmengine.runner.checkpoint import _load_checkpoint

    history_checkpoint(tmp_path / "epoch_1.pth")
    ckpt = _load_checkpoint(str(tmp_path / "epoch_1.pth"), map_location="cpu")
    assert ckpt["message_hub"]["log_scalars"]["train/loss"].current() == pytest.approx(1.5)
    # the allow-list was only scoped to the load: nothing stays allowed globally
    from mmengine.logging import HistoryBuffer

    allowed = torch.serialization.get_safe_globals()
    assert getattr not in allowed and HistoryBuffer not in allowed
    assert "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD" not in __import__("os").environ


def test_arbitrary_pickles_are_still_refused(mm, tmp_path):
    from mmengine.runner.checkpoint import _load_checkpoint

    torch.save({"x": Evil()}, tmp_path / "evil.pth")
    with pytest.raises(Exception, match="Unsupported global|weights_only"):
        _load_checkpoint(str(tmp_path / "evil.pth"), map_location="cpu")


def test_setuptools_pin_keeps_mmaction_base_configs_loading(tmp_path):
    import setuptools
    from mmengine.config import Config

    assert int(setuptools.__version__.split(".")[0]) < 82
    cfg_file = tmp_path / "uses_mmaction_base.py"
    cfg_file.write_text("_base_ = ['mmaction::_base_/default_runtime.py']\n")
    assert Config.fromfile(str(cfg_file)).default_scope == "mmaction"


def test_the_accepted_mmcv_lite_warning_is_not_printed():
    """mmcv-lite's 'install mmcv rather than mmcv-lite' warning is accepted (STACK.md) and
    silenced where it arises; other warnings still show."""
    import subprocess
    import sys

    code = (
        "import warnings; warnings.simplefilter('default'); import mats_lab.mm; "
        "import mmaction.models; warnings.warn('still shown', UserWarning)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "mmcv-lite" not in out.stderr
    assert "still shown" in out.stderr


def test_a_config_is_formatted_once_for_all_its_checkpoints(monkeypatch):
    """Fix 5: every checkpoint's meta holds ``cfg.pretty_text``, which runs yapf over the whole
    config (about 1 s for a study stage's): the same config is formatted once, a changed one
    again, and the text is what the formatter gave."""
    import mmengine.config.config as config_module
    from mmengine.config import Config

    import mats_lab.mm  # noqa: F401  (applies the fixes)

    calls = []
    real = config_module.FormatCode

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(config_module, "FormatCode", counting)
    cfg = Config(dict(model=dict(type="Recognizer3D", depth=4), train_cfg=dict(max_epochs=40)))
    first = cfg.pretty_text
    assert cfg.pretty_text == first and Config(cfg.to_dict()).pretty_text == first
    assert len(calls) == 1, "the same content is formatted once"
    cfg.train_cfg.max_epochs = 41
    changed = cfg.pretty_text
    assert len(calls) == 2 and "max_epochs=41" in changed and changed != first
    cfg.train_cfg.max_epochs = 40
    assert cfg.pretty_text == first and len(calls) == 2
    assert "max_epochs=40" in first and "depth=4" in first
