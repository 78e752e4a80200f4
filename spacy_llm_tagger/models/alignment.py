"""Aligning spaCy tokens to decoder subwords, and cutting long docs into windows.

The running text (``doc.text``) is tokenized once with character offsets, so
every word keeps the leading-space form the model saw in pre-training. Tokens
are matched to the subwords that overlap them (leading whitespace of a subword
does not count). A token that overlaps no subword borrows the nearest one.
Docs longer than the window are split into overlapping windows; each token is
read from the window where it sits furthest from an edge, so nothing is
truncated or dropped.
"""
from dataclasses import dataclass
from typing import Any, List, Sequence

import numpy as np
from spacy.attrs import IDX, LENGTH
from spacy.tokens import Doc

from ..errors import ConfigError

_WHITESPACE = np.asarray(
    [c for c in range(0x3100) if chr(c).isspace()], dtype=np.uint32
)


@dataclass
class DocWindows:
    """The subword windows of one doc and where each of its tokens is read."""

    windows: List[np.ndarray]  # input ids of each window, special tokens included
    token_window: np.ndarray  # (n_tokens,) index of the window each token is read from
    token_start: np.ndarray  # (n_tokens,) first subword of the token in that window
    token_end: np.ndarray  # (n_tokens,) one past its last subword (> token_start)
    window_tokens: np.ndarray  # (n_windows, 2) token range [begin, end) each window covers


class SubwordAligner:
    """Tokenizes docs and maps their tokens to subword positions in windows."""

    def __init__(
        self,
        tokenizer: Any,
        prefix_ids: Sequence[int],
        suffix_ids: Sequence[int],
        max_length: int,
        window_overlap: int,
    ) -> None:
        self.tokenizer = tokenizer
        self.prefix = np.asarray(prefix_ids, dtype=np.int64)
        self.suffix = np.asarray(suffix_ids, dtype=np.int64)
        self.content_length = max_length - len(self.prefix) - len(self.suffix)
        if self.content_length < 2:
            raise ConfigError(
                f"max_length={max_length} leaves no room for text after the "
                f"{len(self.prefix) + len(self.suffix)} special tokens."
            )
        self.overlap = max(0, min(window_overlap, self.content_length // 2))
        self.filler_id = int(
            tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        )

    def __call__(self, docs: Sequence[Doc]) -> List[DocWindows]:
        texts = [doc.text for doc in docs]
        if not texts:
            return []
        encoded = self.tokenizer(
            texts,
            add_special_tokens=False,
            return_offsets_mapping=True,
            return_attention_mask=False,
        )
        return [
            self._align(doc, np.asarray(ids, dtype=np.int64), offsets)
            for doc, ids, offsets in zip(docs, encoded["input_ids"], encoded["offset_mapping"])
        ]

    def _align(self, doc: Doc, ids: np.ndarray, offsets: Any) -> DocWindows:
        n_tokens = len(doc)
        if n_tokens == 0:
            empty = np.zeros((0,), dtype=np.int64)
            return DocWindows([], empty, empty, empty, np.zeros((0, 2), dtype=np.int64))
        if len(ids) == 0:
            # Text with no subwords (e.g. only whitespace the tokenizer drops):
            # one filler subword carries every token.
            ids = np.asarray([self.filler_id], dtype=np.int64)
            offsets = np.asarray([[0, len(doc.text)]], dtype=np.int64)
        offsets = np.asarray(offsets, dtype=np.int64).reshape(-1, 2)
        sub_start, sub_end = _effective_offsets(doc.text, offsets)
        spans = doc.to_array([IDX, LENGTH]).astype(np.int64).reshape(-1, 2)
        word_start = spans[:, 0]
        word_end = spans[:, 0] + spans[:, 1]
        n_sub = len(ids)
        first = np.searchsorted(sub_end, word_start, side="right")
        last = np.searchsorted(sub_start, word_end, side="left") - 1
        # Zero-length tokens or tokens between subwords: borrow the nearest subword.
        missing = (first > last) | (first >= n_sub)
        nearest = np.clip(np.minimum(first, n_sub - 1), 0, n_sub - 1)
        first = np.where(missing, nearest, first)
        last = np.where(missing, nearest, np.clip(last, 0, n_sub - 1))
        return self._window(ids, first, last + 1)

    def _window(self, ids: np.ndarray, first: np.ndarray, end: np.ndarray) -> DocWindows:
        n_sub = len(ids)
        size, overlap = self.content_length, self.overlap
        step = size - overlap
        if n_sub <= size:
            starts = np.zeros((1,), dtype=np.int64)
        else:
            starts = np.arange(0, n_sub - overlap, step, dtype=np.int64)
            starts = np.minimum(starts, max(n_sub - size, 0))
            starts = np.unique(starts)
        # Ownership boundaries: each token is read from the window whose
        # centre region contains its first subword.
        bounds = starts + (overlap - overlap // 2)
        bounds[0] = 0
        token_window = np.searchsorted(bounds, first, side="right") - 1
        window_start = starts[token_window]
        local_start = first - window_start
        local_end = np.minimum(end - window_start, size)
        local_end = np.maximum(local_end, local_start + 1)
        offset = len(self.prefix)
        windows = [
            np.concatenate([self.prefix, ids[s:s + size], self.suffix]) for s in starts
        ]
        return DocWindows(
            windows,
            token_window,
            local_start + offset,
            local_end + offset,
            _window_tokens(first, starts, size),
        )


def _window_tokens(first: np.ndarray, starts: np.ndarray, size: int) -> np.ndarray:
    """The token range ``[begin, end)`` whose first subwords fall in each window.

    A window that holds only the inside of one very long token gets that token.
    """
    begin = np.searchsorted(first, starts, side="left")
    end = np.searchsorted(first, starts + size, side="left")
    inside = np.maximum(np.searchsorted(first, starts, side="right") - 1, 0)
    empty = end <= begin
    begin = np.where(empty, inside, begin)
    end = np.where(empty, inside + 1, end)
    return np.stack([begin, end], axis=1).astype(np.int64)


def _effective_offsets(text: str, offsets: np.ndarray):
    """Subword offsets without their leading whitespace, made monotonic."""
    starts = offsets[:, 0].copy()
    ends = offsets[:, 1].copy()
    codepoints = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
    non_space = np.flatnonzero(~np.isin(codepoints, _WHITESPACE)).astype(np.int64)
    if len(non_space):
        pos = np.searchsorted(non_space, starts, side="left")
        next_char = np.where(
            pos < len(non_space), non_space[np.minimum(pos, len(non_space) - 1)], len(text)
        )
        has_text = next_char < ends
        starts = np.where(has_text, next_char, starts)
    starts = np.maximum.accumulate(starts)
    ends = np.maximum.accumulate(np.maximum(ends, starts))
    return starts, ends
