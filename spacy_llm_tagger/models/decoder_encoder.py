"""Running the decoder as a shared encoder: hidden states of every window.

The windows of a batch of docs are run in length-sorted groups (little
padding per forward pass) and their hidden states are put back, in doc order,
into one right-padded array of shape (windows, longest window, hidden). That
array is what spacy-transformers' listeners read (see decoder_transformer.py).
"""
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, List, Sequence, Tuple

import numpy as np
import torch
from thinc.api import ArgsKwargs, Model, torch2xp, xp2torch
from thinc.types import Floats3d

from .batching import group_by_length

if TYPE_CHECKING:
    from .decoder_tagger import LoadedDecoder


@dataclass
class WindowGroup:
    """One forward pass: some windows, right-padded to the longest of them."""

    rows: np.ndarray  # (n,) which windows of the full layout these are
    input_ids: np.ndarray  # (n, seq) int64
    attention_mask: np.ndarray  # (n, seq) int64, 1 = real subword


def pad_windows(windows: Sequence[np.ndarray], pad_id: int) -> Tuple[np.ndarray, np.ndarray]:
    """Right-pad windows into ``input_ids`` and ``attention_mask`` arrays."""
    seq = max((len(w) for w in windows), default=0)
    input_ids = np.full((len(windows), seq), pad_id, dtype=np.int64)
    attention_mask = np.zeros((len(windows), seq), dtype=np.int64)
    for row, window in enumerate(windows):
        input_ids[row, : len(window)] = window
        attention_mask[row, : len(window)] = 1
    return input_ids, attention_mask


def group_windows(
    windows: Sequence[np.ndarray], max_batch_tokens: int, pad_id: int
) -> List[WindowGroup]:
    """Windows grouped by length, at most ``max_batch_tokens`` padded subwords a group."""
    if not windows:
        return []
    lengths = np.asarray([len(w) for w in windows], dtype=np.int64)
    by_length = np.argsort(-lengths, kind="stable")
    groups = []
    for members in group_by_length(lengths[by_length], max_batch_tokens):
        rows = by_length[members]
        input_ids, attention_mask = pad_windows([windows[r] for r in rows], pad_id)
        groups.append(WindowGroup(rows, input_ids, attention_mask))
    return groups


def encode_windows(
    decoder: "LoadedDecoder",
    windows: Sequence[np.ndarray],
    max_batch_tokens: int,
    is_train: bool,
    xp: Any,
) -> Tuple[Floats3d, Callable[[Floats3d], None]]:
    """Hidden states of all windows in one (windows, longest, hidden) float32 array.

    Padding positions are zeros.
    The returned callback takes the gradient of that array and backpropagates
    it into the decoder's adapters, group by group.
    """
    width = int(decoder.base_config.hidden_size)
    seq = max((len(w) for w in windows), default=0)
    hidden = xp.zeros((len(windows), seq, width), dtype="float32")
    groups = group_windows(windows, max_batch_tokens, decoder.aligner.filler_id)
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
    from .decoder_tagger import _is_out_of_memory, predict_in_inference_mode

    try:
        return predict_in_inference_mode(wrapper, group), lambda d_states: None
    except (RuntimeError, MemoryError) as err:
        if not _is_out_of_memory(err):
            raise
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        if len(group.rows) <= 1:
            raise MemoryError(
                f"Out of memory on a single window of {group.input_ids.shape[1]} subwords. "
                f"Lower max_length (and max_batch_tokens) in the transformer model config."
            ) from err
    half = len(group.rows) // 2
    parts = []
    for lo, hi in ((0, half), (half, len(group.rows))):
        mask = group.attention_mask[lo:hi]
        seq = int(mask.sum(axis=1).max())
        part = WindowGroup(
            group.rows[lo:hi],
            np.ascontiguousarray(group.input_ids[lo:hi, :seq]),
            np.ascontiguousarray(mask[:, :seq]),
        )
        parts.append(_predict_splitting_on_oom(wrapper, part, xp)[0])
    seq = group.input_ids.shape[1]
    states = xp.zeros((len(group.rows), seq, parts[0].shape[-1]), dtype="float32")
    states[:half, : parts[0].shape[1]] = parts[0]
    states[half:, : parts[1].shape[1]] = parts[1]
    return states, lambda d_states: None


def convert_encoder_inputs(model: Model, group: WindowGroup, is_train: bool):
    device = model.shims[0].device
    rows, seq = group.input_ids.shape
    kwargs = {
        "input_ids": torch.from_numpy(group.input_ids).to(device),
        "attention_mask": torch.from_numpy(group.attention_mask).to(device),
        "position_ids": torch.arange(seq, device=device).unsqueeze(0).expand(rows, seq),
    }
    return ArgsKwargs(args=(), kwargs=kwargs), lambda d_inputs: []


def convert_encoder_outputs(model: Model, inputs_outputs: Tuple[Any, Any], is_train: bool):
    group, torch_hidden = inputs_outputs
    module = model.shims[0]._model
    hidden = torch2xp(torch_hidden.detach())

    def convert_for_torch_backward(d_hidden: Floats3d) -> ArgsKwargs:
        # Gradient checkpointing re-runs the unmasked layers' hooks in
        # backward: give them this group's padding again.
        device = torch_hidden.device
        module.unmasker.state.set(torch.from_numpy(group.attention_mask).to(device).bool())
        grad = xp2torch(d_hidden, device=device).to(torch_hidden.dtype)
        return ArgsKwargs(args=(torch_hidden,), kwargs={"grad_tensors": grad})

    return hidden, convert_for_torch_backward
