"""Feature extraction from one's own videos (``tools/extract_features.py`` is its command line).

- ``inputs``: what to extract (files, folders, lists, CSV clip lists, VTT/SRT cues, windows);
- ``frames``: which frames each clip needs, and one decoding pass to get them;
- ``regions``: a clip's boxes, ranked and merged across its detector frames;
- ``writer``: the store, the MSR-VTT LMDB and query list, the ``.npy``, the progress record;
- ``pipeline``: ``ExtractionSettings``, the models, and ``run``.
"""

from .pipeline import ExtractionSettings, parse_action_config, run

__all__ = ["ExtractionSettings", "parse_action_config", "run"]
