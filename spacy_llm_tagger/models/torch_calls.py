"""Calling the wrapped torch module: inputs, outputs, prediction, out-of-memory.

Shared by the tagger (decoder_tagger.py) and the shared encoder
(decoder_encoder.py); both run right-padded batches that carry an
``attention_mask`` (numpy, 1 = real subword).
"""
from typing import Any, Dict, Optional, Tuple

import numpy as np
import torch
from thinc.api import ArgsKwargs, Model, torch2xp, xp2torch


def decoder_kwargs(model: Model, input_ids: np.ndarray, attention_mask: np.ndarray) -> Dict[str, Any]:
    """``input_ids``, ``attention_mask`` and ``position_ids`` on the module's device."""
    device = model.shims[0].device
    rows, seq = input_ids.shape
    return {
        "input_ids": torch.from_numpy(input_ids).to(device),
        "attention_mask": torch.from_numpy(attention_mask).to(device),
        "position_ids": torch.arange(seq, device=device).unsqueeze(0).expand(rows, seq),
    }


def convert_padded_outputs(model: Model, inputs_outputs: Tuple[Any, Any], is_train: bool):
    """Thinc's ``convert_outputs`` for a padded batch: xp output, torch backward."""
    batch, torch_output = inputs_outputs
    module = model.shims[0]._model
    output = torch2xp(torch_output.detach())

    def convert_for_torch_backward(d_output: Any) -> ArgsKwargs:
        # Gradient checkpointing re-runs the unmasked layers' hooks in
        # backward: give them this batch's padding again.
        device = torch_output.device
        module.unmasker.state.set(torch.from_numpy(batch.attention_mask).to(device).bool())
        grad = xp2torch(d_output, device=device).to(torch_output.dtype)
        return ArgsKwargs(args=(torch_output,), kwargs={"grad_tensors": grad})

    return output, convert_for_torch_backward


def predict_in_inference_mode(wrapper: Model, inputs: Any) -> Any:
    """Run the wrapped torch module for prediction under ``torch.inference_mode``.

    Thinc's shim predicts under ``no_grad``; inference mode also skips
    version counting and view tracking. Returns the output as an xp array.
    """
    shim = wrapper.shims[0]
    module = shim._model
    args, _ = wrapper.attrs["convert_inputs"](wrapper, inputs, False)
    if module.training:
        # Stays in eval mode until the next training step (thinc's begin_update sets
        # train mode): toggling ~2,500 submodules on every call dominated nlp() on short
        # docs (bench_speed scaling, 10-word doc: 77 -> 165 words/s).
        module.eval()
    with torch.inference_mode():
        output = module(*args.args, **args.kwargs)
    return torch2xp(output)


def no_backprop(d_outputs: Any) -> list:
    """The backprop callback of a prediction: nothing to send back."""
    return []


def is_out_of_memory(err: BaseException) -> bool:
    oom_types = tuple(
        t
        for t in (getattr(torch, "OutOfMemoryError", None), getattr(torch.cuda, "OutOfMemoryError", None))
        if t
    )
    return isinstance(err, oom_types) or "out of memory" in str(err).lower()


def predict_unless_out_of_memory(wrapper: Model, batch: Any, component: str) -> Optional[Any]:
    """Predict a padded batch, or return None on out-of-memory so the caller can split it.

    A batch of one row that does not fit raises a MemoryError naming the fix.
    """
    try:
        return predict_in_inference_mode(wrapper, batch)
    except (RuntimeError, MemoryError) as err:
        if not is_out_of_memory(err):
            raise
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        if batch.input_ids.shape[0] <= 1:
            raise MemoryError(
                f"Out of memory on a single window of {batch.input_ids.shape[1]} subwords. "
                f"Lower max_length (and max_batch_tokens) in the {component} model config."
            ) from err
    return None
