"""Running planned forward passes through a loaded decoder, for training or prediction.

Training runs each pass through the Thinc wrapper (its backprop callback goes to the
adapters). Prediction runs the network itself under ``torch.inference_mode``; a pass that
runs out of GPU memory is split in halves and retried, down to single windows. Both
architectures put each :class:`PassOutput` back in doc order from its pass's ``tokens``
(the tagger) or ``windows`` (the shared encoder).
"""

from dataclasses import dataclass
from typing import Any, Callable, List, Optional, Sequence

import torch
from thinc.api import torch2xp

from ..errors import OutOfMemoryError
from .batching import WindowPass, split_pass
from .decoder import LoadedDecoder


@dataclass
class PassOutput:
    """What one forward pass returned, and how to send its gradient back."""

    batch: WindowPass
    output: Any  # xp array
    backprop: Callable[[Any], Any]


def run_passes(
    loaded: LoadedDecoder, passes: Sequence[WindowPass], is_train: bool, component: str
) -> List[PassOutput]:
    """Run every pass. ``component`` names the config to fix in an out-of-memory error."""
    if is_train:
        return [PassOutput(batch, *loaded.wrapper(batch, True)) for batch in passes]
    outputs: List[PassOutput] = []
    for batch in passes:
        outputs.extend(_predict_splitting_on_oom(loaded, batch, component))
    return outputs


def _predict_splitting_on_oom(loaded: LoadedDecoder, batch: WindowPass, component: str) -> List[PassOutput]:
    output = predict_unless_out_of_memory(loaded, batch, component)
    if output is not None:
        return [PassOutput(batch, output, no_backprop)]
    return [
        result for half in split_pass(batch) for result in _predict_splitting_on_oom(loaded, half, component)
    ]


def predict_in_inference_mode(loaded: LoadedDecoder, batch: WindowPass) -> Any:
    """Run the network for prediction under ``torch.inference_mode``; the output as xp array.

    Thinc's shim predicts under ``no_grad``; inference mode also skips version counting
    and view tracking.
    """
    module = loaded.predicting_module
    args, _ = loaded.convert_inputs(loaded.wrapper, batch, False)
    if module.training:
        # Stays in eval mode until the next training step (thinc's begin_update sets train
        # mode), not toggled per call: docs/fast-inference.md#speed-without-these-settings.
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


def predict_unless_out_of_memory(loaded: LoadedDecoder, batch: WindowPass, component: str) -> Optional[Any]:
    """Predict a pass, or return None on out-of-memory so the caller can split it.

    A pass of one window that does not fit raises an OutOfMemoryError (a MemoryError) naming
    the fix.
    """
    try:
        return predict_in_inference_mode(loaded, batch)
    except (RuntimeError, MemoryError) as err:
        if not is_out_of_memory(err):
            raise
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        if batch.input_ids.shape[0] <= 1:
            raise OutOfMemoryError(
                f"Out of memory on a single window of {batch.input_ids.shape[1]} subwords. "
                f"Lower max_length (and max_batch_tokens) in the {component} model config."
            ) from err
    return None
