"""GRLO reproducibility package (arXiv 2605.15464)."""

__version__ = "0.1.0"
