"""Constrained decoding of BIO tag scores into valid, non-overlapping spans."""

from typing import Iterator, List, Sequence, Tuple

import numpy as np
from spacy.attrs import IS_SPACE
from spacy.tokens import Doc

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


def viterbi_bio_batch(
    log_probs: Sequence[np.ndarray],
    start: np.ndarray,
    allowed: np.ndarray,
    max_cells: int = 1 << 16,
) -> List[np.ndarray]:
    """:func:`viterbi_bio` for many docs at once, vectorised over the docs.

    Docs are sorted by length and decoded in groups of at most ``max_cells``
    padded tokens, so the Python loop runs once per position of the longest
    doc in a group, not once per token of every doc.
    """
    lengths = np.asarray([len(lp) for lp in log_probs], dtype=np.int64)
    paths: List[np.ndarray] = [np.zeros((0,), dtype=np.int64)] * len(log_probs)
    penalty = np.where(allowed, 0.0, -np.inf)
    for docs in length_groups(lengths, max_cells):
        for doc, path in zip(docs.tolist(), _viterbi_sorted([log_probs[d] for d in docs], start, penalty)):
            paths[doc] = path
    return paths


def length_groups(lengths: np.ndarray, max_cells: int) -> Iterator[np.ndarray]:
    """Indices of the non-empty docs, longest first, in groups of at most ``max_cells``
    padded tokens: what the batched dynamic programs run over at once."""
    from ..models.batching import group_by_length

    by_length = np.argsort(-lengths, kind="stable")
    by_length = by_length[lengths[by_length] > 0]
    for members in group_by_length(lengths[by_length], max_cells, pass_cost=256):
        yield by_length[members]


def pad_sorted(seqs: Sequence[np.ndarray]) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Docs sorted longest first as one (n_docs, max_len, n_tags) array, their lengths, and
    how many docs are still running at each position (always a prefix)."""
    lengths = np.asarray([len(s) for s in seqs], dtype=np.int64)
    padded = np.zeros((len(seqs), int(lengths[0]), seqs[0].shape[1]), dtype=np.float64)
    for row, seq in enumerate(seqs):
        padded[row, : len(seq)] = seq
    running = (lengths[None, :] > np.arange(int(lengths[0]))[:, None]).sum(axis=1)
    return padded, lengths, running


def _viterbi_sorted(seqs: Sequence[np.ndarray], start: np.ndarray, penalty: np.ndarray) -> List[np.ndarray]:
    """Viterbi over docs sorted longest first (the docs still running are a prefix)."""
    n_docs, n_tags = len(seqs), len(start)
    padded, lengths, running = pad_sorted(seqs)
    max_len = padded.shape[1]
    score = np.where(start[None, :], padded[:, 0], -np.inf)
    back = np.zeros((max_len, n_docs, n_tags), dtype=np.int64)
    for i in range(1, max_len):
        k = int(running[i])
        candidates = score[:k, :, None] + penalty[None]
        best_prev = candidates.argmax(axis=1)
        back[i, :k] = best_prev
        score[:k] = np.take_along_axis(candidates, best_prev[:, None, :], axis=1)[:, 0] + padded[:k, i]
    current = score.argmax(axis=1)
    out = np.zeros((n_docs, max_len), dtype=np.int64)
    for i in range(max_len - 1, -1, -1):
        k = int(running[i])
        out[:k, i] = current[:k]
        if i > 0:
            current[:k] = back[i, np.arange(k), current[:k]]
    return [out[row, :length] for row, length in enumerate(lengths.tolist())]


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


def whitespace_tokens(doc: Doc) -> np.ndarray:
    """Which tokens of ``doc`` are whitespace (line breaks, runs of spaces), as booleans."""
    return doc.to_array(IS_SPACE).reshape(-1).astype(bool)


def tags_around_spaces(tags: np.ndarray, is_space: np.ndarray) -> np.ndarray:
    """The tags of a doc's every token from ``tags``, those of its non-whitespace tokens.

    Whitespace tokens (line breaks, runs of spaces) are decoded around, as spaCy's ``ner``
    treats them: an entity never starts or ends on one; one inside an entity (a name wrapped
    over a line break) is inside it, any other is O.
    """
    full = np.zeros(len(is_space), dtype=np.int64)
    kept = np.flatnonzero(~is_space)
    full[kept] = tags
    for i in np.flatnonzero(is_space).tolist():
        before = int(full[i - 1]) if i > 0 else 0
        after = np.searchsorted(kept, i)
        following = int(full[kept[after]]) if after < len(kept) else 0
        # inside: the token before is B-X or I-X, and the next non-space token is I-X
        if before > 0 and following > 0 and following % 2 == 0 and (before + 1) // 2 == following // 2:
            full[i] = following
    return full


def log_softmax(scores: np.ndarray) -> np.ndarray:
    shifted = scores - scores.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
