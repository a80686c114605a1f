"""walsspark: weighted alternating least squares (WALS) matrix factorization on Spark."""

__version__ = "0.1.0"
