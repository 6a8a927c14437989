"""Training small models for scaling ladders (the ``train`` extra: torch, tokenizers).

Only :mod:`scalinglab.arch.counting` is imported here: it is torch-free, so
``import scalinglab.train`` stays light. Import ``scalinglab.train.trainer``,
``.model`` or ``.corpus`` explicitly for the torch-backed parts.
"""
from scalinglab.arch.counting import (ModelShape, ParamCount, count_params,
                                       forward_flops_per_token, training_flops_per_token)

__all__ = ["ModelShape", "ParamCount", "count_params", "forward_flops_per_token",
           "training_flops_per_token"]
