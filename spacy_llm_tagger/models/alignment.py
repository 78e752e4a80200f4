"""Aligning spaCy tokens to decoder subwords, and cutting long docs into windows.

The running text (``doc.text``) is tokenized once with character offsets, so
every word keeps the leading-space form the model saw in pre-training. Tokens
are matched to the subwords that overlap them (leading whitespace of a subword
does not count). A token that overlaps no subword borrows the nearest one.
Docs longer than the window are split into overlapping windows; each token is
read from the window where it sits furthest from an edge, so nothing is
truncated or dropped.

Given a ``segment_length``, a longer doc is first cut at sentence boundaries
(``doc.sents`` when the doc has them, else after sentence-final punctuation or at
line breaks) into segments of whole sentences of at most that many subwords and
``segment_sentences`` sentences, each tokenized on its own as if it were a doc of its
own. A doc that is one long sentence is read whole (in overlapping windows only beyond
``max_length``); inside a doc of several sentences, a "sentence" longer than
``sentence_length`` (the longest window the model trained on) is read in overlapping
windows of that length: there it is most often a table, list or headline run whose
boundaries have no punctuation.
"""

from dataclasses import dataclass
from typing import Any, List, Optional, Sequence, Tuple

import numpy as np
from spacy.attrs import IDX, IS_SPACE, LENGTH, ORTH, SENT_START
from spacy.strings import get_string_id
from spacy.tokens import Doc

from ..errors import ConfigError

_WHITESPACE = np.asarray([c for c in range(0x3100) if chr(c).isspace()], dtype=np.uint32)
SENTENCE_FINAL = (".", "!", "?", "...", "\u2026", "\u3002", "\uff01", "\uff1f", "\u061f", "\u0964")
_SENTENCE_FINAL_IDS = np.asarray([get_string_id(text) for text in SENTENCE_FINAL], dtype=np.uint64)


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
        self.filler_id = int(tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0)

    def __call__(
        self,
        docs: Sequence[Doc],
        segment_length: Optional[int] = None,
        sentence_length: Optional[int] = None,
        segment_sentences: Optional[int] = None,
        final_space: Optional[bool] = None,
    ) -> List[DocWindows]:
        """The windows of each doc.

        With ``segment_length`` (subwords, special tokens included), docs longer than that
        are cut at sentence boundaries into windows of whole sentences up to that length and
        ``segment_sentences`` sentences; a longer sentence of a doc of several gets windows
        of ``sentence_length`` (default: ``max_length``), a doc of one sentence one window up
        to ``max_length``. With ``final_space`` every text read (a doc, a window of its
        sentences) ends in a space, or without, as the model's training texts did.
        """
        texts = [doc.text if final_space is None else with_final_space(doc, final_space) for doc in docs]
        if not texts:
            return []
        encoded = self.tokenizer(
            texts,
            add_special_tokens=False,
            return_offsets_mapping=True,
            return_attention_mask=False,
        )
        return [
            self._align(
                doc,
                text,
                np.asarray(ids, dtype=np.int64),
                offsets,
                segment_length,
                sentence_length,
                segment_sentences,
                final_space,
            )
            for doc, text, ids, offsets in zip(docs, texts, encoded["input_ids"], encoded["offset_mapping"])
        ]

    def _align(
        self,
        doc: Doc,
        text: str,
        ids: np.ndarray,
        offsets: Any,
        segment_length: Optional[int],
        sentence_length: Optional[int] = None,
        segment_sentences: Optional[int] = None,
        final_space: Optional[bool] = None,
    ) -> DocWindows:
        if len(doc) == 0:
            empty = np.zeros((0,), dtype=np.int64)
            return DocWindows([], empty, empty, empty, np.zeros((0, 2), dtype=np.int64))
        spans = doc.to_array([IDX, LENGTH]).astype(np.int64).reshape(-1, 2)
        ids, first, end = self._token_subwords(text, spans[:, 0], spans[:, 0] + spans[:, 1], ids, offsets)
        frame = len(self.prefix) + len(self.suffix)
        if segment_length is None or len(ids) <= segment_length - frame:
            return self._window(ids, first, end, self.content_length)
        long_size = self.content_length if sentence_length is None else max(2, sentence_length - frame)
        return self._segmented(
            doc,
            text,
            spans,
            first,
            end,
            len(ids),
            max(2, segment_length - frame),
            min(long_size, self.content_length),
            segment_sentences,
            bool(doc[-1].whitespace_) if final_space is None else final_space,
        )

    def _token_subwords(
        self,
        text: str,
        word_start: np.ndarray,
        word_end: np.ndarray,
        ids: np.ndarray,
        offsets: Any,
        non_space: Optional[np.ndarray] = None,
    ) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The subword ids of ``text`` and each token's subword range ``[first, end)``.

        ``non_space``: the positions of its non-whitespace characters, if known.
        """
        if len(ids) == 0:
            # Text with no subwords (e.g. only whitespace the tokenizer drops):
            # one filler subword carries every token.
            ids = np.asarray([self.filler_id], dtype=np.int64)
            offsets = np.asarray([[0, len(text)]], dtype=np.int64)
        offsets = np.asarray(offsets, dtype=np.int64).reshape(-1, 2)
        sub_start, sub_end = _effective_offsets(text, offsets, non_space)
        n_sub = len(ids)
        first = np.searchsorted(sub_end, word_start, side="right")
        last = np.searchsorted(sub_start, word_end, side="left") - 1
        # Zero-length tokens or tokens between subwords: borrow the nearest subword.
        missing = (first > last) | (first >= n_sub)
        nearest = np.clip(np.minimum(first, n_sub - 1), 0, n_sub - 1)
        first = np.where(missing, nearest, first)
        last = np.where(missing, nearest, np.clip(last, 0, n_sub - 1))
        return ids, first, last + 1

    def _segmented(
        self,
        doc: Doc,
        doc_text: str,
        spans: np.ndarray,
        first: np.ndarray,
        end: np.ndarray,
        n_sub: int,
        size: int,
        long_size: int,
        max_sentences: Optional[int],
        keep_space: bool,
    ) -> DocWindows:
        """Windows of whole sentences packed up to ``size`` subwords and ``max_sentences``
        sentences, a longer sentence in windows of ``long_size`` (see module docstring).

        Each segment is tokenized on its own, as a doc of those sentences alone would be:
        from its first to its last token that is not whitespace (a line break that ends a
        dateline or a table row is where the cut is, not part of the text the model reads),
        followed by a space when ``keep_space`` (the model's training texts ended in one:
        docs built from word lists do, and a model trained on them reads a missing final
        space as a different text).
        """
        starts = sentence_starts(doc)
        ranges = pack_sentences(first, end, starts, n_sub, size, max_sentences)
        if len(starts) == 1:  # one sentence: read whole
            long_size = self.content_length
        is_space = doc.to_array(IS_SPACE).reshape(-1).astype(bool)
        char_start, char_end, tails = [], [], []
        for begin, stop in ranges:
            head, last = begin, stop - 1
            while head < last and is_space[head]:
                head += 1
            while last > head and is_space[last]:
                last -= 1
            char_start.append(int(spans[head, 0]))
            char_end.append(int(spans[last, 0] + spans[last, 1]))
            tails.append(" " if keep_space else "")
        texts = [doc_text[a:b] + tail for a, b, tail in zip(char_start, char_end, tails)]
        encoded = self.tokenizer(
            texts, add_special_tokens=False, return_offsets_mapping=True, return_attention_mask=False
        )
        non_space = non_space_positions(doc_text)
        parts = []
        for (begin, stop), start, stop_char, text, ids, offsets in zip(
            ranges, char_start, char_end, texts, encoded["input_ids"], encoded["offset_mapping"]
        ):
            lo, hi = np.searchsorted(non_space, [start, stop_char])
            seg_ids, seg_first, seg_end = self._token_subwords(
                text,
                spans[begin:stop, 0] - start,
                spans[begin:stop, 0] + spans[begin:stop, 1] - start,
                np.asarray(ids, dtype=np.int64),
                offsets,
                non_space[lo:hi] - start,
            )
            # A segment the packing found to fit stays one window even if its own
            # tokenization came out a subword or two longer.
            fits = (first[stop] if stop < len(first) else n_sub) - first[begin] <= size
            window = min(max(size, len(seg_ids)), self.content_length) if fits else long_size
            parts.append((begin, self._window(seg_ids, seg_first, seg_end, window)))
        return concatenate_windows(parts)

    def _window(self, ids: np.ndarray, first: np.ndarray, end: np.ndarray, size: int) -> DocWindows:
        n_sub = len(ids)
        overlap = max(0, min(self.overlap, size // 2))
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
        windows = [np.concatenate([self.prefix, ids[s : s + size], self.suffix]) for s in starts]
        return DocWindows(
            windows,
            token_window,
            local_start + offset,
            local_end + offset,
            _window_tokens(first, starts, size),
        )


def ends_in_whitespace(doc: Doc) -> bool:
    """Whether ``doc.text`` ends in whitespace (its last token's trailing space, or a
    whitespace token)."""
    return len(doc) > 0 and (bool(doc[-1].whitespace_) or doc[-1].is_space)


def with_final_space(doc: Doc, final_space: bool) -> str:
    """``doc.text`` ending in one space (``final_space``) or in its last token; a doc that
    ends in a whitespace token (a line break) keeps it."""
    if len(doc) == 0 or doc[-1].is_space:
        return doc.text
    text = doc.text[: doc[-1].idx + len(doc[-1])]
    return text + " " if final_space else text


def window_sentence_counts(doc: Doc, windows: DocWindows) -> List[int]:
    """How many sentences (``sentence_starts``) begin in each window of ``doc``; the first
    window counts the one it starts in."""
    starts = sentence_starts(doc)
    return [
        int(np.count_nonzero((starts > begin) & (starts < stop))) + 1 for begin, stop in windows.window_tokens
    ]


def sentence_starts(doc: Doc) -> np.ndarray:
    """Token indices where sentences start: ``doc.sents`` if set, else after sentence-final
    punctuation (``SENTENCE_FINAL``) and the whitespace that follows it, and after line breaks."""
    attrs = doc.to_array([ORTH, IS_SPACE, SENT_START]).reshape(-1, 3).astype(np.int64)
    if (attrs[1:, 2] != 0).any():  # the doc has sentence boundaries (as doc.has_annotation)
        return np.concatenate([[0], np.flatnonzero(attrs[1:, 2] == 1) + 1]).astype(np.int64)
    ends = np.isin(attrs[:, 0].astype(np.uint64), _SENTENCE_FINAL_IDS)
    is_space = attrs[:, 1].astype(bool)
    for i in np.flatnonzero(is_space):
        ends[i] = "\n" in doc[int(i)].text
    # whitespace before the first sentence belongs to it; whitespace after a sentence's end
    # belongs to that sentence: the next one starts after it
    ends[: int(np.argmin(is_space)) if not is_space.all() else len(ends)] = False
    for i in np.flatnonzero(ends[:-1] & is_space[1:]).tolist():
        while i + 1 < len(ends) and is_space[i + 1]:
            ends[i], ends[i + 1] = False, True
            i += 1
    return np.concatenate([[0], np.flatnonzero(ends[:-1]) + 1]).astype(np.int64)


def pack_sentences(
    first: np.ndarray,
    end: np.ndarray,
    starts: np.ndarray,
    n_sub: int,
    size: int,
    max_sentences: Optional[int] = None,
) -> List[Tuple[int, int]]:
    """Token ranges of consecutive whole sentences, each at most ``size`` subwords and
    ``max_sentences`` sentences if it can be.

    ``first``/``end``: each token's subword range; ``starts``: sentence starts (tokens). A
    cut is only made where no subword is shared across it. A sentence longer than ``size``
    is a range of its own.
    """
    n_tokens = len(first)
    cuts = starts[(starts > 0) & (starts < n_tokens)]
    cuts = cuts[first[cuts] >= end[cuts - 1]]
    cut_sub = first[cuts]
    ranges = []
    begin = 0
    while begin < n_tokens:
        limit = first[begin] + size
        # the start of sentence max_sentences + 1, counting from begin's, if there is one
        after = int(np.searchsorted(starts, begin, side="right")) + (max_sentences or 0) - 1
        next_start = int(starts[after]) if max_sentences and after < len(starts) else None
        if n_sub <= limit and next_start is None:
            ranges.append((begin, n_tokens))
            break
        fits = int(np.searchsorted(cut_sub, limit, side="right")) - 1
        if next_start is not None:  # the last cut at or before it
            fits = min(fits, int(np.searchsorted(cuts, next_start, side="right")) - 1)
        if fits >= 0 and cuts[fits] > begin:
            stop = int(cuts[fits])
        else:
            later = cuts[cuts > begin]
            stop = int(later[0]) if len(later) else n_tokens
        ranges.append((begin, stop))
        begin = stop
    return ranges


def concatenate_windows(parts: Sequence[Tuple[int, DocWindows]]) -> DocWindows:
    """One doc's windows from its segments' (first token, windows), in order."""
    window_offsets = np.cumsum([0] + [len(part.windows) for _, part in parts])
    return DocWindows(
        [window for _, part in parts for window in part.windows],
        np.concatenate([part.token_window + off for (_, part), off in zip(parts, window_offsets)]),
        np.concatenate([part.token_start for _, part in parts]),
        np.concatenate([part.token_end for _, part in parts]),
        np.concatenate([part.window_tokens + begin for begin, part in parts]),
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


def non_space_positions(text: str) -> np.ndarray:
    """Positions of the characters of ``text`` that are not whitespace."""
    codepoints = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
    return np.flatnonzero(~np.isin(codepoints, _WHITESPACE)).astype(np.int64)


def _effective_offsets(text: str, offsets: np.ndarray, non_space: Optional[np.ndarray] = None):
    """Subword offsets without their leading whitespace, made monotonic."""
    starts = offsets[:, 0].copy()
    ends = offsets[:, 1].copy()
    if non_space is None:
        non_space = non_space_positions(text)
    if len(non_space):
        pos = np.searchsorted(non_space, starts, side="left")
        next_char = np.where(pos < len(non_space), non_space[np.minimum(pos, len(non_space) - 1)], len(text))
        has_text = next_char < ends
        starts = np.where(has_text, next_char, starts)
    starts = np.maximum.accumulate(starts)
    ends = np.maximum.accumulate(np.maximum(ends, starts))
    return starts, ends
