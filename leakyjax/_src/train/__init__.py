"""Training stack: data sets, models, an optax loop with seeds in one program.

Needs the `train` extra (flax, optax, scikit-learn, mnist1d):
`pip install "leakyjax[train]"`.
"""

try:
    import flax
    import optax
except ImportError as e:  # pragma: no cover - depends on the environment
    raise ImportError(
        'leakyjax training needs flax and optax: pip install "leakyjax[train]"'
    ) from e

from leakyjax._src.train.data import DATASETS as DATASETS
from leakyjax._src.train.data import Dataset as Dataset
from leakyjax._src.train.data import as_dataset as as_dataset
from leakyjax._src.train.data import load_dataset as load_dataset
from leakyjax._src.train.loop import CHUNKING as CHUNKING
from leakyjax._src.train.loop import OPTIMIZERS as OPTIMIZERS
from leakyjax._src.train.loop import SCHEDULES as SCHEDULES
from leakyjax._src.train.loop import History as History
from leakyjax._src.train.loop import RunResult as RunResult
from leakyjax._src.train.loop import TrainConfig as TrainConfig
from leakyjax._src.train.loop import TrainResult as TrainResult
from leakyjax._src.train.loop import check_config as check_config
from leakyjax._src.train.loop import make_optimizer as make_optimizer
from leakyjax._src.train.loop import train as train
from leakyjax._src.train.models import CNN as CNN
from leakyjax._src.train.models import MLP as MLP
from leakyjax._src.train.models import MODELS as MODELS
from leakyjax._src.train.models import ActivationFactory as ActivationFactory
from leakyjax._src.train.models import activation_factory as activation_factory
from leakyjax._src.train.models import make_model as make_model

__all__ = [
    "CHUNKING",
    "CNN",
    "ActivationFactory",
    "activation_factory",
    "as_dataset",
    "DATASETS",
    "MLP",
    "MODELS",
    "OPTIMIZERS",
    "SCHEDULES",
    "Dataset",
    "History",
    "RunResult",
    "TrainConfig",
    "TrainResult",
    "check_config",
    "load_dataset",
    "make_model",
    "make_optimizer",
    "train",
]
