"""Studies: questions answered on the fitting engine (compare, groups, curves, hyperparameters, critical batch, ...)."""
