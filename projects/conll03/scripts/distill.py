"""Distillation data: unlabeled text for the teacher, and the silver corpus from its labels.

    python scripts/distill.py unlabeled corpus/train.spacy corpus/unlabeled.spacy --skip 1000
    python scripts/distill.py silver annotations/silver corpus/silver.spacy --min-score 0.0
    python scripts/distill.py speed metrics/distill/speed.json corpus/test.spacy \
        --systems teacher=llm-unmasked,spacy-ner,distill/spacy-ner-silver
    python scripts/distill.py table metrics/distill/table.md --speed metrics/distill/speed.json \
        --systems teacher=llm-unmasked,spacy-ner,distill/spacy-ner-silver

(`--systems`: NAME=SYSTEM or SYSTEM, named by its last part; the pipeline is
training/SYSTEM/model-best and its metrics metrics/SYSTEM.json in the project, `teacher` is the
teacher. `--pipeline NAME=FOLDER`, `--teacher FILE` and `--student NAME=FILE` name them one by one.)
With `--teacher-model PIPELINE`, `unlabeled --skip` and `silver --gold-sentences` default to the
number of training sentences the teacher was trained on (its config's paths.train_sentences).

`unlabeled` keeps the training sentences the teacher was not trained on (those after the
first --skip, counted as the corpus readers count them), grouped by their documents, with
tokens and sentence boundaries and no labels. `silver` turns the annotate shards of those
documents into a training corpus: the teacher's entities, and with --min-score the tokens of
less probable entities marked missing (neither entity nor O), so a student learns nothing
there. With --gold it also appends the first --gold-sentences gold sentences.
"""
import json
from pathlib import Path
from typing import List, Optional, Tuple

import spacy
import typer
from spacy.tokens import Doc, DocBin, Span

app = typer.Typer(add_completion=False)
PROJECT = Path(__file__).resolve().parent.parent


def teacher_sentences(count: Optional[int], teacher_model: Optional[Path]) -> int:
    """COUNT, else the training sentences of the teacher pipeline (1,000 when neither says)."""
    if count is not None:
        return count
    if teacher_model is None:
        return 1000
    config = spacy.util.load_config(teacher_model / "config.cfg", interpolate=False)
    return int(config["paths"]["train_sentences"])


def systems_list(systems: str) -> List[Tuple[str, str]]:
    """[(name, system)] from "teacher=llm-unmasked,spacy-ner,distill/spacy-ner-silver"."""
    items = []
    for item in systems.split(","):
        if item.strip():
            name, _, system = item.strip().rpartition("=")
            items.append((name or system.rsplit("/", 1)[-1], system))
    return items


def sentence_docs(corpus: Path, vocab) -> List[Doc]:
    return list(DocBin().from_disk(corpus).get_docs(vocab))


@app.command()
def unlabeled(
    corpus: Path = typer.Argument(..., help="Gold training documents (.spacy)"),
    output: Path = typer.Argument(..., help="Unlabeled documents to write (.spacy)"),
    skip: Optional[int] = typer.Option(None, help="Sentences the teacher was trained on (left out; default 1000)"),
    limit: int = typer.Option(0, help="At most N sentences after --skip (0 = all)"),
    teacher_model: Optional[Path] = typer.Option(None, help="The teacher pipeline: --skip = its training sentences"),
) -> None:
    skip = teacher_sentences(skip, teacher_model)
    nlp = spacy.blank("en")
    count = kept = 0
    out = DocBin(attrs=["ORTH", "SENT_START"])
    for doc in sentence_docs(corpus, nlp.vocab):
        sentences = list(doc.sents) if doc.has_annotation("SENT_START") else [doc[:]]
        chosen = []
        for sentence in sentences:
            if not len(sentence):
                continue
            if count >= skip and (not limit or kept < limit):
                chosen.append(sentence)
                kept += 1
            count += 1
        if chosen:
            words = [t.text for s in chosen for t in s]
            spaces = [bool(t.whitespace_) for s in chosen for t in s]
            spaces[-1] = False
            starts = [i == 0 for s in chosen for i in range(len(s))]
            out.add(Doc(nlp.vocab, words=words, spaces=spaces, sent_starts=starts))
    output.parent.mkdir(parents=True, exist_ok=True)
    out.to_disk(output)
    print(f"{kept} unlabeled sentences (of {count}; the first {skip} left out) in {len(out)} documents: {output}")


@app.command()
def silver(
    shards: Path = typer.Argument(..., help="annotate OUTPUT folder of .spacy shards"),
    output: Path = typer.Argument(..., help="Silver training corpus to write (.spacy)"),
    min_score: float = typer.Option(0.0, help="Entities less probable than this become missing"),
    scores_key: str = typer.Option("scored_ents", help="The tagger's span group with scores"),
    gold: Optional[Path] = typer.Option(None, help="Also append gold sentences from this .spacy"),
    gold_sentences: Optional[int] = typer.Option(
        None, help="How many gold sentences (the teacher's training data; default 1000)"
    ),
    teacher_model: Optional[Path] = typer.Option(
        None, help="The teacher pipeline: --gold-sentences = its training sentences"
    ),
) -> None:
    gold_sentences = teacher_sentences(gold_sentences, teacher_model)
    nlp = spacy.blank("en")
    out = DocBin()
    entities = dropped = 0
    files = sorted(shards.glob("shard-*.spacy"))
    if not files:
        raise typer.BadParameter(f"no shard-*.spacy files in {shards}: run annotate with --format spacy")
    for shard in files:
        for doc in DocBin().from_disk(shard).get_docs(nlp.vocab):
            scores = {}
            if scores_key in doc.spans:
                group = doc.spans[scores_key]
                scores = {(s.start, s.end, s.label_): p for s, p in zip(group, group.attrs.get("scores", []))}
            ents = list(doc.ents)
            kept = [e for e in ents if scores.get((e.start, e.end, e.label_), 1.0) >= min_score]
            missing = [Span(doc, e.start, e.end) for e in ents if e not in kept]
            doc.set_ents(kept, missing=missing, default="outside")
            doc.spans.clear()
            doc.user_data.clear()
            entities += len(kept)
            dropped += len(missing)
            out.add(doc)
    teacher_docs = len(out)
    if gold is not None:
        added = 0
        for doc in sentence_docs(gold, nlp.vocab):
            for sentence in (doc.sents if doc.has_annotation("SENT_START") else [doc[:]]):
                if len(sentence) and added < gold_sentences:
                    out.add(sentence.as_doc())
                    added += 1
        print(f"appended {added} gold sentences from {gold}")
    output.parent.mkdir(parents=True, exist_ok=True)
    out.to_disk(output)
    print(f"silver: {teacher_docs} documents, {entities} entities kept, {dropped} under "
          f"{min_score} marked missing: {output}")


@app.command()
def speed(
    output: Path = typer.Argument(..., help="JSON to write: words/s per pipeline"),
    test: Path = typer.Argument(..., help="Texts to time (.spacy; one Doc per sentence)"),
    pipeline: List[str] = typer.Option([], help="NAME=pipeline folder, repeatable"),
    systems: str = typer.Option("", help="NAME=SYSTEM,...: the pipelines training/SYSTEM/model-best"),
    sentences: int = typer.Option(1000, help="First N test sentences to time"),
    rounds: int = typer.Option(2, help="Timed rounds per pipeline, taken in turn (the best counts)"),
) -> None:
    """Words/s of every pipeline on the same sentences in one run (nlp.pipe from plain text,
    after a warm-up), so the ratios are not skewed by other jobs at other times."""
    import time

    from spacy_llm_tagger.corpus import create_sentence_corpus

    nlp = spacy.blank("en")
    docs = [eg.reference for eg in create_sentence_corpus(test, limit=sentences)(nlp)]
    words = [[t.text for t in doc] for doc in docs]
    n_words = sum(len(w) for w in words)
    loaded = {}
    pipelines = [item.split("=", 1) for item in pipeline]
    pipelines += [(name, PROJECT / "training" / system / "model-best") for name, system in systems_list(systems)]
    for name, path in pipelines:
        loaded[name] = spacy.load(path)
        list(loaded[name].pipe(Doc(loaded[name].vocab, words=w) for w in words[:32]))  # warm-up
    best = {name: float("inf") for name in loaded}
    for _ in range(rounds):
        for name, model in loaded.items():
            start = time.perf_counter()
            for _doc in model.pipe(Doc(model.vocab, words=w) for w in words):
                pass
            best[name] = min(best[name], time.perf_counter() - start)
            print(f"{name}: {n_words / best[name]:.0f} words/s", flush=True)
    result = {"sentences": len(docs), "words": n_words, "rounds": rounds,
              "words_per_second": {name: n_words / seconds for name, seconds in best.items()}}
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(result, indent=2) + "\n")


@app.command()
def table(
    output: Path = typer.Argument(..., help="Markdown table to write"),
    teacher: Optional[Path] = typer.Option(None, help="The teacher's metrics JSON"),
    student: List[str] = typer.Option([], help="NAME=metrics.json, repeatable, in table order"),
    systems: str = typer.Option("", help="NAME=SYSTEM,...: metrics/SYSTEM.json (`teacher` is the teacher)"),
    speed_json: Optional[Path] = typer.Option(None, "--speed", help="words/s from `speed` (else the metrics' own)"),
) -> None:
    for name, system in systems_list(systems):
        metrics_file = PROJECT / "metrics" / f"{system}.json"
        if name == "teacher":
            teacher = metrics_file
        else:
            student = [*student, f"{name}={metrics_file}"]
    if teacher is None:
        raise typer.BadParameter("no teacher: give --teacher FILE or teacher=SYSTEM in --systems")
    def load(path: Path) -> dict:
        return json.loads(path.read_text())

    speeds = load(speed_json)["words_per_second"] if speed_json else {}

    def words_per_second(name: str, metrics: dict) -> float:
        return speeds.get(name, metrics["words_per_second"])

    def steps(metrics_path: Path) -> str:
        """Best / last step from the run's training folder (metrics/X.json <-> training/X)."""
        parts = list(metrics_path.with_suffix("").parts)
        parts[len(parts) - 1 - parts[::-1].index("metrics")] = "training"
        summary = Path(*parts) / "training_summary.json"
        if not summary.exists():
            return "?"
        data = load(summary)
        return f"{data.get('best_step', '?')} / {data.get('steps', '?')}"

    teach = load(teacher)
    teacher_wps = words_per_second("teacher", teach)
    rows = [
        "| system | test F1 | doc F1 | words/s | x teacher's words/s | size MB | best / last step |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, path in [("teacher", str(teacher))] + [item.split("=", 1) for item in student]:
        metrics = load(Path(path))
        wps = words_per_second(name, metrics)
        doc_f = 100 * metrics.get("document_level", {}).get("ents_f", float("nan"))
        label = f"teacher: {teacher.stem}" if name == "teacher" else name
        rows.append(
            f"| {label} | {100 * metrics['ents_f']:.1f} | {doc_f:.1f} | {wps:.0f} | "
            f"{wps / teacher_wps:.1f} | {metrics.get('size_mb', float('nan')):.0f} | {steps(Path(path))} |"
        )
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text("\n".join(rows) + "\n")
    print("\n".join(rows))


if __name__ == "__main__":
    app()
