"""``spacy-llm-tagger calibrate``: fit the temperature of a saved pipeline's llm_tagger.

The fitting is the component's own (:meth:`LLMTagger.calibrate
<.pipeline.llm_tagger.LLMTagger.calibrate>`, see :mod:`.pipeline.calibration`); this module
reads the dev data, finds the component, and saves it back with its own ``to_disk``.
"""

from pathlib import Path
from typing import List, Optional, Tuple, Union

from spacy.language import Language
from spacy.training import Example

from .corpus import tokens_only
from .errors import ConfigError, DataError
from .pipeline.calibration import (
    TEMPERATURES,
    CalibrationReport,
    HeldOut,
    collect,
    expected_calibration_error,
    fit_temperature,
    negative_log_likelihood,
    outcomes,
    reliability_bins,
)
from .pipeline.llm_tagger import LLMTagger

__all__ = [
    "TEMPERATURES",
    "CalibrationReport",
    "HeldOut",
    "calibrate",
    "collect",
    "expected_calibration_error",
    "find_tagger",
    "fit_temperature",
    "negative_log_likelihood",
    "outcomes",
    "read_examples",
    "reliability_bins",
    "save_component",
]


def find_tagger(nlp: Language, component: Optional[str] = None) -> Tuple[str, LLMTagger]:
    """The (named, or only) llm_tagger of a pipeline."""
    taggers = [(name, pipe) for name, pipe in nlp.pipeline if isinstance(pipe, LLMTagger)]
    if component is not None:
        taggers = [(name, pipe) for name, pipe in taggers if name == component]
    if len(taggers) != 1:
        names = [name for name, pipe in nlp.pipeline if isinstance(pipe, LLMTagger)]
        raise ConfigError(
            f"Found llm_tagger components {names}; name the one to calibrate with --component."
            if names
            else "The pipeline has no llm_tagger component."
        )
    return taggers[0]


def read_examples(dev: Union[str, Path], nlp: Language, limit: int = 0) -> List[Example]:
    """The docs of a .spacy file as Examples that predict on their own (gold) tokens, so
    every gold span lines up with predicted tokens; the first ``limit`` docs (0 = all)."""
    from spacy.tokens import DocBin

    dev = Path(dev)
    if not dev.exists():
        raise DataError(f"Dev data not found: {dev}")
    docs = list(DocBin().from_disk(dev).get_docs(nlp.vocab))
    if limit:
        docs = docs[:limit]
    return [Example(tokens_only(doc, nlp.vocab), doc) for doc in docs]


def save_component(pipe: LLMTagger, pipeline: Union[str, Path]) -> None:
    """Write the component's cfg (its temperature) into the pipeline folder it was loaded
    from, through the component's own ``to_disk``; its model folder is left as it is."""
    pipe.to_disk(Path(pipeline) / pipe.name, exclude=["model"])


def calibrate(
    pipeline: Union[str, Path],
    dev: Union[str, Path],
    component: Optional[str] = None,
    limit: int = 0,
) -> dict:
    """Fit the temperature of ``pipeline``'s llm_tagger on ``dev`` (a .spacy file) and save it.

    Returns the component's name and its :class:`CalibrationReport` as a dict
    (``component``, ``temperature``, ``predictions``, ``ece_before``, ``ece_after``).
    """
    import spacy

    pipeline = Path(pipeline)
    if not (pipeline / "config.cfg").exists():
        raise ConfigError(f"{pipeline} is not a pipeline folder (no config.cfg).")
    if not Path(dev).exists():
        raise DataError(f"Dev data not found: {dev}")
    nlp = spacy.load(pipeline)
    name, pipe = find_tagger(nlp, component)
    report: CalibrationReport = pipe.calibrate(read_examples(dev, nlp, limit))
    save_component(pipe, pipeline)
    return {"component": name, **report.to_dict()}
