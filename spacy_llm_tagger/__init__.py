"""spacy-llm-tagger: fine-tuned, partly unmasked decoder LLMs as spaCy sequence labelers."""

from . import corpus  # noqa: F401  (registers the reader)
from .about import __version__
from .models.decoder_tagger import DecoderTagger
from .models.decoder_transformer import DecoderTransformerModel
from .models.unmasking import parse_unmask
from .pipeline.llm_tagger import LLMTagger, make_llm_tagger

__all__ = [
    "__version__",
    "DecoderTagger",
    "DecoderTransformerModel",
    "LLMTagger",
    "make_llm_tagger",
    "parse_unmask",
]
