"""Prototype (not part of the package): sentence boundaries from the base LLM's own reading, issue #31.

A document that arrives as bare tokens has lost the line breaks that separated its dateline,
headline and table rows. The pretrained decoder has read a lot of such text: at the last subword
of each word, its next-token probability of a line break (any subword whose text holds "\n")
says how likely the text broke there. This script reads each document once with the base model
(causal, no adapters; the default SmolLM2-135M), writes that probability after every word, and
counts how many gold sentence boundaries it finds beyond the punctuation rules (sentence_starts)
at several thresholds, everywhere and only inside rule "sentences" longer than LONG subwords.

    python results/documents/lm_boundaries_prototype.py valid 60 probs.json   (from benchmarks/)
    PREFIX='...\n...\n' python results/documents/lm_boundaries_prototype.py valid 60 probs.json

It prints the counts (JSON) and writes them to the output with the probabilities (one list per
document). PREFIX is text read before each document (a few lines of wire text as a prompt).
"""

import json
import math
import os
import sys
import time
from pathlib import Path

import numpy as np
import spacy
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from bench_documents import read_documents  # noqa: E402

from spacy_llm_tagger.models.alignment import sentence_starts  # noqa: E402
from spacy_llm_tagger.models.loading import dequantized_gguf, load_tokenizer, resolve_name  # noqa: E402
from spacy_llm_tagger.models.settings import DEFAULT_MODEL_NAME  # noqa: E402

WINDOW, CONTEXT = 1024, 256
LONG = int(os.environ.get("LONG", 44))


def newline_ids(tokenizer) -> np.ndarray:
    return np.asarray([i for i in range(len(tokenizer)) if "\n" in tokenizer.decode([i])], dtype=np.int64)


@torch.no_grad()
def break_probabilities(model, tokenizer, emb: torch.Tensor, breaks: torch.Tensor, words) -> list:
    """P(line break next) after each word but the last."""
    prefix = os.environ.get("PREFIX", "").replace("\\n", "\n")
    text = prefix + " ".join(words)
    encoded = tokenizer(text, return_offsets_mapping=True)
    ids = encoded["input_ids"]
    offsets = np.asarray([end for _, end in encoded["offset_mapping"]])
    log_p = np.zeros(len(ids))
    start = 0
    while start < len(ids):
        lo = max(0, start - CONTEXT)
        hidden = model(input_ids=torch.tensor([ids[lo : start + WINDOW]])).last_hidden_state[0]
        logits = hidden @ emb.T
        part = torch.logsumexp(logits[:, breaks], -1) - torch.logsumexp(logits, -1)
        log_p[start : start + WINDOW] = part[start - lo :].numpy()
        start += WINDOW
    ends = len(prefix) + np.cumsum([len(w) + 1 for w in words]) - 1  # char end of each word
    # the last subword that ends at or before each word's end
    last = np.searchsorted(offsets, ends, side="right") - 1
    return [round(float(math.exp(log_p[i])), 5) for i in last[:-1]]


def main() -> None:
    split, n_docs, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    torch.set_num_threads(int(os.environ.get("THREADS", 1)))
    from transformers import AutoModel

    location = dequantized_gguf(resolve_name(DEFAULT_MODEL_NAME), DEFAULT_MODEL_NAME)
    tokenizer = load_tokenizer(location, DEFAULT_MODEL_NAME)
    model = AutoModel.from_pretrained(location.path, torch_dtype=torch.float32).eval()
    emb = model.get_input_embeddings().weight
    breaks = torch.from_numpy(newline_ids(tokenizer))
    docs = read_documents(split)
    docs = docs[:n_docs] if n_docs else docs
    nlp = spacy.blank("en")
    started = time.time()
    probs, rows = [], []
    for k, sentences in enumerate(docs):
        words = [w for s in sentences for w, _ in s]
        p = break_probabilities(model, tokenizer, emb, breaks, words)
        probs.append(p)
        doc = spacy.tokens.Doc(nlp.vocab, words=words)
        rule = set(sentence_starts(doc).tolist())
        gold = set(np.cumsum([len(s) for s in sentences])[:-1].tolist())
        starts = sorted(rule) + [len(words)]
        long_inside = set()
        for a, b in zip(starts[:-1], starts[1:]):
            if len(tokenizer(" ".join(words[a:b]))["input_ids"]) + 1 > LONG:
                long_inside.update(range(a + 1, b))
        rows.append((p, rule, gold, long_inside))
        if k % 20 == 0:
            print(f"{k + 1}/{len(docs)} documents, {time.time() - started:.0f} s", file=sys.stderr, flush=True)
    report = {"split": split, "documents": len(docs), "seconds": round(time.time() - started, 1), "thresholds": {}}
    n_gold = sum(len(g) for _, _, g, _ in rows)
    rule_tp = sum(len(g & r) for _, r, g, _ in rows)
    rule_fp = sum(len(r - g - {0}) for _, r, g, _ in rows)
    report.update({"gold_boundaries": n_gold, "rules_tp": rule_tp, "rules_fp": rule_fp})
    for threshold in (0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7):
        counts = {"all": [0, 0], "long": [0, 0]}
        for p, rule, gold, long_inside in rows:
            for i, value in enumerate(p, start=1):
                if value <= threshold or i in rule:
                    continue
                hit = int(i in gold)
                counts["all"][1 - hit] += 1
                if i in long_inside:
                    counts["long"][1 - hit] += 1
        report["thresholds"][str(threshold)] = {
            "more_true": counts["all"][0],
            "more_false": counts["all"][1],
            "long_more_true": counts["long"][0],
            "long_more_false": counts["long"][1],
        }
    print(json.dumps(report, indent=1))
    Path(out).write_text(json.dumps({"report": report, "probabilities": probs}))


if __name__ == "__main__":
    main()
