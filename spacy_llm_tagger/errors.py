"""Exceptions raised by spacy-llm-tagger, each with a message that says what to fix.

Every error is an :class:`LLMTaggerError` (the command line turns one into a line on stderr and
exit status 1) and also the built-in exception a caller would catch without this module
(``ValueError``, ``OSError``, ...).
"""


class LLMTaggerError(Exception):
    """Base class of the package's errors."""


class ConfigError(LLMTaggerError, ValueError):
    """A setting of the component or architecture is invalid."""


class ModelError(LLMTaggerError, ValueError):
    """The model cannot be used as a decoder tagger."""


class ModelNotFoundError(LLMTaggerError, OSError):
    """The base model, a saved adapter or head file is missing."""


class DataError(LLMTaggerError, ValueError):
    """Training data the component cannot learn from."""


class NotInitializedError(LLMTaggerError, ValueError):
    """The model is used before ``nlp.initialize()`` or loading gave it weights."""


class NotSupportedError(LLMTaggerError, NotImplementedError):
    """An operation the component or architecture does not support."""


class MissingDependencyError(LLMTaggerError, ImportError):
    """An optional dependency (an extra of the package) is not installed."""


class OutOfMemoryError(LLMTaggerError, MemoryError):
    """A single forward pass does not fit in memory."""


class DistributedError(LLMTaggerError, RuntimeError):
    """Data-parallel training cannot go on (workers disagree, or spaCy's loop changed)."""


class CheckpointError(LLMTaggerError, RuntimeError):
    """A training checkpoint cannot be resumed (another config, or a damaged folder)."""
