"""Packing the windows of many docs into length-grouped, padded forward passes.

:func:`plan_passes` sorts all windows of a batch of docs by length and groups them so that
padding stays small; each :class:`WindowPass` knows which windows it runs and which tokens
it reads, so its output can be put back in doc order. :func:`split_pass` halves a pass (for
out-of-memory retries). Both architectures plan their passes here.
"""

from dataclasses import dataclass
from typing import List, Sequence, Tuple

import numpy as np

from .alignment import DocWindows

PASS_COST = 32  # padded subwords one extra forward pass is worth (CPU, measured roughly)


@dataclass
class WindowPass:
    """One padded forward pass: some windows as rows, and the tokens read from them."""

    windows: np.ndarray  # (rows,) which window of the plan each row is
    input_ids: np.ndarray  # (rows, seq) int64, right-padded
    attention_mask: np.ndarray  # (rows, seq) int64, 1 = real subword
    tokens: np.ndarray  # (n_tokens,) which token of the plan (docs concatenated) each is
    piece_index: np.ndarray  # flat (row * seq + position) of each pooled subword
    piece_token: np.ndarray  # which of ``tokens`` each pooled subword belongs to

    @property
    def n_tokens(self) -> int:
        return len(self.tokens)


@dataclass
class PassPlan:
    """All forward passes for a list of docs."""

    passes: List[WindowPass]
    windows: List[np.ndarray]  # every window's input ids, docs in order
    doc_lengths: List[int]  # tokens per doc

    @property
    def n_tokens(self) -> int:
        return int(sum(self.doc_lengths))


def plan_passes(encoded: Sequence[DocWindows], max_batch_tokens: int, pad_id: int, pooling: str) -> PassPlan:
    """Group all windows by length (at most ``max_batch_tokens`` padded subwords a pass).

    ``pooling`` says which subwords of a token are read: "first" or all of them ("mean").
    """
    doc_lengths = [len(e.token_window) for e in encoded]
    windows = [w for e in encoded for w in e.windows]
    if not windows:
        return PassPlan([], windows, doc_lengths)
    window_offsets = np.cumsum([0] + [len(e.windows) for e in encoded])[:-1]
    token_window = np.concatenate([e.token_window + off for e, off in zip(encoded, window_offsets)])
    token_start = np.concatenate([e.token_start for e in encoded])
    token_end = np.concatenate([e.token_end for e in encoded])
    lengths = np.asarray([len(w) for w in windows], dtype=np.int64)
    by_length = np.argsort(-lengths, kind="stable")
    groups = [by_length[group] for group in group_by_length(lengths[by_length], max_batch_tokens)]
    window_group = np.empty(len(windows), dtype=np.int64)
    window_row = np.empty(len(windows), dtype=np.int64)
    for g, members in enumerate(groups):
        window_group[members] = g
        window_row[members] = np.arange(len(members))
    token_group = window_group[token_window]
    passes = []
    for g, members in enumerate(groups):
        input_ids, attention_mask = pad_windows([windows[index] for index in members], pad_id)
        tokens = np.flatnonzero(token_group == g)
        starts = window_row[token_window[tokens]] * input_ids.shape[1] + token_start[tokens]
        counts = token_end[tokens] - token_start[tokens]
        piece_index, piece_token = _pieces(starts, counts, pooling)
        passes.append(WindowPass(members, input_ids, attention_mask, tokens, piece_index, piece_token))
    return PassPlan(passes, windows, doc_lengths)


def _pieces(starts: np.ndarray, counts: np.ndarray, pooling: str) -> Tuple[np.ndarray, np.ndarray]:
    """Flat positions of the subwords each token reads, and which token each belongs to."""
    if pooling == "first":
        return starts, np.arange(len(starts), dtype=np.int64)
    piece_token = np.repeat(np.arange(len(starts), dtype=np.int64), counts)
    run_start = np.repeat(np.cumsum(counts) - counts, counts)
    return np.repeat(starts, counts) + (np.arange(counts.sum()) - run_start), piece_token


def pad_windows(windows: Sequence[np.ndarray], pad_id: int) -> Tuple[np.ndarray, np.ndarray]:
    """Right-pad windows into ``input_ids`` and ``attention_mask`` (1 = real) arrays."""
    seq = max((len(w) for w in windows), default=0)
    input_ids = np.full((len(windows), seq), pad_id, dtype=np.int64)
    attention_mask = np.zeros((len(windows), seq), dtype=np.int64)
    for row, window in enumerate(windows):
        input_ids[row, : len(window)] = window
        attention_mask[row, : len(window)] = 1
    return input_ids, attention_mask


def group_by_length(
    sorted_lengths: np.ndarray, max_batch_tokens: int, pass_cost: int = PASS_COST
) -> List[List[int]]:
    """Split lengths sorted in descending order into contiguous groups.

    Minimises padded subwords plus a fixed cost per forward pass (dynamic
    programming over the sorted order), with at most ``max_batch_tokens``
    padded subwords per group.
    """
    n = len(sorted_lengths)
    lengths = np.asarray(sorted_lengths, dtype=np.int64)
    best = np.full(n + 1, np.inf)
    best[0] = 0.0
    cut = np.zeros(n + 1, dtype=np.int64)
    starts = np.arange(n)
    for end in range(1, n + 1):
        first = starts[:end]
        padded = (end - first) * lengths[:end]  # the first member is the widest
        cost = best[:end] + padded + pass_cost
        cost[padded > max(max_batch_tokens, lengths[end - 1])] = np.inf
        i = int(np.argmin(cost))
        best[end] = cost[i]
        cut[end] = i
    groups: List[List[int]] = []
    end = n
    while end > 0:
        groups.append(list(range(int(cut[end]), end)))
        end = int(cut[end])
    return groups[::-1]


def split_pass(batch: WindowPass) -> List[WindowPass]:
    """The pass's rows in two halves, each cut to its own longest row."""
    rows, seq = batch.input_ids.shape
    half = rows // 2
    piece_row = batch.piece_index // seq
    token_row = np.zeros(batch.n_tokens, dtype=np.int64)
    token_row[batch.piece_token] = piece_row
    parts = []
    for lo, hi in ((0, half), (half, rows)):
        kept_tokens = np.flatnonzero((token_row >= lo) & (token_row < hi))
        renumbered = np.full(batch.n_tokens, -1, dtype=np.int64)
        renumbered[kept_tokens] = np.arange(len(kept_tokens))
        kept_pieces = (piece_row >= lo) & (piece_row < hi)
        width = int(batch.attention_mask[lo:hi].sum(axis=1).max())
        parts.append(
            WindowPass(
                windows=batch.windows[lo:hi],
                input_ids=np.ascontiguousarray(batch.input_ids[lo:hi, :width]),
                attention_mask=np.ascontiguousarray(batch.attention_mask[lo:hi, :width]),
                tokens=batch.tokens[kept_tokens],
                piece_index=(piece_row[kept_pieces] - lo) * width + batch.piece_index[kept_pieces] % seq,
                piece_token=renumbered[batch.piece_token[kept_pieces]],
            )
        )
    return parts
