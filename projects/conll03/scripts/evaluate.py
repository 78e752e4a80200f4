"""Evaluate a trained pipeline on a CoNLL split, one Doc per sentence and one Doc per document:
P/R/F, per-type F, words/s, and what produced them -> JSON.

    python scripts/evaluate.py SYSTEM [--sentences N] [--documents N] [--documents-as wire]
    python scripts/evaluate.py PIPELINE DATA OUTPUT [--sentences N] [--documents N]

SYSTEM (a name in systems/) scores training/SYSTEM/model-best on corpus/test.spacy into
metrics/SYSTEM.json, whatever the current folder; DATA and OUTPUT may still be given. The metrics
record the git commit, the package versions, this command and the training command of the
pipeline (its folder's train_command.json, when train.py wrote one). Progress goes to stderr.
"""
import json
import os
import platform
import resource
import shlex
import subprocess
import sys
import time
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, Dict, List, Optional

import spacy
import typer
from spacy.scorer import Scorer
from spacy.tokens import Doc
from spacy.training import Corpus, Example

from spacy_llm_tagger.corpus import create_sentence_corpus, tokens_only

sys.path.insert(0, str(Path(__file__).parent))
from systems import PROJECT, SYSTEMS, TEST_DATA, fingerprint, from_project  # noqa: E402


def environment() -> Dict[str, str]:
    """What produced the figures: package versions, the git commit, the machine."""
    found = {}
    for package in ("spacy-llm-tagger", "spacy", "thinc", "torch", "transformers", "peft", "spacy-transformers"):
        try:
            found[package] = version(package)
        except PackageNotFoundError:
            pass
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True, cwd=Path(__file__).resolve().parent
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            capture_output=True, text=True, check=True, cwd=Path(__file__).resolve().parent,
        ).stdout.strip()
        found["git_commit"] = commit + ("+uncommitted changes" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        found["git_commit"] = "unknown (not a git checkout)"
    found["python"] = platform.python_version()
    found["machine"] = f"{platform.machine()}, {os.cpu_count()} CPU cores"
    return found


def parse_override(item: str) -> tuple:
    key, sep, value = item.partition("=")
    if not sep:
        raise typer.BadParameter(f"--override {item!r}: expected KEY=VALUE")
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        return key, value


def score_docs(
    nlp, examples: List[Example], batch_size: int, save_labels: Optional[Path] = None,
    progress: Optional[str] = None,
) -> Dict[str, Any]:
    """Run the pipeline over the examples' unannotated docs, time it and score it (with
    `progress`, a line on stderr about every tenth of the docs)."""
    docs = [eg.predicted for eg in examples]
    n_words = sum(len(doc) for doc in docs)
    start = time.perf_counter()
    predicted = []
    every = max(len(docs) // 10, batch_size)
    for doc in nlp.pipe(docs, batch_size=batch_size):
        predicted.append(doc)
        if progress and (len(predicted) % every == 0 or len(predicted) == len(docs)):
            elapsed = time.perf_counter() - start
            done = sum(len(d) for d in predicted)
            print(f"  {progress}: {len(predicted):,} / {len(docs):,} ({done / max(elapsed, 1e-9):.0f} words/s, "
                  f"{elapsed:.0f} s)", file=sys.stderr, flush=True)
    seconds = time.perf_counter() - start
    if save_labels is not None:
        labels = [[f"{t.ent_iob_}-{t.ent_type_}" if t.ent_type_ else "O" for t in doc] for doc in predicted]
        save_labels.parent.mkdir(parents=True, exist_ok=True)
        save_labels.write_text(json.dumps(labels))
    scores = Scorer(nlp).score([Example(p, eg.reference) for p, eg in zip(predicted, examples)])
    return {
        "words": n_words,
        "seconds": round(seconds, 2),
        "words_per_second": round(n_words / max(seconds, 1e-9), 1),
        **scores,
    }


SENTENCE_FINAL = (".", "!", "?")
DOCUMENT_READINGS = ("bare", "wire")


def as_wire_text(reference: Doc) -> Doc:
    """``reference`` with a line-break token (outside any entity) after every sentence but the
    last that ends without sentence-final punctuation - a dateline, a headline, a table row - as
    the original Reuters text separates them (benchmarks/bench_documents.py reads them the same)."""
    words: List[str] = []
    spaces: List[bool] = []
    tags: List[str] = []
    sentences = list(reference.sents)
    for k, sentence in enumerate(sentences):
        break_after = k < len(sentences) - 1 and sentence[-1].text not in SENTENCE_FINAL
        for token in sentence:
            words.append(token.text)
            spaces.append(bool(token.whitespace_) and not (break_after and token.i == sentence.end - 1))
            tags.append(token.ent_iob_ + ("-" + token.ent_type_ if token.ent_type_ else "") if token.ent_iob_ else "O")
        if break_after:
            words.append("\n")
            spaces.append(False)
            tags.append("O")
    return Doc(reference.vocab, words=words, spaces=spaces, ents=tags)


def document_examples(nlp, data: Path, limit: int, reading: str = "bare") -> List[Example]:
    """One Example per document, predicted without sentence boundaries, as ``nlp(article)`` sees
    an article: on its bare tokens (``bare``) or as wire text (``wire``: a line break after each
    unpunctuated sentence, see :func:`as_wire_text`)."""
    if reading not in DOCUMENT_READINGS:
        raise typer.BadParameter(f"--documents-as {reading!r}: expected one of {', '.join(DOCUMENT_READINGS)}")
    examples = []
    for example in Corpus(data)(nlp):
        if limit and len(examples) >= limit:
            break
        reference = as_wire_text(example.reference) if reading == "wire" else example.reference
        examples.append(Example(tokens_only(reference, nlp.vocab), reference))
    return examples


def trained_by(model: Path) -> Optional[Dict[str, Any]]:
    """What trained the pipeline: train.py's train_command.json next to model-best, if any."""
    record = model.resolve().parent / "train_command.json"
    if not record.exists():
        return None
    data = json.loads(record.read_text())
    return {"system": data.get("system"), "seed": data.get("seed"), "command": data.get("command"),
            "config_sha256": fingerprint(data.get("config", ""))}


def targets(target: str, data: Optional[Path], output: Optional[Path]) -> tuple:
    """(pipeline, data, output) for a system name or a pipeline folder."""
    if Path(target).is_dir():
        if data is None or output is None:
            raise typer.BadParameter(f"{target} is a pipeline folder: give DATA and OUTPUT too")
        return tuple(from_project(Path(target), data, output))
    if not (SYSTEMS / f"{target}.cfg").is_file():
        raise typer.BadParameter(f"{target!r} is neither a pipeline folder nor a system in {SYSTEMS}")
    data, output = from_project(data or PROJECT / TEST_DATA, output or PROJECT / "metrics" / f"{target}.json")
    return Path("training") / target / "model-best", data, output


def main(
    target: str = typer.Argument(..., help="A system (systems/NAME.cfg) or a trained pipeline folder"),
    data: Optional[Path] = typer.Argument(None, help=".spacy file (a system: corpus/test.spacy)"),
    output: Optional[Path] = typer.Argument(None, help="metrics JSON to write (a system: metrics/NAME.json)"),
    sentences: int = typer.Option(0, help="Evaluate on the first N sentences (0 = all)"),
    documents: int = typer.Option(
        0, help="Also evaluate whole documents: the first N (0 = all, -1 = skip)"
    ),
    documents_as: str = typer.Option(
        "bare", help="How a whole document is read: 'bare' (its tokens, no sentence boundaries) or "
        "'wire' (a line break after each unpunctuated sentence, as the Reuters text has)"
    ),
    batch_size: int = typer.Option(64, help="nlp.pipe batch size"),
    override: List[str] = typer.Option(
        [], help="Config override at load, KEY=VALUE (JSON value), e.g. "
        "components.llm_tagger.model.quantize=\"int8\"; repeatable"
    ),
    save_labels: Optional[Path] = typer.Option(
        None, help="Also write every test token's predicted entity label (IOB-TYPE) as JSON"
    ),
) -> None:
    command = "python scripts/evaluate.py " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    model, data, output = targets(target, data, output)
    overrides = dict(parse_override(item) for item in override)
    print(f"Evaluating {model} on {data}", file=sys.stderr, flush=True)
    nlp = spacy.load(model, config=overrides)
    examples = list(create_sentence_corpus(data, limit=sentences)(nlp))
    sentence_level = score_docs(nlp, examples, batch_size, save_labels, progress="sentences")
    size = sum(f.stat().st_size for f in Path(model).rglob("*") if f.is_file())
    result = {
        "model": str(model),
        "overrides": overrides,
        "sentences": len(examples),
        "size_mb": round(size / 2**20, 1),
        **sentence_level,
    }
    if documents >= 0:
        doc_examples = document_examples(nlp, data, documents, documents_as)
        result["document_level"] = {
            "documents": len(doc_examples), "read_as": documents_as,
            **score_docs(nlp, doc_examples, 8, progress="documents"),
        }
    # peak resident memory of this process: the loaded pipeline plus prediction
    result["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    result["environment"] = environment()
    result["command"] = command
    result["trained_by"] = trained_by(model)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(result, indent=2))
    keys = [k for k in ("ents_f", "ents_p", "ents_r", "tag_acc", "pos_acc") if k in result]
    keys += [k for k in result if k.startswith("spans_") and k.endswith("_f")]
    summary = {k: result[k] for k in ["sentences", "words_per_second", *keys]}
    if "document_level" in result:
        summary["documents"] = {k: result["document_level"].get(k) for k in ["documents", "words_per_second", *keys]}
    print(json.dumps(summary))


if __name__ == "__main__":
    typer.run(main)
