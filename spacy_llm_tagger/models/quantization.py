"""An int8 copy of a trained network for CPU inference (``quantize = "int8"``).

The copy has the LoRA adapters folded into the base weights and every ``nn.Linear`` of the
decoder replaced by PyTorch's dynamically quantized int8 linear layer (weights int8 per
output channel, activations quantized on the fly). The head stays float32. The full-precision
network is kept: it is what trains and what is saved; the copy only predicts, and is built
again after the weights change.
"""
import copy
import warnings

import torch
from torch import nn

from ..errors import ConfigError
from .network import DecoderNetwork

QUANTIZED_ENGINES = ("x86", "fbgemm", "onednn", "qnnpack")


def check_can_quantize(device: torch.device) -> None:
    """A clear error where int8 inference cannot run."""
    if device.type != "cpu":
        raise ConfigError(
            f"quantize = 'int8' is for CPU inference, but the model is on {device}. On a GPU "
            f"set quantize = 'none' (and dtype = 'bfloat16' for a faster, smaller model)."
        )
    engines = getattr(torch.backends.quantized, "supported_engines", [])
    if not any(engine in engines for engine in QUANTIZED_ENGINES):
        raise ConfigError(
            f"quantize = 'int8': this PyTorch build has no quantized CPU engine "
            f"(supported: {engines}). Set quantize = 'none'."
        )


def int8_copy(network: DecoderNetwork) -> DecoderNetwork:
    """A copy of ``network`` (adapters merged) whose decoder's linear layers are int8.

    The copy shares ``network``'s layer unmasker, so the padding given to either reaches the
    copy's unmasked layers too (the hooks are closures over the unmasker's state).
    """
    network.set_adapters_merged(True)  # int8 needs float32 weights, so adapters merge
    quantized = copy.deepcopy(network, memo={id(network.unmasker): network.unmasker})
    decoder = quantized.decoder
    if hasattr(decoder, "merge_and_unload"):
        # A peft model: drop the LoRA wrappers (their weights are folded in) so that the
        # plain nn.Linear layers get quantized.
        decoder = decoder.unload() if network.adapters_merged else decoder.merge_and_unload()
    quantized.decoder = _quantize_linear_layers(decoder)
    quantized.merges_adapters = False
    quantized.adapters_merged = False
    quantized.eval()
    return quantized


def _quantize_linear_layers(module: nn.Module) -> nn.Module:
    from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

    with warnings.catch_warnings():
        # torch marks its eager-mode quantization API deprecated (it moves to torchao).
        warnings.simplefilter("ignore")
        # Per output channel: on the tiny trained tagger of tests/test_fast_inference.py,
        # 96.7% of token labels agreed with float32, against 94.8% per tensor (speed not
        # compared). On the trained SmolLM2 tagger it is still lossy: see README.
        return quantize_dynamic(
            module, {nn.Linear: per_channel_dynamic_qconfig}, dtype=torch.qint8, inplace=True
        )
