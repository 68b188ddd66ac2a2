"""Building datasets and their pipelines from the ``DATASET`` and ``PIPELINE`` sections."""

from ..utils.errors import ConfigError, DataError
from ..utils.registry import accepted_kwargs, build_from_cfg, check_kwargs
from .registry import DATASETS, PIPELINES


class Compose:
    """Apply pipeline steps in order to a ``results`` dict.

    Args:
        transform_list: the YAML list of one-key mappings (``- RandomCap: {caption_path: ...}``;
            a step without arguments may be ``- Tokenize:`` or the bare name), or step objects.
        where: config path for error messages (``PIPELINE.train.transform``).
    """

    def __init__(self, transform_list=None, where="PIPELINE.transform"):
        self.transforms = [self._build(step, f"{where}.{i}") for i, step in enumerate(transform_list or [])]

    @staticmethod
    def _build(step, where):
        if callable(step):
            return step
        if isinstance(step, str):
            step = {step: None}
        if not isinstance(step, dict) or len(step) != 1:
            raise ConfigError(f"{where} must be a one-key mapping such as '- Tokenize:', got {step!r}")
        (name, args), = step.items()
        args = dict(args or {})
        cls = PIPELINES.get(name)
        check_kwargs(cls, args, f"{where}.{name}")
        return cls(**args)

    def __call__(self, results):
        for transform in self.transforms:
            results = transform(results)
        return results

    def __iter__(self):
        return iter(self.transforms)

    def __len__(self):
        return len(self.transforms)


def build_pipeline(pipeline_cfg, where="PIPELINE"):
    """A Compose from a ``PIPELINE.<split>`` section (``{transform: [...]}``), a bare list, or None."""
    if pipeline_cfg is None:
        return Compose([], where)
    if isinstance(pipeline_cfg, dict):
        unknown = set(pipeline_cfg) - {"transform"}
        if unknown:
            raise ConfigError(f"unknown key '{where}.{sorted(unknown)[0]}'; valid: transform")
        return Compose(pipeline_cfg.get("transform"), f"{where}.transform")
    if isinstance(pipeline_cfg, list):
        return Compose(pipeline_cfg, f"{where}.transform")
    raise ConfigError(f"{where} must be a mapping with a 'transform' list, got {pipeline_cfg!r}")


def build_dataset(dataset_cfg, pipeline_cfg=None, where="DATASET.train"):
    """The dataset a ``DATASET.<split>`` component names (by ``format``), with its pipeline.

    ``pipeline_cfg`` is the matching ``PIPELINE.<split>`` section; it is passed as
    ``pipeline`` (a Compose) to datasets that take one. ``where`` names the split in
    error messages (``DATASET.test``).
    """
    if not isinstance(dataset_cfg, dict) or "format" not in dataset_cfg:
        raise ConfigError(f"{where} must be a mapping with a 'format' key (e.g. format: ActBertDataset)")
    cls = DATASETS.get(dataset_cfg["format"])
    split = where.split(".")[-1]
    pipeline = build_pipeline(pipeline_cfg, f"PIPELINE.{split}")
    accepted = accepted_kwargs(cls)
    extra = {}
    if accepted is None or "pipeline" in accepted:
        extra["pipeline"] = pipeline
    elif len(pipeline):
        raise ConfigError(f"PIPELINE.{split}: {dataset_cfg['format']} builds its own inputs and takes no pipeline "
                          f"steps; leave PIPELINE.{split} empty")
    return build_from_cfg(dataset_cfg, DATASETS, key="format", where=where, **extra)


def check_opens(dataset, where="DATASET.train"):
    """Raise DataError when ``dataset`` is empty; then open it: its ``check()`` when it defines
    one (e.g. to open files its first sample does not need), else its first sample is built."""
    if len(dataset) == 0:
        raise DataError(f"{where}: the dataset is empty")
    check = getattr(dataset, "check", None)
    if check is not None:
        check()
    else:
        dataset[0]


def check_disjoint(train, valid):
    """Raise DataError when the validation set shares videos with the training set: a dataset
    that can tell (``check_disjoint(train)``, e.g. a fine-tuning split list) checks it."""
    check = getattr(valid, "check_disjoint", None)
    if check is not None:
        check(train)
