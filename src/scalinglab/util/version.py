"""The package version (also scalinglab.__version__), importable from every layer."""
__version__ = "0.1.0"
