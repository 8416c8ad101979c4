"""fpsim.nn: a small NumPy training framework whose matrix products run through fpsim's kernels.

Layers (forward and backward side by side) in :mod:`~fpsim.nn.layers` and, for the Transformer,
:mod:`~fpsim.nn.transformer`; the arithmetic of each GEMM layer in :mod:`~fpsim.nn.datapath`,
recipes in :mod:`~fpsim.nn.recipes`, models in :mod:`~fpsim.nn.models`, and the training loop
in :mod:`~fpsim.nn.training`.

>>> from fpsim import nn
>>> run = nn.train("fp8_wang2018", "mlp", "synthetic", epochs=1, progress=False)
>>> run["settings"]["recipe"], len(run["epochs"])
('fp8_wang2018', 1)
"""

from . import models, recipes, transformer
from .datapath import Datapath
from .layers import (AvgPool, BatchNorm, Conv2d, Flatten, Linear, MaxPool, Model, Param,
                     RangeBatchNorm, ReLU, Residual, Sequential, softmax_cross_entropy)
from .optim import SGD, AdamW
from .quantizers import (AutoflexScaling, CurrentScaling, DelayedScaling, GradScaling,
                         IntScaling, NVFP4Scaling, Round, TileScaling)
from .recipe import Recipe
from .training import compare, evaluate, plot_runs, train
from .transformer import GELU, CausalSelfAttention, Embedding, LayerNorm, RMSNorm

__all__ = ["Linear", "Conv2d", "BatchNorm", "RangeBatchNorm", "ReLU", "MaxPool", "AvgPool",
           "Flatten", "Residual", "Sequential", "Model", "Param", "softmax_cross_entropy", "SGD",
           "AdamW", "Embedding", "LayerNorm", "RMSNorm", "GELU", "CausalSelfAttention",
           "Recipe", "Round", "AutoflexScaling", "CurrentScaling", "DelayedScaling",
           "NVFP4Scaling", "TileScaling", "IntScaling",
           "GradScaling",
           "Datapath", "recipes", "models", "transformer", "train", "compare", "evaluate",
           "plot_runs"]
