"""``CachedVideoInit``: :class:`~mats_lab.mm.transforms.decoding.CheckedVideoInit` for a dataset
that carries a decoded-clip cache (:mod:`mats_lab.data.clip_cache`), read instead of the file.

``MotionSynthDataset(decoded_cache=True)`` builds the cache and puts its folder in every
sample as ``clip_cache``; this transform opens that cache once per process (each dataloader
worker maps the same file) and hands :class:`CheckedVideoDecode` a reader with the same index
checks that returns the very pixels checked PyAV decoding returns. A sample without
``clip_cache`` (one video run through a config's pipeline, as ``mats-lab show-tokens`` does)
is decoded from its file exactly as :class:`CheckedVideoInit` does.
"""

from __future__ import annotations

from mmaction.registry import TRANSFORMS
from mmcv.transforms import BaseTransform

from mats_lab.data.clip_cache import ClipCache
from mats_lab.mm.transforms.decoding import CheckedVideoInit

__all__ = ["CachedVideoInit"]

#: Caches opened in this process, by folder.
_OPEN: dict[str, ClipCache] = {}


def _cache(folder: str) -> ClipCache:
    cache = _OPEN.get(folder)
    if cache is None:
        cache = _OPEN[folder] = ClipCache(folder)
    return cache


@TRANSFORMS.register_module()
class CachedVideoInit(BaseTransform):
    """Open ``filename`` in the sample's decoded-clip cache. Pair with ``CheckedVideoDecode``.

    Required Keys:

        - filename
        - clip_cache (the cache folder; ``MotionSynthDataset(decoded_cache=True)`` adds it)

    Added Keys:

        - video_reader
        - total_frames
        - avg_fps

    Args:
        backend (str): the decoder for samples without ``clip_cache`` (as for
            :class:`CheckedVideoInit`). Defaults to ``'pyav'``, the one the cache is built with.

    Raises:
        VideoDecodeError: the video is not in the cache (or, without a cache, cannot be
            decoded).
        StaleCacheError: the cache no longer matches its dataset.
    """

    def __init__(self, backend: str = "pyav") -> None:
        self._files = CheckedVideoInit(backend=backend)
        self.backend = backend

    def transform(self, results: dict) -> dict:
        """Open ``results['filename']`` in ``results['clip_cache']``."""
        folder = results.get("clip_cache")
        if not folder:  # a sample from outside the cached dataset: checked decoding
            return self._files.transform(results)
        reader = _cache(str(folder)).reader(results["filename"])
        results["video_reader"] = reader
        results["total_frames"] = reader.num_frames
        results["avg_fps"] = reader.fps
        return results

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}(backend={self.backend!r})"
