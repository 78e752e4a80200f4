"""Exceptions raised by spacy-llm-tagger, each with a message that says what to fix."""


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
