"""Readers of the step-annotated video corpora (COIN, CrossTask) and the per-second grid
their labels live on. Pure numpy and the standard library; not yet wired into a dataset
(see data/README.md, "COIN and CrossTask")."""

from . import coin, crosstask, seconds, windows
