"""Packing the windows of many docs into length-sorted, padded torch batches."""
from dataclasses import dataclass
from typing import List, Sequence, Tuple

import numpy as np

from .alignment import DocWindows


PASS_COST = 32  # padded subwords one extra forward pass is worth (CPU, measured roughly)


@dataclass
class WindowBatch:
    """One padded forward pass: windows as rows, and the words it scores."""

    input_ids: np.ndarray  # (rows, seq) int64, right-padded
    attention_mask: np.ndarray  # (rows, seq) int64, 1 = real subword
    piece_index: np.ndarray  # flat (row * seq + position) of each pooled subword
    piece_word: np.ndarray  # which scored word each pooled subword belongs to
    n_words: int


@dataclass
class BatchPlan:
    """All forward passes for a list of docs and how to put their rows back."""

    batches: List[WindowBatch]
    order: np.ndarray  # global token position of each output row, batch after batch
    doc_lengths: List[int]


def plan_batches(
    encoded: Sequence[DocWindows],
    max_batch_tokens: int,
    pad_id: int,
    pooling: str,
) -> BatchPlan:
    """Group all windows by length so padding stays small, preserving doc order."""
    doc_lengths = [len(e.token_window) for e in encoded]
    windows = [w for e in encoded for w in e.windows]
    if not windows:
        return BatchPlan([], np.zeros((0,), dtype=np.int64), doc_lengths)
    window_offsets = np.cumsum([0] + [len(e.windows) for e in encoded])[:-1]
    token_global_window = np.concatenate(
        [e.token_window + off for e, off in zip(encoded, window_offsets)]
    )
    token_start = np.concatenate([e.token_start for e in encoded])
    token_end = np.concatenate([e.token_end for e in encoded])
    lengths = np.asarray([len(w) for w in windows], dtype=np.int64)
    by_length = np.argsort(-lengths, kind="stable")
    groups = group_by_length(lengths[by_length], max_batch_tokens)
    groups = [[int(by_length[i]) for i in group] for group in groups]
    window_group = np.empty(len(windows), dtype=np.int64)
    window_row = np.empty(len(windows), dtype=np.int64)
    for g, members in enumerate(groups):
        window_group[members] = g
        window_row[members] = np.arange(len(members))
    token_group = window_group[token_global_window]
    batches: List[WindowBatch] = []
    orders: List[np.ndarray] = []
    for g, members in enumerate(groups):
        input_ids, attention_mask = pad_windows([windows[index] for index in members], pad_id)
        seq = input_ids.shape[1]
        tokens = np.flatnonzero(token_group == g)
        rows = window_row[token_global_window[tokens]]
        starts = rows * seq + token_start[tokens]
        if pooling == "first":
            piece_index = starts
            piece_word = np.arange(len(tokens), dtype=np.int64)
        else:
            counts = token_end[tokens] - token_start[tokens]
            piece_word = np.repeat(np.arange(len(tokens), dtype=np.int64), counts)
            run_start = np.repeat(np.cumsum(counts) - counts, counts)
            piece_index = np.repeat(starts, counts) + (np.arange(counts.sum()) - run_start)
        batches.append(WindowBatch(input_ids, attention_mask, piece_index, piece_word, len(tokens)))
        orders.append(tokens)
    return BatchPlan(batches, np.concatenate(orders), doc_lengths)


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


def split_batch(batch: WindowBatch) -> List[Tuple[WindowBatch, np.ndarray]]:
    """Split a batch's rows in two halves; also return which words each half scores."""
    rows, seq = batch.input_ids.shape
    half = rows // 2
    piece_row = batch.piece_index // seq
    word_row = np.zeros(batch.n_words, dtype=np.int64)
    word_row[batch.piece_word] = piece_row
    parts = []
    for lo, hi in ((0, half), (half, rows)):
        words = np.flatnonzero((word_row >= lo) & (word_row < hi))
        new_word = np.full(batch.n_words, -1, dtype=np.int64)
        new_word[words] = np.arange(len(words))
        keep = (piece_row >= lo) & (piece_row < hi)
        width = int(batch.attention_mask[lo:hi].sum(axis=1).max())
        part = WindowBatch(
            input_ids=np.ascontiguousarray(batch.input_ids[lo:hi, :width]),
            attention_mask=np.ascontiguousarray(batch.attention_mask[lo:hi, :width]),
            piece_index=(piece_row[keep] - lo) * width + batch.piece_index[keep] % seq,
            piece_word=new_word[batch.piece_word[keep]],
            n_words=len(words),
        )
        parts.append((part, words))
    return parts
