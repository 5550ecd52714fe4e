"""Exit statuses of a stage process, as the sweep reads them.

Only the standard library is imported here.
"""

from __future__ import annotations

__all__ = ["CONFIG_ERROR", "FAILED", "INTERRUPTED", "OK"]

#: The stage trained (or was reused) and wrote its result.
OK = 0
#: Training failed (an exception, a crash, a failed rank): retried while retries are left.
FAILED = 1
#: The stage's config cannot be built (unknown key, knob out of range, missing file): never
#: retried, since every retry would fail the same way.
CONFIG_ERROR = 3
#: The process was interrupted (SIGINT/SIGTERM); what it wrote so far is resumable.
INTERRUPTED = 130
