"""Fault-injection cases of the tools, one file per area (extraction, converters, search and
export, fine-tuning, locks). Each case feeds one kind of hostile input (zero, negative, NaN,
missing, unwritable, truncated, foreign, concurrent) and requires the one-line ``error: ...``
with exit status 2, a documented choice, or the data left intact. The helpers of
``tests/tasks`` (stand-in data, subprocess runners) are importable from here."""

import sys
from pathlib import Path

TASKS = Path(__file__).resolve().parents[1] / "tasks"
if str(TASKS) not in sys.path:
    sys.path.insert(0, str(TASKS))
