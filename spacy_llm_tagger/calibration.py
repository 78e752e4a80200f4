"""Calibrating the llm_tagger's confidences: a temperature fitted on held-out data.

The head's scores are divided by a temperature T before the softmax (T > 1 makes the model less
sure). T changes the probabilities only, never the predicted tags. :func:`fit_temperature` picks
the T that minimises the negative log-likelihood of "this predicted span (token tag) is right" on
dev data; :func:`calibrate` stores it in the pipeline folder (``cfg`` of the component).
"""

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, List, Optional, Sequence, Set, Tuple, Union

import numpy as np
import srsly
from spacy.language import Language
from spacy.training import Example

from .corpus import tokens_only
from .errors import ConfigError, DataError
from .pipeline.decoding import bio_to_spans
from .pipeline.llm_tagger import LLMTagger
from .pipeline.targets import SpanTarget

TEMPERATURES = np.exp(np.linspace(np.log(0.05), np.log(20.0), 121))


@dataclass
class HeldOut:
    """The head's scores on held-out docs and what is right there."""

    scores: List[np.ndarray]  # per doc: (n_tokens, n_tags)
    gold: List[Set[Tuple[int, int, int]]]  # per doc: (start, end, label) spans or (i, i + 1, tag)


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


def collect(pipe: LLMTagger, examples: Iterable[Example], batch_size: int = 32) -> HeldOut:
    """Run the tagger's model once over the examples' texts; keep its scores and the gold."""
    from tqdm import tqdm

    examples = list(examples)
    if not examples:
        raise DataError("No held-out examples to calibrate on.")
    span_target = isinstance(pipe.target, SpanTarget)
    label_index = {label: i for i, label in enumerate(pipe.labels)}
    held_out = HeldOut([], [])
    for at in tqdm(range(0, len(examples), batch_size), desc="scoring", unit="batch", leave=False):
        batch = examples[at : at + batch_size]
        scores = pipe.model.predict([eg.predicted for eg in batch])
        held_out.scores.extend(pipe.model.ops.to_numpy(s) for s in scores)
        for eg in batch:
            if span_target:
                aligned = eg.get_aligned_spans_y2x(
                    list(pipe.target.spans_of(eg.reference)), allow_overlap=True
                )
                held_out.gold.append({(s.start, s.end, label_index.get(s.label_, -1)) for s in aligned})
            else:
                values = eg.get_aligned(pipe.target.attr.upper(), as_string=True)
                held_out.gold.append({(i, i + 1, label_index.get(v, -1)) for i, v in enumerate(values) if v})
    return held_out


def outcomes(pipe: LLMTagger, held_out: HeldOut, temperature: float) -> Tuple[np.ndarray, np.ndarray]:
    """Each prediction's probability at ``temperature`` and whether it is right (1.0) or not."""
    predictions = pipe.decode_scores(held_out.scores, temperature)
    probs: List[float] = []
    right: List[float] = []
    span_target = isinstance(pipe.target, SpanTarget)
    for prediction, gold in zip(predictions, held_out.gold):
        if span_target:
            made = bio_to_spans(prediction.tags)
        else:
            made = [(i, i + 1, int(tag)) for i, tag in enumerate(prediction.tags.tolist())]
        probs.extend(float(p) for p in prediction.confidences)
        right.extend(float(tuple(span) in gold) for span in made)
    return np.asarray(probs), np.asarray(right)


def reliability_bins(
    probs: np.ndarray, right: np.ndarray, bins: int = 10
) -> List[Tuple[float, float, float]]:
    """For each non-empty equal-width confidence bin: (share of predictions, mean
    confidence, share right)."""
    which = np.minimum((probs * bins).astype(int), bins - 1)
    return [
        (float((which == b).mean()), float(probs[which == b].mean()), float(right[which == b].mean()))
        for b in range(bins)
        if (which == b).any()
    ]


def expected_calibration_error(probs: np.ndarray, right: np.ndarray, bins: int = 10) -> float:
    """Sum over equal-width confidence bins of (share of predictions) x |accuracy - confidence|."""
    return float(
        sum(
            share * abs(accuracy - confidence)
            for share, confidence, accuracy in reliability_bins(probs, right, bins)
        )
    )


def negative_log_likelihood(probs: np.ndarray, right: np.ndarray) -> float:
    p = np.clip(probs, 1e-9, 1 - 1e-9)
    return float(-(right * np.log(p) + (1 - right) * np.log(1 - p)).mean())


def fit_temperature(
    pipe: LLMTagger, held_out: HeldOut, temperatures: Sequence[float] = TEMPERATURES
) -> float:
    """The temperature (from a log-spaced grid, 0.05 to 20) with the lowest NLL of the outcomes."""
    losses = [negative_log_likelihood(*outcomes(pipe, held_out, float(t))) for t in temperatures]
    return round(float(temperatures[int(np.argmin(losses))]), 4)  # as stored in the cfg JSON


def calibrate(
    pipeline: Union[str, Path],
    dev: Union[str, Path],
    component: Optional[str] = None,
    limit: int = 0,
) -> dict:
    """Fit the temperature of ``pipeline``'s llm_tagger on ``dev`` (a .spacy file) and save it."""
    import spacy
    from spacy.tokens import DocBin

    pipeline, dev = Path(pipeline), Path(dev)
    if not (pipeline / "config.cfg").exists():
        raise ConfigError(f"{pipeline} is not a pipeline folder (no config.cfg).")
    if not dev.exists():
        raise DataError(f"Dev data not found: {dev}")
    nlp = spacy.load(pipeline)
    name, pipe = find_tagger(nlp, component)
    docs = list(DocBin().from_disk(dev).get_docs(nlp.vocab))
    if limit:
        docs = docs[:limit]
    # the gold tokens, so every gold span lines up with predicted tokens
    examples = [Example(tokens_only(doc, nlp.vocab), doc) for doc in docs]
    held_out = collect(pipe, examples)
    before = outcomes(pipe, held_out, 1.0)
    temperature = fit_temperature(pipe, held_out)
    after = outcomes(pipe, held_out, temperature)
    save_temperature(pipeline, name, temperature)
    return {
        "component": name,
        "temperature": temperature,
        "predictions": int(len(before[0])),
        "ece_before": expected_calibration_error(*before),
        "ece_after": expected_calibration_error(*after),
    }


def save_temperature(pipeline: Path, component: str, temperature: float) -> None:
    """Store ``temperature`` in the saved component's cfg (read back at ``spacy.load``)."""
    cfg_path = Path(pipeline) / component / "cfg"
    srsly.write_json(cfg_path, {**srsly.read_json(cfg_path), "temperature": temperature})
