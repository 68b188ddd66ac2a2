from .config import AttrDict, get_config, validate_config
from .errors import ActBertError, ConfigError, DataError, WeightsError
from .logger import get_logger, setup_logger
from .registry import Registry, build_from_cfg

__all__ = [
    "ActBertError", "AttrDict", "ConfigError", "DataError", "Registry", "WeightsError",
    "build_from_cfg", "get_config", "get_logger", "setup_logger", "validate_config",
]
