"""Confidences under the constrained BIO model: forward-backward, span and token marginals.

The decoder gives per-token log-probabilities over tags; the BIO constraints (no I-X after O
or another type, none at the start) define a distribution over *valid* tag sequences,
P(y) proportional to the product of the tokens' probabilities, valid y only. Viterbi finds its
best sequence; forward-backward gives its marginals: the probability that a predicted span is
exactly a span (B-X, then I-X up to its end, then no I-X), and each token's tag probability.
All in log space, vectorised over docs like the Viterbi decoding.
"""

from typing import List, NamedTuple, Sequence, Tuple

import numpy as np

from .decoding import length_groups, log_softmax, pad_sorted


class Lattice(NamedTuple):
    """Forward and backward log-scores of one doc and its log-partition."""

    log_alpha: np.ndarray  # (n_tokens, n_tags): valid prefixes ending in the tag, emissions included
    log_beta: np.ndarray  # (n_tokens, n_tags): valid suffixes after the tag, emissions of later tokens
    log_z: float


def logsumexp(values: np.ndarray, axis: int) -> np.ndarray:
    """log(sum(exp)) along ``axis``; -inf where every value is -inf."""
    top = values.max(axis=axis, keepdims=True)
    safe = np.where(np.isfinite(top), top, 0.0)
    with np.errstate(divide="ignore"):
        out = np.log(np.exp(values - safe).sum(axis=axis, keepdims=True)) + safe
    return np.squeeze(out, axis=axis)


def forward_backward_batch(
    log_probs: Sequence[np.ndarray],
    start: np.ndarray,
    allowed: np.ndarray,
    max_cells: int = 1 << 16,
) -> List[Lattice]:
    """The :class:`Lattice` of every doc (in order). log_probs: (n_tokens, n_tags) per doc."""
    n_tags = len(start)
    lengths = np.asarray([len(lp) for lp in log_probs], dtype=np.int64)
    empty = Lattice(np.zeros((0, n_tags)), np.zeros((0, n_tags)), 0.0)
    lattices: List[Lattice] = [empty] * len(log_probs)
    penalty = np.where(allowed, 0.0, -np.inf)
    for docs in length_groups(lengths, max_cells):
        for doc, lattice in zip(
            docs.tolist(), _forward_backward_sorted([log_probs[d] for d in docs], start, penalty)
        ):
            lattices[doc] = lattice
    return lattices


def _forward_backward_sorted(
    seqs: Sequence[np.ndarray], start: np.ndarray, penalty: np.ndarray
) -> List[Lattice]:
    """Forward-backward over docs sorted longest first (the docs still running are a prefix)."""
    n_docs, n_tags = len(seqs), len(start)
    padded, lengths, running = pad_sorted(seqs)
    max_len = padded.shape[1]
    alpha = np.full((n_docs, max_len, n_tags), -np.inf)
    alpha[:, 0] = np.where(start[None, :], padded[:, 0], -np.inf)
    for i in range(1, max_len):
        k = int(running[i])
        alpha[:k, i] = logsumexp(alpha[:k, i - 1, :, None] + penalty[None], axis=1) + padded[:k, i]
    beta = np.zeros((n_docs, max_len, n_tags))
    for i in range(max_len - 2, -1, -1):
        k = int(running[i + 1])  # docs with a token after i
        after = padded[:k, i + 1] + beta[:k, i + 1]  # (k, next tag)
        beta[:k, i] = logsumexp(penalty[None] + after[:, None, :], axis=2)
    lattices = []
    for row, length in enumerate(lengths.tolist()):
        log_z = float(logsumexp(alpha[row, length - 1], axis=0))
        lattices.append(Lattice(alpha[row, :length], beta[row, :length], log_z))
    return lattices


def span_probabilities(
    log_probs: np.ndarray, lattice: Lattice, spans: Sequence[Tuple[int, int, int]]
) -> np.ndarray:
    """P(tokens start..end-1 are exactly one span of the label) for each (start, end, label)."""
    n_tokens, n_tags = log_probs.shape
    not_inside = np.array([0] + list(range(1, n_tags, 2)))  # O and every B-X
    out = np.zeros(len(spans), dtype=np.float64)
    for i, (begin, end, label) in enumerate(spans):
        b_tag, i_tag = 1 + 2 * label, 2 + 2 * label
        score = lattice.log_alpha[begin, b_tag] + log_probs[begin + 1 : end, i_tag].sum()
        if end < n_tokens:  # the next token ends the span: O or a B tag
            score += logsumexp(log_probs[end, not_inside] + lattice.log_beta[end, not_inside], axis=0)
        out[i] = np.exp(score - lattice.log_z)
    return np.clip(out, 0.0, 1.0)


def token_marginals(lattice: Lattice) -> np.ndarray:
    """(n_tokens, n_tags): P(token i has tag t) under the constrained model."""
    return np.exp(lattice.log_alpha + lattice.log_beta - lattice.log_z)


def tempered_log_probs(scores: np.ndarray, temperature: float) -> np.ndarray:
    """log softmax(scores / temperature) per token."""
    return log_softmax(scores / temperature)
