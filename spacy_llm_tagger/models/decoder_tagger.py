"""The registered architecture ``spacy-llm-tagger.DecoderTagger.v1``.

A Thinc ``Model[List[Doc], List[Floats2d]]``: one row of label scores per
token. The network is built and the weights loaded in ``initialize`` (or when
a saved pipeline is loaded), never at construction.
"""
import os
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, List, Optional, Tuple, Union

import numpy as np
import torch
from spacy.tokens import Doc
from spacy.util import registry
from thinc.api import ArgsKwargs, Model, PyTorchWrapper_v2
from thinc.types import Floats2d

from ..errors import ConfigError
from .alignment import SubwordAligner
from .batching import BatchPlan, WindowBatch, plan_batches, split_batch
from .decoder_encoder import convert_encoder_inputs
from .loading import DTYPES, ModelLocation, special_token_frame
from .torch_calls import (
    convert_padded_outputs,
    decoder_kwargs,
    no_backprop,
    predict_unless_out_of_memory,
)
from .torch_module import POOLING_MODES, DecoderEncoderModule, DecoderTaggerModule
from .unmasking import LayerUnmasker, check_unmask_syntax, find_decoder_layers, parse_unmask

InT = List[Doc]
OutT = List[Floats2d]
ATTN_IMPLEMENTATIONS = ("sdpa", "eager", "flash_attention_2")
# Padded subwords per forward pass when max_batch_tokens = 0 (auto). On CPU, passes of about
# 512 subwords ran fastest (benchmarks/bench_batch_tokens.py, SmolLM2-135M, 2 cores: 532
# words/s at 512, 450 at 1,024, 383 at 4,096: activations fall out of cache); GPUs want large
# passes.
AUTO_BATCH_TOKENS = {"cpu": 512, "gpu": 8192}


@dataclass
class DecoderSettings:
    """The architecture's arguments, validated once at construction."""

    name: str
    unmask: Union[str, List[int]] = "all"
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.0
    lora_target_modules: Union[str, List[str]] = "all-linear"
    pooling: str = "first"
    dtype: str = "float32"
    gradient_checkpointing: bool = False
    max_length: int = 512
    window_overlap: int = 64
    max_batch_tokens: int = 0
    head_dropout: float = 0.1
    attn_implementation: str = "sdpa"
    store_base_weights: bool = False

    def __post_init__(self) -> None:
        if self.pooling not in POOLING_MODES:
            raise ConfigError(f"pooling must be one of {POOLING_MODES}, not {self.pooling!r}.")
        if self.dtype not in DTYPES:
            raise ConfigError(f"dtype must be one of {sorted(DTYPES)}, not {self.dtype!r}.")
        if self.attn_implementation not in ATTN_IMPLEMENTATIONS:
            raise ConfigError(
                f"attn_implementation must be one of {ATTN_IMPLEMENTATIONS}, "
                f"not {self.attn_implementation!r}."
            )
        if self.lora_r < 0:
            raise ConfigError("lora_r must be >= 0 (0 trains the head only).")
        if self.max_length < 8:
            raise ConfigError("max_length must be at least 8 subwords.")
        if self.window_overlap < 0:
            raise ConfigError("window_overlap must be >= 0.")
        if self.max_batch_tokens < 0:
            raise ConfigError("max_batch_tokens must be >= 0 (0 = automatic for the device).")
        check_unmask_syntax(self.unmask)  # layer range is checked at load

    def batch_tokens(self, device_type: str) -> int:
        """Padded subwords per forward pass on this device (``max_batch_tokens``, 0 = auto)."""
        if self.max_batch_tokens:
            return self.max_batch_tokens
        return AUTO_BATCH_TOKENS["cpu" if device_type == "cpu" else "gpu"]

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class LoadedDecoder:
    """What ``initialize`` or loading builds: tokenizer, network, wrapper."""

    tokenizer: Any
    aligner: SubwordAligner
    module: Any  # DecoderTaggerModule, or DecoderEncoderModule for the shared encoder
    wrapper: Model
    unmasked_layers: List[int]
    n_layers: int
    base_config: Any
    location: Optional[ModelLocation] = None
    extra: dict = field(default_factory=dict)


@registry.architectures("spacy-llm-tagger.DecoderTagger.v1")
def DecoderTagger(
    name: str,
    unmask: Union[str, int, List[int]] = "all",
    lora_r: int = 16,
    lora_alpha: int = 32,
    lora_dropout: float = 0.0,
    lora_target_modules: Union[str, List[str]] = "all-linear",
    pooling: str = "first",
    dtype: str = "float32",
    gradient_checkpointing: bool = False,
    max_length: int = 512,
    window_overlap: int = 64,
    max_batch_tokens: int = 0,
    head_dropout: float = 0.1,
    attn_implementation: str = "sdpa",
    store_base_weights: bool = False,
    nO: Optional[int] = None,
) -> Model[InT, OutT]:
    """A decoder LLM with LoRA adapters, chosen layers unmasked, and a linear head.

    name: Hugging Face id, local folder, .gguf file or ``package:DIST/path``.
    unmask: "none", "all", a list of layer indices, or a 0/1 group pattern ("0011").
    lora_*: LoRA rank (0 = no adapters), alpha, dropout and target modules.
    pooling: "first" (first subword of each token) or "mean".
    dtype: weights of the base model ("float32", "bfloat16", "float16");
        adapters and head stay float32.
    max_length: window size in subwords; longer docs are split into windows
        that overlap by ``window_overlap`` subwords.
    max_batch_tokens: padded subwords per forward pass (0 = automatic: 512 on CPU,
        8192 on GPU). A single window longer than this still runs, alone.
    store_base_weights: save the full base weights with the pipeline.
    """
    settings = DecoderSettings(
        name=name,
        unmask=unmask,
        lora_r=lora_r,
        lora_alpha=lora_alpha,
        lora_dropout=lora_dropout,
        lora_target_modules=lora_target_modules,
        pooling=pooling,
        dtype=dtype,
        gradient_checkpointing=gradient_checkpointing,
        max_length=max_length,
        window_overlap=window_overlap,
        max_batch_tokens=max_batch_tokens,
        head_dropout=head_dropout,
        attn_implementation=attn_implementation,
        store_base_weights=store_base_weights,
    )
    return Model(
        "llm_decoder_tagger",
        forward,
        init=init,
        dims={"nO": nO},
        attrs={"settings": settings, "decoder": None},
    )


def get_settings(model: Model) -> DecoderSettings:
    return model.attrs["settings"]


def get_decoder(model: Model) -> LoadedDecoder:
    decoder = model.attrs.get("decoder")
    if decoder is None:
        raise ValueError(
            "The llm_tagger model has no weights yet: call nlp.initialize() before "
            "using or training it, or load a trained pipeline with spacy.load()."
        )
    return decoder


def init(model: Model, X: Optional[InT] = None, Y: Optional[Any] = None) -> None:
    """Load the pretrained base model and attach fresh adapters and head."""
    from .loading import dequantized_gguf, load_base_model, load_tokenizer, resolve_name

    if not model.attrs.get("encoder_only") and not _has_n_labels(model):
        raise ConfigError("The llm_tagger model needs its number of labels (nO) before initialize.")
    settings = get_settings(model)
    location = dequantized_gguf(resolve_name(settings.name), settings.name)
    tokenizer = load_tokenizer(location, settings.name)
    base = load_base_model(location, settings.name, settings.dtype, settings.attn_implementation)
    attach_decoder(model, tokenizer, base, location)


def _has_n_labels(model: Model) -> bool:
    return model.has_dim("nO") and model.get_dim("nO") is not None


def attach_decoder(
    model: Model,
    tokenizer: Any,
    base: Any,
    location: Optional[ModelLocation] = None,
    adapter_state: Optional[dict] = None,
) -> LoadedDecoder:
    """Unmask the chosen layers, add LoRA adapters and a head, and wrap for Thinc."""
    settings = get_settings(model)
    n_layers = len(find_decoder_layers(base))
    layers = parse_unmask(settings.unmask, n_layers)
    unmasker = LayerUnmasker(base, layers)
    for param in base.parameters():
        param.requires_grad_(False)
    if settings.gradient_checkpointing:
        base.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    decoder: Any = base
    if settings.lora_r > 0:
        from peft import LoraConfig, get_peft_model, set_peft_model_state_dict

        lora_config = LoraConfig(
            r=settings.lora_r,
            lora_alpha=settings.lora_alpha,
            lora_dropout=settings.lora_dropout,
            target_modules=settings.lora_target_modules,
            bias="none",
        )
        decoder = get_peft_model(base, lora_config)
        if adapter_state is not None:
            result = set_peft_model_state_dict(decoder, adapter_state)
            unexpected = getattr(result, "unexpected_keys", [])
            if unexpected:
                raise ValueError(f"Adapter weights do not fit this base model: {unexpected[:5]}")
    module: Any
    if model.attrs.get("encoder_only"):
        model.set_dim("nO", int(base.config.hidden_size), force=True)
        module = DecoderEncoderModule(decoder, unmasker)
        wrapper = PyTorchWrapper_v2(
            module, convert_inputs=convert_encoder_inputs, convert_outputs=convert_padded_outputs
        )
    else:
        module = DecoderTaggerModule(
            decoder,
            unmasker,
            hidden_size=base.config.hidden_size,
            n_labels=model.get_dim("nO"),
            pooling=settings.pooling,
            head_dropout=settings.head_dropout,
        )
        wrapper = PyTorchWrapper_v2(
            module, convert_inputs=_convert_inputs, convert_outputs=convert_padded_outputs
        )
    prefix, suffix = special_token_frame(tokenizer)
    aligner = SubwordAligner(tokenizer, prefix, suffix, settings.max_length, settings.window_overlap)
    loaded = LoadedDecoder(
        tokenizer=tokenizer,
        aligner=aligner,
        module=module,
        wrapper=wrapper,
        unmasked_layers=layers,
        n_layers=n_layers,
        base_config=base.config,
        location=location,
        extra={"pid": os.getpid()},
    )
    model.attrs["decoder"] = loaded
    model._layers = [wrapper]
    return loaded


def forward(model: Model, docs: InT, is_train: bool) -> Tuple[OutT, Callable]:
    decoder = get_decoder(model)
    _limit_threads_after_fork(decoder)
    settings = get_settings(model)
    set_adapters_merged(decoder, settings, merged=not is_train)
    n_labels = model.get_dim("nO")
    xp = model.ops.xp
    plan: BatchPlan = plan_batches(
        decoder.aligner(docs),
        settings.batch_tokens(module_device(decoder).type),
        decoder.aligner.filler_id,
        settings.pooling,
    )
    rows: List[Any] = []
    callbacks: List[Callable] = []
    for batch in plan.batches:
        if is_train:
            scores, backprop_batch = decoder.wrapper(batch, is_train)
        else:
            scores, backprop_batch = _predict_splitting_on_oom(decoder.wrapper, batch, n_labels, xp)
        rows.append(scores)
        callbacks.append(backprop_batch)
    total = int(sum(plan.doc_lengths))
    flat = xp.zeros((total, n_labels), dtype="float32")
    if rows:
        flat[xp.asarray(plan.order)] = xp.concatenate(rows)
    boundaries = np.cumsum(plan.doc_lengths)[:-1].tolist()
    outputs = xp.split(flat, boundaries) if docs else []

    def backprop(d_outputs: OutT) -> InT:
        if not rows:
            return []
        d_flat = xp.concatenate(d_outputs)[xp.asarray(plan.order)]
        start = 0
        for scores, callback in zip(rows, callbacks):
            end = start + scores.shape[0]
            callback(xp.ascontiguousarray(d_flat[start:end]))
            start = end
        return []

    return list(outputs), backprop


def module_device(decoder: LoadedDecoder) -> torch.device:
    return decoder.wrapper.shims[0].device


def set_adapters_merged(decoder: LoadedDecoder, settings: DecoderSettings, merged: bool) -> None:
    """Fold the LoRA weights into the base weights for prediction, unfold them to train.

    Merged adapters cost nothing at inference (unmerged ones add about a third
    of the forward time on CPU). Only done for float32 bases: merging into
    bf16/fp16 weights and back would round the base weights each time.
    """
    if settings.lora_r == 0 or settings.dtype != "float32":
        return
    if merged == bool(decoder.extra.get("merged")):
        return
    peft_model = decoder.module.decoder
    with torch.no_grad():
        if merged:
            peft_model.merge_adapter()
        else:
            peft_model.unmerge_adapter()
    decoder.extra["merged"] = merged


def _limit_threads_after_fork(decoder: LoadedDecoder) -> None:
    """In a forked worker (``nlp.pipe(n_process=N)``) use one torch thread.

    Torch's OpenMP thread pool does not survive ``fork``: a child that starts
    a parallel region can hang for ever. One thread per worker avoids that
    and is what N worker processes on N cores want anyway.
    """
    pid = os.getpid()
    if decoder.extra.setdefault("pid", pid) != pid:
        torch.set_num_threads(1)
        decoder.extra["pid"] = pid


def _predict_splitting_on_oom(wrapper: Model, batch: WindowBatch, n_labels: int, xp: Any):
    """Predict a batch; on GPU out-of-memory, split it in halves and retry."""
    scores = predict_unless_out_of_memory(wrapper, batch, "llm_tagger")
    if scores is not None:
        return scores, no_backprop
    scores = xp.zeros((batch.n_words, n_labels), dtype="float32")
    for part, words in split_batch(batch):
        part_scores, _ = _predict_splitting_on_oom(wrapper, part, n_labels, xp)
        scores[xp.asarray(words)] = part_scores
    return scores, no_backprop


def _convert_inputs(model: Model, batch: WindowBatch, is_train: bool):
    device = model.shims[0].device
    kwargs = {
        **decoder_kwargs(model, batch.input_ids, batch.attention_mask),
        "piece_index": torch.from_numpy(batch.piece_index).to(device),
        "piece_word": torch.from_numpy(batch.piece_word).to(device),
        "n_words": batch.n_words,
    }
    return ArgsKwargs(args=(), kwargs=kwargs), lambda d_inputs: []
