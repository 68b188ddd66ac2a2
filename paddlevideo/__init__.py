"""ActBERT in PaddlePaddle: models, data, training and retrieval evaluation.

Importing the package fills the registries (models, datasets, pipelines, metrics,
optimisers, evaluators) so that configs can name their components.
"""

import warnings

# Paddle warns at import about a missing ccache, which only matters for building
# custom C++ operators; it is noise for every user of this package.
warnings.filterwarnings("ignore", message="No ccache found")

from . import evaluation, loader, metrics, modeling, retrieval, solver  # noqa: E402,F401
from .schema import check_components, check_text_fits_model  # noqa: E402
from .utils.config import add_component_check  # noqa: E402

add_component_check(check_components)
add_component_check(check_text_fits_model)

__version__ = "0.1.0"
