"""The PyTorch side of the core: a base decoder made into a LoRA-tuned, partly unmasked network.

:func:`build_unmasked_decoder` freezes the base, unmasks the chosen layers and adds the LoRA
adapters. :class:`DecoderNetwork` runs it on a right-padded batch; each architecture
subclasses it for what it returns (label scores, hidden states). The padding of the batch
reaches the unmasked layers through one method, :meth:`DecoderNetwork.set_padding`, called
before the forward pass and again before the backward pass.
"""

import warnings
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np
import torch
from thinc.api import ArgsKwargs, Model, PyTorchShim, torch2xp, xp2torch
from torch import nn

from ..errors import ModelError
from .kbit import prepare_kbit_base, quiet_hub_kernel_notice
from .settings import DecoderSettings
from .unmasking import LayerUnmasker, find_decoder_layers, parse_unmask


def enable_checkpointing(base: Any) -> None:
    """Recompute each layer's activations in the backward pass (non-reentrant).

    transformers 5 renamed ``gradient_checkpointing_enable`` to
    ``activation_checkpointing_enable`` and warns on the old name; 4.x has only the old one.
    """
    kwargs = {"use_reentrant": False}
    if hasattr(base, "activation_checkpointing_enable"):
        base.activation_checkpointing_enable(activation_checkpointing_kwargs=kwargs)
    else:
        base.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)


def build_unmasked_decoder(
    base: nn.Module, settings: DecoderSettings, adapter_state: Optional[dict] = None
) -> Tuple[nn.Module, LayerUnmasker]:
    """Freeze ``base``, unmask the layers ``settings.unmask`` names, add LoRA adapters.

    Returns the decoder to run (a peft model when ``lora_r > 0``) and its unmasker.
    ``adapter_state`` loads trained adapter weights.
    """
    layers = parse_unmask(settings.unmask, len(find_decoder_layers(base)))
    unmasker = LayerUnmasker(base, layers)
    if settings.quantize_base != "none":
        prepare_kbit_base(base)
    for param in base.parameters():
        param.requires_grad_(False)
    if settings.gradient_checkpointing:
        enable_checkpointing(base)
    if settings.lora_r == 0:
        return base, unmasker
    with quiet_hub_kernel_notice():
        from peft import LoraConfig, get_peft_model, set_peft_model_state_dict

    lora_config = LoraConfig(
        r=settings.lora_r,
        lora_alpha=settings.lora_alpha,
        lora_dropout=settings.lora_dropout,
        target_modules=settings.lora_target_modules,
        bias="none",
    )
    with warnings.catch_warnings():
        # peft reads transformers 5's deprecated `is_gradient_checkpointing` on every model it
        # wraps: a FutureWarning about peft's code, not the user's.
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
        decoder = get_peft_model(base, lora_config)
    if adapter_state is not None:
        result = set_peft_model_state_dict(decoder, adapter_state)
        unexpected = getattr(result, "unexpected_keys", [])
        if unexpected:
            raise ModelError(
                f"Adapter weights do not fit this base model (unexpected keys: {unexpected[:5]}); "
                f"load them with the base model they were trained on."
            )
    return decoder, unmasker


class DecoderNetwork(nn.Module):
    """The decoder with its unmasked layers; subclasses decide what ``forward`` returns.

    ``head`` is the trained module on top of the decoder that is saved with it (None when
    the network returns hidden states).
    """

    def __init__(self, decoder: nn.Module, unmasker: LayerUnmasker, merges_adapters: bool) -> None:
        super().__init__()
        self.head: Optional[nn.Module] = None
        self.decoder: Any = decoder  # a transformers (or peft) model: its methods are dynamic
        self.unmasker = unmasker
        self.merges_adapters = merges_adapters
        self.adapters_merged = False

    @property
    def unmasked_layers(self) -> List[int]:
        return list(self.unmasker.layers)

    def set_padding(self, attention_mask: torch.Tensor) -> None:
        """Give the unmasked layers the padding of the batch about to run (1 = real subword).

        Called before every forward pass, and again before its backward pass: gradient
        checkpointing re-runs the layers' hooks in backward.
        """
        self.unmasker.state.set(attention_mask.bool())

    def hidden_states(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, position_ids: torch.Tensor
    ) -> torch.Tensor:
        """The last hidden states of a right-padded batch, (rows, seq, hidden)."""
        self.set_padding(attention_mask)
        outputs: Any = self.decoder(
            input_ids=input_ids,
            attention_mask=attention_mask,
            position_ids=position_ids,
            use_cache=False,
        )
        return outputs[0] if isinstance(outputs, tuple) else outputs.last_hidden_state

    def set_adapters_merged(self, merged: bool) -> None:
        """Fold the LoRA weights into the base weights for prediction, unfold them to train.

        A no-op unless ``merges_adapters`` (see ``DecoderSettings.merges_adapters``).
        """
        if not self.merges_adapters or merged == self.adapters_merged:
            return
        with torch.no_grad():
            if merged:
                self.decoder.merge_adapter()
            else:
                self.decoder.unmerge_adapter()
        self.adapters_merged = merged

    def base_state_dict(self) -> Dict[str, torch.Tensor]:
        """The base model's own weights (no adapters), under the base model's key names."""
        self.set_adapters_merged(False)
        decoder = self.decoder
        base = decoder.get_base_model() if hasattr(decoder, "get_base_model") else decoder
        state = {}
        for key, value in base.state_dict().items():
            if "lora_" in key:
                continue
            state[key.replace(".base_layer.", ".")] = value
        return state


def wrapper_device(wrapper: Model) -> torch.device:
    """The device of the network in a ``PyTorchWrapper``."""
    shim = wrapper.shims[0]
    assert isinstance(shim, PyTorchShim)
    return shim.device


def network_inputs(model: Model, input_ids: np.ndarray, attention_mask: np.ndarray) -> Dict[str, Any]:
    """``input_ids``, ``attention_mask`` and ``position_ids`` on the wrapped network's device."""
    device = wrapper_device(model)
    rows, seq = input_ids.shape
    return {
        "input_ids": torch.from_numpy(input_ids).to(device),
        "attention_mask": torch.from_numpy(attention_mask).to(device),
        "position_ids": torch.arange(seq, device=device).unsqueeze(0).expand(rows, seq),
    }


def padded_output_converter(network: DecoderNetwork) -> Callable:
    """Thinc's ``convert_outputs`` for a padded pass: xp output, torch backward.

    Before backward it gives the network the pass's padding again (see ``set_padding``).
    """

    def convert_outputs(model: Model, inputs_outputs: Tuple[Any, Any], is_train: bool):
        batch, torch_output = inputs_outputs
        output = torch2xp(torch_output.detach())

        def convert_for_torch_backward(d_output: Any) -> ArgsKwargs:
            device = torch_output.device
            network.set_padding(torch.from_numpy(batch.attention_mask).to(device))
            grad = xp2torch(d_output, device=device).to(torch_output.dtype)
            return ArgsKwargs(args=(torch_output,), kwargs={"grad_tensors": grad})

        return output, convert_for_torch_backward

    return convert_outputs
