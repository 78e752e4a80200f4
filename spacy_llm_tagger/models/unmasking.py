"""Per-layer removal of the causal attention mask in Hugging Face decoders.

A forward pre-hook on each chosen decoder layer replaces the ``attention_mask``
keyword argument by a padding-only mask (padding stays masked), and the
layer's attention module gets ``is_causal = False`` so that SDPA or flash
attention do not re-apply causality when no mask is passed.

Layers with a sliding window (Mistral, Gemma 2/3, Qwen2 with sliding layers)
keep their window when unmasked, made symmetric: a position attends to the
positions less than ``sliding_window`` away on either side.
"""

from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple, Union, cast

import torch
from torch import nn

from ..errors import ConfigError, ModelError

UnmaskSpec = Union[str, int, Sequence[int], None]  # an int is refused with a hint


def parse_unmask(spec: UnmaskSpec, n_layers: int) -> List[int]:
    """Turn an ``unmask`` value into a sorted list of layer indices.

    ``"none"`` -> no layer, ``"all"`` -> every layer, a list of integers ->
    those layers (negative indices count from the end), and a string of 0/1
    digits such as ``"0011"`` -> the layers split into as many equal groups as
    there are digits, the groups marked 1 unmasked.
    """
    if spec is None:
        return []
    if isinstance(spec, int) and not isinstance(spec, bool):
        raise ConfigError(
            f"unmask = {spec} is a number. Write group patterns as strings ('0011'); on the "
            f"command line quote them as JSON: --components.NAME.model.unmask '\"0011\"' "
            f"(a bare 0011 is read as the number 11). For one layer write a list: [{spec}]."
        )
    if isinstance(spec, str):
        value = spec.strip().lower()
        if value in ("none", "", "causal"):
            return []
        if value == "all":
            return list(range(n_layers))
        if set(value) <= {"0", "1"}:
            return _layers_from_groups(value, n_layers)
        parts = [part.strip().lstrip("-") for part in value.split(",")]
        if all(part.isdigit() for part in parts):
            if any(len(part) > 1 and part.startswith("0") for part in parts):
                raise ConfigError(
                    f"unmask = {spec!r} looks like a group pattern, but a pattern has only the "
                    f"digits 0 and 1 (such as '0011'). For layer indices write a list: [20, 21]."
                )
            return parse_unmask([int(part) for part in value.split(",")], n_layers)
        raise ConfigError(
            f"Invalid unmask value {spec!r}. Use 'none', 'all', a list of layer "
            f"indices such as [20, 21], or a group pattern of 0/1 digits such as '0011'."
        )
    try:
        indices = [int(i) for i in cast(Iterable[Any], spec)]  # not iterable: TypeError
    except (TypeError, ValueError):
        raise ConfigError(
            f"Invalid unmask value {spec!r}: expected 'none', 'all', a 0/1 group "
            f"pattern or a list of integer layer indices."
        ) from None
    layers = set()
    for index in indices:
        resolved = index + n_layers if index < 0 else index
        if not 0 <= resolved < n_layers:
            raise ConfigError(
                f"unmask layer index {index} is out of range: the model has "
                f"{n_layers} decoder layers (valid indices 0..{n_layers - 1}, or "
                f"-{n_layers}..-1 from the end)."
            )
        layers.add(resolved)
    return sorted(layers)


def check_unmask_syntax(spec: UnmaskSpec) -> None:
    """Raise ConfigError for an ``unmask`` value that no model could accept."""
    if isinstance(spec, str) and spec.strip().lower() in ("none", "", "causal", "all"):
        return
    if isinstance(spec, str) and set(spec.strip()) <= {"0", "1"}:
        return
    n_layers = 1 << 30
    parse_unmask(spec, n_layers)


def _layers_from_groups(pattern: str, n_layers: int) -> List[int]:
    n_groups = len(pattern)
    if n_groups > n_layers:
        raise ConfigError(
            f"unmask pattern {pattern!r} has {n_groups} groups but the model has "
            f"only {n_layers} decoder layers."
        )
    layers: List[int] = []
    for group, flag in enumerate(pattern):
        start = (group * n_layers) // n_groups
        end = ((group + 1) * n_layers) // n_groups
        if flag == "1":
            layers.extend(range(start, end))
    return layers


def find_decoder_layers(model: nn.Module) -> nn.ModuleList:
    """Return the ModuleList of decoder blocks of a Hugging Face base model."""
    n_layers = getattr(model.config, "num_hidden_layers", None)
    for attr in ("layers", "h", "blocks"):
        candidate = getattr(model, attr, None)
        if isinstance(candidate, nn.ModuleList) and len(candidate) == n_layers:
            return candidate
    for module in model.modules():
        if isinstance(module, nn.ModuleList) and len(module) == n_layers:
            return module
    raise ModelError(
        f"Could not find the decoder layers of {type(model).__name__}: expected a list of {n_layers} blocks."
    )


def find_attention(layer: nn.Module) -> Any:  # the family's attention module (is_causal, ...)
    for attr in ("self_attn", "attn", "attention", "self_attention"):
        module = getattr(layer, attr, None)
        if isinstance(module, nn.Module):
            return module
    raise ModelError(f"Could not find the attention module of {type(layer).__name__}.")


def is_causal_decoder(model: nn.Module) -> bool:
    """True if the model's attention modules are causal (a decoder LLM)."""
    config = model.config
    if getattr(config, "is_encoder_decoder", False):
        return False
    try:
        layers = find_decoder_layers(model)
        attention = find_attention(layers[0])
    except ModelError:
        return False
    return bool(getattr(attention, "is_causal", False))


def layer_windows(model: nn.Module, n_layers: int) -> List[Optional[int]]:
    """The sliding window of each layer, or None for full attention."""
    config = model.config
    window = getattr(config, "sliding_window", None)
    layer_types = getattr(config, "layer_types", None)
    if not window:
        return [None] * n_layers
    if layer_types is not None and len(layer_types) == n_layers:
        return [window if t == "sliding_attention" else None for t in layer_types]
    if getattr(config, "use_sliding_window", True) is False:
        return [None] * n_layers
    return [window] * n_layers


class PaddingState:
    """Holds the key padding mask of the batch that is being run.

    The tagger sets it before every forward pass and again before every
    backward pass (gradient checkpointing re-runs the hooks in backward).
    """

    def __init__(self) -> None:
        self.padding_mask: Optional[torch.Tensor] = None  # (batch, seq) bool
        self._cache: Dict[Tuple[Any, ...], Optional[torch.Tensor]] = {}

    def set(self, padding_mask: Optional[torch.Tensor]) -> None:
        self.padding_mask = padding_mask
        self._cache = {}

    def mask_for(
        self, like: Optional[torch.Tensor], seq_len: int, window: Optional[int], eager: bool
    ) -> Optional[torch.Tensor]:
        key = (
            None if like is None else (like.dtype, like.device, like.dim()),
            seq_len,
            window,
            eager,
        )
        if key not in self._cache:
            self._cache[key] = self._build(like, seq_len, window, eager)
        return self._cache[key]

    def _build(
        self, like: Optional[torch.Tensor], seq_len: int, window: Optional[int], eager: bool
    ) -> Optional[torch.Tensor]:
        keep = self.padding_mask
        if keep is not None and keep.shape[-1] != seq_len:
            raise ModelError(
                f"Internal error: padding mask of length {keep.shape[-1]} for a "
                f"sequence of {seq_len} positions."
            )
        has_padding = keep is not None and not bool(keep.all())
        needs_window = window is not None and seq_len > window
        if like is not None and like.dim() == 2:
            # flash attention: it takes the 2-D padding mask and is_causal.
            if needs_window:
                raise ModelError(
                    "Unmasked sliding-window layers are not supported with flash "
                    "attention for sequences longer than the window; use "
                    "attn_implementation='sdpa' or a shorter max_length."
                )
            return like
        if not has_padding and not needs_window:
            if like is None and not eager:
                return None
        device = (
            like.device if like is not None else (keep.device if keep is not None else torch.device("cpu"))
        )
        batch = keep.shape[0] if keep is not None else 1
        if keep is None:
            keep = torch.ones((batch, seq_len), dtype=torch.bool, device=device)
        keep = keep.to(device=device, dtype=torch.bool)
        # allowed[b, q, k]: real queries see real keys; padded query rows see
        # every key, so no row is empty (empty rows give NaN in SDPA).
        allowed = keep[:, None, :] | ~keep[:, :, None]
        if needs_window:
            assert window is not None
            positions = torch.arange(seq_len, device=device)
            band = (positions[:, None] - positions[None, :]).abs() < window
            allowed = allowed & (band[None] | ~keep[:, :, None])
        allowed = allowed[:, None, :, :]
        if like is not None and like.dtype == torch.bool:
            return allowed
        if like is not None and like.is_floating_point():
            dtype = like.dtype
        elif eager:
            dtype = torch.float32
        else:
            return allowed
        additive = torch.zeros(allowed.shape, dtype=dtype, device=device)
        return additive.masked_fill(~allowed, torch.finfo(dtype).min)


class LayerUnmasker:
    """Installs the hooks that make the chosen layers bidirectional."""

    def __init__(self, model: nn.Module, layers: Sequence[int]) -> None:
        self.state = PaddingState()
        self.layers = list(layers)
        self._handles: List[Any] = []
        blocks = find_decoder_layers(model)
        windows = layer_windows(model, len(blocks))
        eager = getattr(model.config, "_attn_implementation", "sdpa") == "eager"
        for index in self.layers:
            block = blocks[index]
            find_attention(block).is_causal = False
            hook = self._make_hook(windows[index], eager)
            self._handles.append(block.register_forward_pre_hook(hook, with_kwargs=True))

    def _make_hook(self, window: Optional[int], eager: bool):
        state = self.state

        def hook(module: nn.Module, args: Tuple[Any, ...], kwargs: Dict[str, Any]):
            hidden = args[0] if args else kwargs["hidden_states"]
            seq_len = hidden.shape[1]
            original = kwargs.get("attention_mask")
            if original is not None and not isinstance(original, torch.Tensor):
                raise ModelError(
                    f"Unsupported attention mask type {type(original).__name__} "
                    f"for an unmasked layer; use attn_implementation='sdpa' or 'eager'."
                )
            kwargs["attention_mask"] = state.mask_for(original, seq_len, window, eager)
            return args, kwargs

        return hook

    def remove(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []
