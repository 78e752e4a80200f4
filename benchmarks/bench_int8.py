"""Which linear layers can be int8? Label agreement, F1 and words/s of int8 variants.

    python benchmarks/bench_int8.py --docs 60 --variants all,skip_down,skip_down_o

Loads the CoNLL-2003 project's trained tagger (`make demo`) in float32, then with
`quantize = "int8"` once per variant, where a variant names the linear layers kept in float32:
`all` (none kept), `skip_down` (MLP down_proj), `skip_down_o` (down_proj and attention o_proj,
the package's choice), `skip_edges` (first and last layer), `skip_down_edges`. On the first
--docs test documents it prints F1, words/s (int8 copy built inside the timed pass, as a user
sees it) and how often the token labels agree with float32.
"""
import argparse
import re
import time
import warnings
from pathlib import Path

import spacy
import torch
from spacy.scorer import Scorer
from spacy.tokens import DocBin
from spacy.training import Example
from torch import nn
from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

import spacy_llm_tagger.models.quantization as quantization
from spacy_llm_tagger.corpus import tokens_only

PROJECT = Path(__file__).resolve().parent.parent / "projects" / "conll03"


def keeps_float(variant: str, name: str, n_layers: int) -> bool:
    layer = re.search(r"layers\.(\d+)\.", name)
    index = int(layer.group(1)) if layer else -1
    return (("down" in variant and name.endswith("down_proj"))
            or ("_o" in variant and name.endswith("o_proj"))
            or ("edges" in variant and index in (0, n_layers - 1)))


def variant_quantizer(variant: str):
    def quantize(module: nn.Module) -> nn.Module:
        n_layers = len([n for n, _ in module.named_modules() if re.search(r"layers\.\d+$", n)])
        spec = {name: per_channel_dynamic_qconfig for name, layer in module.named_modules()
                if isinstance(layer, nn.Linear) and not keeps_float(variant, name, n_layers)}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return quantize_dynamic(module, spec, dtype=torch.qint8, inplace=True)
    return quantize


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=PROJECT / "training" / "llm-unmasked" / "model-best")
    parser.add_argument("--corpus", type=Path, default=PROJECT / "corpus" / "test.spacy")
    parser.add_argument("--docs", type=int, default=60)
    parser.add_argument("--variants", default="all,skip_down,skip_down_o")
    args = parser.parse_args()
    blank = spacy.blank("en")
    gold = list(DocBin().from_disk(args.corpus).get_docs(blank.vocab))[: args.docs]
    words = sum(len(doc) for doc in gold)

    def run(nlp):
        inputs = [tokens_only(d, blank.vocab) for d in gold]
        start = time.perf_counter()
        predicted = list(nlp.pipe(inputs, batch_size=64))
        seconds = time.perf_counter() - start
        labels = [[t.ent_iob_ + "-" + t.ent_type_ for t in doc] for doc in predicted]
        f1 = Scorer.score_spans([Example(p, g) for p, g in zip(predicted, gold)], "ents")["ents_f"]
        return labels, f1, words / seconds

    reference, f1, speed = run(spacy.load(args.model))
    print(f"float32: F1 {100 * f1:.2f}, {speed:.0f} words/s ({args.docs} docs, {words} words)", flush=True)
    for variant in args.variants.split(","):
        quantization._quantize_linear_layers = variant_quantizer(variant)
        nlp = spacy.load(args.model, config={"components.llm_tagger.model.quantize": "int8"})
        labels, f1_int8, speed_int8 = run(nlp)
        pairs = [(a, b) for x, y in zip(reference, labels) for a, b in zip(x, y)]
        agreement = sum(a == b for a, b in pairs) / len(pairs)
        print(f"{variant}: F1 {100 * f1_int8:.2f}, {speed_int8:.0f} words/s ({speed_int8 / speed:.2f}x), "
              f"label agreement {100 * agreement:.2f}%", flush=True)


if __name__ == "__main__":
    main()
