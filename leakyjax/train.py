"""Public namespace of the training stack (`pip install "leakyjax[train]"`).

Data sets that need no download, MLP/CNN models built from leakyjax modules and
initialisers, an optax loop that trains all seeds of a configuration in one
compiled program (data parallel over local devices), and [`compare`][leakyjax.train.compare], the
function behind `leakyjax compare`.

Example:
    >>> from leakyjax.train import TrainConfig
    >>> cfg = TrainConfig(activation="leaky_relu:0.2", dataset="digits")
    >>> cfg.optimizer, cfg.steps
    ('adamw', 3000)
"""

from leakyjax._src.train import CNN as CNN
from leakyjax._src.train import DATASETS as DATASETS
from leakyjax._src.train import MLP as MLP
from leakyjax._src.train import MODELS as MODELS
from leakyjax._src.train import ActivationFactory as ActivationFactory
from leakyjax._src.train import Dataset as Dataset
from leakyjax._src.train import History as History
from leakyjax._src.train import RunResult as RunResult
from leakyjax._src.train import TrainConfig as TrainConfig
from leakyjax._src.train import TrainResult as TrainResult
from leakyjax._src.train import activation_factory as activation_factory
from leakyjax._src.train import as_dataset as as_dataset
from leakyjax._src.train import load_dataset as load_dataset
from leakyjax._src.train import make_model as make_model
from leakyjax._src.train import make_optimizer as make_optimizer
from leakyjax._src.train import train as train
from leakyjax._src.train.compare import DEFAULT_ACTS as DEFAULT_ACTS
from leakyjax._src.train.compare import CompareResult as CompareResult
from leakyjax._src.train.compare import Summary as Summary
from leakyjax._src.train.compare import compare as compare
from leakyjax._src.train.compare import read_results as read_results

__all__ = [
    "CNN",
    "ActivationFactory",
    "activation_factory",
    "as_dataset",
    "DATASETS",
    "DEFAULT_ACTS",
    "MLP",
    "MODELS",
    "CompareResult",
    "Dataset",
    "History",
    "RunResult",
    "Summary",
    "TrainConfig",
    "TrainResult",
    "compare",
    "load_dataset",
    "make_model",
    "make_optimizer",
    "read_results",
    "train",
]
