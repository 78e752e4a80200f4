"""Temperature scaling of the llm_tagger's confidences, fitted on held-out data.

The head's scores are divided by a temperature T before the softmax (T > 1 makes the model less
sure). T changes the probabilities only, never the predicted tags. :func:`fit_temperature` picks
the T that minimises the negative log-likelihood of "this predicted span (token tag) is right"
on held-out data; :meth:`LLMTagger.calibrate <.llm_tagger.LLMTagger.calibrate>` fits it and
keeps it in the component's cfg. What a prediction and a right one are is the target's
(``Target.predicted_items`` / ``Target.gold_items``).
"""

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Iterable, List, Sequence, Set, Tuple, Union

import numpy as np
from spacy.training import Example

from ..errors import DataError
from .decoding import whitespace_tokens

if TYPE_CHECKING:
    from .llm_tagger import LLMTagger

TEMPERATURES = np.exp(np.linspace(np.log(0.05), np.log(20.0), 121))
Temperatures = Union[Sequence[float], np.ndarray]


@dataclass
class HeldOut:
    """The head's scores on held-out docs and what is right there."""

    scores: List[np.ndarray]  # per doc: (n_tokens, n_tags)
    gold: List[Set[Tuple[int, int, int]]]  # per doc: (start, end, label) spans or (i, i + 1, tag)
    spaces: List[np.ndarray]  # per doc: which tokens are whitespace (decoding.whitespace_tokens)


@dataclass(frozen=True)
class CalibrationReport:
    """What :meth:`LLMTagger.calibrate` fitted, and the expected calibration error (10 bins)
    of the held-out predictions' confidences before and after."""

    temperature: float
    predictions: int
    ece_before: float
    ece_after: float

    def to_dict(self) -> dict:
        return asdict(self)


def collect(pipe: "LLMTagger", examples: Iterable[Example], batch_size: int = 32) -> HeldOut:
    """Run the tagger's model once over the examples' texts; keep its scores and the gold."""
    from tqdm import tqdm

    examples = list(examples)
    if not examples:
        raise DataError("No held-out examples to calibrate on: give at least one Example.")
    label_index = {label: i for i, label in enumerate(pipe.labels)}
    held_out = HeldOut([], [], [])
    for at in tqdm(range(0, len(examples), batch_size), desc="scoring", unit="batch", leave=False):
        batch = examples[at : at + batch_size]
        scores = pipe.model.predict([eg.predicted for eg in batch])
        held_out.scores.extend(pipe.model.ops.to_numpy(s) for s in scores)
        held_out.gold.extend(pipe.target.gold_items(eg, label_index) for eg in batch)
        held_out.spaces.extend(whitespace_tokens(eg.predicted) for eg in batch)
    return held_out


def outcomes(pipe: "LLMTagger", held_out: HeldOut, temperature: float) -> Tuple[np.ndarray, np.ndarray]:
    """Each prediction's probability at ``temperature`` and whether it is right (1.0) or not."""
    target, labels = pipe.target, pipe.labels
    tags = target.decode_batch(held_out.scores, labels, held_out.spaces)
    confidences = target.confidences(held_out.scores, tags, labels, temperature, held_out.spaces)
    probs: List[float] = []
    right: List[float] = []
    for doc_tags, doc_confidences, gold in zip(tags, confidences, held_out.gold):
        probs.extend(float(p) for p in doc_confidences)
        right.extend(float(item in gold) for item in target.predicted_items(doc_tags))
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


def fit_temperature(pipe: "LLMTagger", held_out: HeldOut, temperatures: Temperatures = TEMPERATURES) -> float:
    """The temperature (from a log-spaced grid, 0.05 to 20) with the lowest NLL of the outcomes."""
    losses = [negative_log_likelihood(*outcomes(pipe, held_out, float(t))) for t in temperatures]
    return round(float(temperatures[int(np.argmin(losses))]), 4)  # as stored in the cfg JSON
