"""mats-lab: Motion-Aware Token Selection (MATS / EVEREST) for MMAction2.

Importing this package is cheap: it loads neither torch nor any mm* library.
The MMAction2 components live in :mod:`mats_lab.mm` (listed in configs'
``custom_imports``), the pure math in :mod:`mats_lab.core`.
"""

__version__ = "0.1.0"
