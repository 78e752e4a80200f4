"""GPU throughput and memory of the llm_tagger's network at Mistral-7B shape (random weights).

    python benchmarks/bench_gpu.py --output benchmarks/results/gpu.json
    python benchmarks/bench_gpu.py --shape tiny --device cpu     # smoke test of this script

Speed does not depend on the weights' values, so a randomly initialised model of the real
shape (MistralConfig with Mistral-7B's dimensions) in bf16 stands in for the real weights.
Measures LoRA training and inference tokens/s, achieved TFLOP/s as a fraction of a measured
bf16 matmul peak, peak GPU memory with and without gradient checkpointing, and the largest
training batch that fits.
"""
import argparse
import json
import time
from pathlib import Path
from typing import Any, Dict

import torch

SHAPES = {
    "mistral-7b": dict(hidden_size=4096, intermediate_size=14336, num_hidden_layers=32,
                       num_attention_heads=32, num_key_value_heads=8, vocab_size=32000),
    "tiny": dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                 num_attention_heads=4, num_key_value_heads=2, vocab_size=1000),
}


def build(shape: str, device: str, checkpointing: bool, quantize_base: str = "none"):
    """The LoRA network at ``shape`` on random weights; ``quantize_base = "nf4"`` swaps the base's
    linear layers for bitsandbytes' NF4 ones (what loading a checkpoint with it does)."""
    from transformers import MistralConfig

    from spacy_llm_tagger.models.decoder_tagger import DecoderTaggerModule
    from spacy_llm_tagger.models.loading import build_base_model
    from spacy_llm_tagger.models.network import build_unmasked_decoder
    from spacy_llm_tagger.models.settings import DecoderSettings

    dtype = "bfloat16" if device == "cuda" else "float32"
    config = MistralConfig(sliding_window=4096, **SHAPES[shape])
    with torch.device("cpu" if quantize_base == "nf4" else device):
        base = build_base_model(config, dtype, "sdpa")
    if quantize_base == "nf4":
        base = nf4_linear_layers(base, torch.bfloat16 if device == "cuda" else torch.float32, device)
    settings = DecoderSettings(
        name="random", unmask="all", dtype=dtype, gradient_checkpointing=checkpointing, quantize_base=quantize_base
    )
    decoder, unmasker = build_unmasked_decoder(base, settings)
    module = DecoderTaggerModule(decoder, unmasker, config.hidden_size, 9).to(device)
    return module, config


def nf4_linear_layers(base: Any, compute_dtype: torch.dtype, device: str) -> Any:
    """``base`` with every linear layer replaced by bitsandbytes' NF4 one, quantized on ``device``
    (what ``quantize_base = "nf4"`` loads from a checkpoint; here from random weights)."""
    from spacy_llm_tagger.models.kbit import import_bitsandbytes

    bnb = import_bitsandbytes()
    for layer in list(base.modules()):
        for child_name, child in list(layer.named_children()):
            if type(child) is torch.nn.Linear:
                quantized = bnb.nn.Linear4bit(
                    child.in_features,
                    child.out_features,
                    bias=child.bias is not None,
                    compute_dtype=compute_dtype,
                    quant_type="nf4",
                )
                quantized.weight = bnb.nn.Params4bit(
                    child.weight.data.to(compute_dtype), requires_grad=False, quant_type="nf4"
                )
                setattr(layer, child_name, quantized.to(device))
    base.is_loaded_in_4bit = True
    return base.to(device)


def lora_flops_per_token(config: Any, train: bool) -> float:
    """~2 FLOPs per weight per token forward (x3 for training: the backward pass
    computes input gradients through the frozen weights, ~2x forward)."""
    h, i, n = config.hidden_size, config.intermediate_size, config.num_hidden_layers
    kv = h * config.num_key_value_heads // config.num_attention_heads
    params = n * (2 * h * h + 2 * h * kv + 3 * h * i)
    return 2 * params * (3 if train else 1)


def measured_peak_tflops(device: str) -> float:
    n = 8192 if device == "cuda" else 512
    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    for _ in range(3):
        a @ b
    sync(device)
    start = time.perf_counter()
    reps = 20
    for _ in range(reps):
        a @ b
    sync(device)
    return 2 * n ** 3 * reps / (time.perf_counter() - start) / 1e12


def sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def run(module, config, device: str, batch: int, seq: int, train: bool, steps: int = 5) -> Dict[str, Any]:
    ids = torch.randint(0, config.vocab_size, (batch, seq), device=device)
    mask = torch.ones_like(ids)
    pos = torch.arange(seq, device=device).expand(batch, seq)
    index = torch.arange(batch * seq, device=device)
    params = [p for p in module.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=1e-4)
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()

    def step():
        if train:
            module.train()
            loss = module(ids, mask, pos, index).float().logsumexp(-1).mean()
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()
        else:
            module.eval()
            with torch.inference_mode():
                module(ids, mask, pos, index)

    step()
    sync(device)
    start = time.perf_counter()
    for _ in range(steps):
        step()
    sync(device)
    seconds = (time.perf_counter() - start) / steps
    tokens_per_s = batch * seq / seconds
    return {
        "batch": batch,
        "seq": seq,
        "train": train,
        "tokens_per_second": tokens_per_s,
        "tflops": tokens_per_s * lora_flops_per_token(config, train) / 1e12,
        "peak_memory_gb": torch.cuda.max_memory_allocated() / 2**30 if device == "cuda" else None,
    }


def largest_batch(module, config, device: str, seq: int) -> int:
    fits, size = 0, 1
    while size <= 1024:
        try:
            run(module, config, device, size, seq, train=True, steps=1)
            fits = size
            size *= 2
        except torch.cuda.OutOfMemoryError:
            break
        finally:
            if device == "cuda":
                torch.cuda.empty_cache()
    return fits


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--shape", default="mistral-7b", choices=sorted(SHAPES))
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--seq", type=int, default=128)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--output", type=Path, default=Path(__file__).parent / "results" / "gpu.json")
    args = parser.parse_args()
    peak = measured_peak_tflops(args.device)
    result: Dict[str, Any] = {
        "device": torch.cuda.get_device_name() if args.device == "cuda" else "cpu",
        "shape": args.shape,
        "weights": "random (speed does not depend on weight values)",
        "measured_matmul_peak_tflops": peak,
        "runs": [],
    }
    for checkpointing in (False, True):
        module, config = build(args.shape, args.device, checkpointing)
        for train in (True, False):
            r = run(module, config, args.device, args.batch, args.seq, train)
            r.update(gradient_checkpointing=checkpointing, fraction_of_peak=r["tflops"] / peak)
            result["runs"].append(r)
            print(json.dumps(r), flush=True)
        if args.device == "cuda":
            result[f"largest_train_batch_checkpointing_{checkpointing}"] = largest_batch(
                module, config, args.device, args.seq
            )
        del module
        if args.device == "cuda":
            torch.cuda.empty_cache()
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
