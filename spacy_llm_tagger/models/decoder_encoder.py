"""Running the decoder as a shared encoder: hidden states of every window.

The windows of a batch of docs are run in length-sorted groups (little
padding per forward pass) and their hidden states are put back, in doc order,
into one right-padded array of shape (windows, longest window, hidden). That
array is what spacy-transformers' listeners read (see decoder_transformer.py).
"""
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, List, Tuple

import numpy as np
from thinc.api import ArgsKwargs, Model
from thinc.types import Floats3d

from .batching import group_by_length
from .torch_calls import decoder_kwargs, no_backprop, predict_unless_out_of_memory

if TYPE_CHECKING:
    from .decoder_tagger import LoadedDecoder


@dataclass
class WindowGroup:
    """One forward pass: some windows, right-padded to the longest of them."""

    rows: np.ndarray  # (n,) which windows of the full layout these are
    input_ids: np.ndarray  # (n, seq) int64
    attention_mask: np.ndarray  # (n, seq) int64, 1 = real subword


def group_windows(
    input_ids: np.ndarray, attention_mask: np.ndarray, max_batch_tokens: int
) -> List[WindowGroup]:
    """Rows of a padded layout grouped by length, at most ``max_batch_tokens`` padded
    subwords a group; each group is cut to its own longest row."""
    lengths = attention_mask.sum(axis=1)
    by_length = np.argsort(-lengths, kind="stable")
    groups = []
    for members in group_by_length(lengths[by_length], max_batch_tokens):
        rows = by_length[members]
        seq = int(lengths[rows].max())
        groups.append(
            WindowGroup(
                rows,
                np.ascontiguousarray(input_ids[rows, :seq]),
                np.ascontiguousarray(attention_mask[rows, :seq]),
            )
        )
    return groups


def encode_windows(
    decoder: "LoadedDecoder",
    input_ids: np.ndarray,
    attention_mask: np.ndarray,
    max_batch_tokens: int,
    is_train: bool,
    xp: Any,
) -> Tuple[Floats3d, Callable[[Floats3d], None]]:
    """Hidden states of all windows of a padded layout, (windows, seq, hidden) float32.

    Padding positions are zeros.
    The returned callback takes the gradient of that array and backpropagates
    it into the decoder's adapters, group by group.
    """
    width = int(decoder.base_config.hidden_size)
    hidden = xp.zeros((*input_ids.shape, width), dtype="float32")
    groups = group_windows(input_ids, attention_mask, max_batch_tokens)
    callbacks: List[Callable] = []
    for group in groups:
        if is_train:
            states, callback = decoder.wrapper(group, True)
        else:
            states, callback = _predict_splitting_on_oom(decoder.wrapper, group, xp)
        real = xp.asarray(group.attention_mask[:, : states.shape[1], None], dtype="float32")
        hidden[xp.asarray(group.rows), : states.shape[1]] = states * real  # padding stays 0
        callbacks.append(callback)

    def backprop(d_hidden: Floats3d) -> None:
        for group, callback in zip(groups, callbacks):
            group_seq = group.input_ids.shape[1]
            callback(xp.ascontiguousarray(d_hidden[xp.asarray(group.rows), :group_seq]))

    return hidden, backprop


def _predict_splitting_on_oom(wrapper: Model, group: WindowGroup, xp: Any):
    """Encode a group; on out-of-memory, split it in halves and retry."""
    states = predict_unless_out_of_memory(wrapper, group, "transformer")
    if states is not None:
        return states, no_backprop
    half = len(group.rows) // 2
    parts = [_half(group, 0, half), _half(group, half, len(group.rows))]
    part_states = [_predict_splitting_on_oom(wrapper, part, xp)[0] for part in parts]
    states = xp.zeros((*group.input_ids.shape, part_states[0].shape[-1]), dtype="float32")
    states[:half, : part_states[0].shape[1]] = part_states[0]
    states[half:, : part_states[1].shape[1]] = part_states[1]
    return states, no_backprop


def _half(group: WindowGroup, lo: int, hi: int) -> WindowGroup:
    mask = group.attention_mask[lo:hi]
    seq = int(mask.sum(axis=1).max())
    return WindowGroup(
        group.rows[lo:hi],
        np.ascontiguousarray(group.input_ids[lo:hi, :seq]),
        np.ascontiguousarray(mask[:, :seq]),
    )


def convert_encoder_inputs(model: Model, group: WindowGroup, is_train: bool):
    kwargs = decoder_kwargs(model, group.input_ids, group.attention_mask)
    return ArgsKwargs(args=(), kwargs=kwargs), lambda d_inputs: []
