"""Annotate a corpus with a trained pipeline: locally or on Ray Data, resumable."""

from .run import annotate

__all__ = ["annotate"]
