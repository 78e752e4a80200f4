"""An int8 copy of a trained network for CPU inference (``quantize = "int8"``).

The copy has the LoRA adapters folded into the base weights and the decoder's ``nn.Linear``
layers replaced by PyTorch's dynamically quantized int8 linear layer (weights int8 per
output channel, activations quantized on the fly), except the two output projections of each
layer (attention ``o_proj``, MLP ``down_proj``): their inputs carry the few huge activation
values that one int8 scale per row cannot hold. The head stays float32. The full-precision
network is kept: it is what trains and what is saved; the copy only predicts, and is built
again after the weights change.
"""

import copy
import warnings
from typing import List

import torch
from torch import nn

from ..errors import ConfigError
from .network import DecoderNetwork

QUANTIZED_ENGINES = ("x86", "fbgemm", "onednn", "qnnpack")
# The output projections of attention and MLP stay float32 (Llama-style names; Phi / Mixtral /
# GPT-NeoX MLP names too); measured in docs/fast-inference.md, section "Which linear layers
# int8 keeps in float32".
FLOAT_LINEARS = ("o_proj", "down_proj", "fc2", "w2", "dense_4h_to_h")


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


def int8_layer_names(module: nn.Module) -> List[str]:
    """The linear layers that become int8: all but the output projections."""
    return [
        name
        for name, layer in module.named_modules()
        if isinstance(layer, nn.Linear) and name.rsplit(".", 1)[-1] not in FLOAT_LINEARS
    ]


def _quantize_linear_layers(module: nn.Module) -> nn.Module:
    from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

    with warnings.catch_warnings():
        # torch marks its eager-mode quantization API deprecated (it moves to torchao).
        warnings.simplefilter("ignore")
        # Per output channel rather than per tensor: measured in docs/fast-inference.md.
        spec = {name: per_channel_dynamic_qconfig for name in int8_layer_names(module)}
        return quantize_dynamic(module, spec, dtype=torch.qint8, inplace=True)
