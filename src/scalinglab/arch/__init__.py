"""Torch-free model arithmetic: exact parameter and FLOP counts, learning-rate schedules and model
shapes.  Planning, the sweep and the trainer all read these; nothing here imports torch."""
