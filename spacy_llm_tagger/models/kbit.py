"""A base decoder held in 4 or 8 bits under the adapters (QLoRA, ``quantize_base``).

transformers loads the base through bitsandbytes (``BitsAndBytesConfig``): its linear layers
keep their weights in NF4 (4 bits, one scale per block of 64 weights) or int8 and dequantize
them to the compute dtype (``dtype``) in every forward pass. peft prepares such a model for
training (``prepare_model_for_kbit_training``); the LoRA adapters and the head on top train in
float32 as on a full-precision base. Unmasking is unchanged: its hooks sit on attention, not on
the linear layers. Nothing quantized is saved: a pipeline keeps adapters and head, and loading
quantizes the base again from ``name``. Measured in docs/qlora.md.
"""

import logging
from contextlib import contextmanager
from typing import Any, Dict, Iterator

from ..errors import MissingDependencyError

BASE_QUANTIZATIONS = ("none", "nf4", "int8")
INSTALL_HINT = "pip install 'spacy-llm-tagger[qlora]' (or pip install 'bitsandbytes>=0.50')"
# bitsandbytes logs at import, on CPUs with AVX512-BF16, that it could not fetch a faster
# 4-bit kernel from the Hugging Face hub (the `kernels` package); it falls back to its own.
# peft imports bitsandbytes whenever it is installed, so this wraps importing peft too.
BNB_CPU_LOGGER = "bitsandbytes.backends.cpu.ops"


@contextmanager
def quiet_hub_kernel_notice() -> Iterator[None]:
    """Silence bitsandbytes' import-time notice about the hub kernel it could not fetch."""
    logger = logging.getLogger(BNB_CPU_LOGGER)
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def import_bitsandbytes() -> Any:
    """bitsandbytes, or a clear error naming the extra that installs it."""
    try:
        with quiet_hub_kernel_notice():
            import bitsandbytes
    except ImportError as err:
        raise MissingDependencyError(
            f"quantize_base needs the 'bitsandbytes' package ({err}): {INSTALL_HINT}."
        ) from err
    return bitsandbytes


def base_quantization_kwargs(quantize_base: str, compute_dtype: Any) -> Dict[str, Any]:
    """The ``from_pretrained`` keywords that load the base in ``quantize_base`` bits ({} for "none").

    compute_dtype: the torch dtype the dequantized weights compute in (``dtype``).
    """
    if quantize_base == "none":
        return {}
    import_bitsandbytes()
    from transformers import BitsAndBytesConfig

    if quantize_base == "nf4":
        config = BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=compute_dtype
        )
    else:
        config = BitsAndBytesConfig(load_in_8bit=True)
    return {"quantization_config": config}


def prepare_kbit_base(base: Any) -> None:
    """Make a k-bit base trainable under adapters, as peft does: the base frozen, its remaining
    half-precision parameters (norms, embeddings) in float32. Gradient checkpointing is the
    caller's (``gradient_checkpointing``), not peft's default.

    Prediction computes as training does: bitsandbytes would otherwise predict on CPUs with
    AVX512-BF16 through a bfloat16 kernel that repacks the weights, so that the same pipeline
    predicted differently by host (and that kernel fails on layers narrower than one block).
    """
    with quiet_hub_kernel_notice():
        from peft import prepare_model_for_kbit_training

    prepare_model_for_kbit_training(base, use_gradient_checkpointing=False)
    for module in base.modules():
        if getattr(module, "support_avx512bf16_for_cpu", False):
            module.support_avx512bf16_for_cpu = False
