"""Constrained decoding of BIO tag scores into valid, non-overlapping spans."""
from typing import List, Sequence, Tuple

import numpy as np

OUTSIDE = "O"


def bio_tag_names(labels: Sequence[str]) -> List[str]:
    """The classes of a BIO tagger: O, then B-X and I-X for every label."""
    names = [OUTSIDE]
    for label in labels:
        names.extend((f"B-{label}", f"I-{label}"))
    return names


def bio_constraints(n_labels: int) -> Tuple[np.ndarray, np.ndarray]:
    """Allowed first tags and allowed transitions (prev, next) for BIO tags.

    I-X may only follow B-X or I-X: never start a doc, follow O, or follow
    another type.
    """
    n_tags = 1 + 2 * n_labels
    start = np.ones(n_tags, dtype=bool)
    allowed = np.ones((n_tags, n_tags), dtype=bool)
    for label in range(n_labels):
        inside = 2 + 2 * label
        begin = 1 + 2 * label
        start[inside] = False
        allowed[:, inside] = False
        allowed[begin, inside] = True
        allowed[inside, inside] = True
    return start, allowed


def viterbi_bio(log_probs: np.ndarray, start: np.ndarray, allowed: np.ndarray) -> np.ndarray:
    """Best tag sequence under the BIO constraints. log_probs: (n_tokens, n_tags)."""
    n_tokens, n_tags = log_probs.shape
    if n_tokens == 0:
        return np.zeros((0,), dtype=np.int64)
    penalty = np.where(allowed, 0.0, -np.inf)
    score = np.where(start, log_probs[0], -np.inf)
    back = np.zeros((n_tokens, n_tags), dtype=np.int64)
    for i in range(1, n_tokens):
        candidates = score[:, None] + penalty
        back[i] = candidates.argmax(axis=0)
        score = candidates[back[i], np.arange(n_tags)] + log_probs[i]
    path = np.empty(n_tokens, dtype=np.int64)
    path[-1] = int(score.argmax())
    for i in range(n_tokens - 1, 0, -1):
        path[i - 1] = back[i, path[i]]
    return path


def bio_to_spans(tags: np.ndarray) -> List[Tuple[int, int, int]]:
    """(start, end, label index) spans from a valid BIO tag index sequence."""
    spans: List[Tuple[int, int, int]] = []
    begins = np.flatnonzero((tags > 0) & (tags % 2 == 1))
    for begin in begins.tolist():
        label = (int(tags[begin]) - 1) // 2
        end = begin + 1
        inside = 2 + 2 * label
        while end < len(tags) and tags[end] == inside:
            end += 1
        spans.append((begin, end, label))
    return spans


def log_softmax(scores: np.ndarray) -> np.ndarray:
    shifted = scores - scores.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
