"""Annotating one shard: read its records, run the pipeline, serialize the result.

:class:`ShardAnnotator` loads the pipeline once and is what every engine runs: the local
engine calls it in its own process, the Ray engine makes it a Ray Data actor, so both give
the same bytes for the same shard.
"""

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Sequence, Union

from spacy.tokens import Doc, DocBin, Span

from .inputs import DEFAULT_MAX_CHARS, Record, ShardSpec, read_shard

FORMATS = ("jsonl", "spacy")


@dataclass
class ShardResult:
    """A finished shard: its file's bytes and its ``done`` record (counts, rejected records)."""

    spec: ShardSpec
    payload: bytes
    done: Dict[str, Any]
    words: int


def load_pipeline(model: Union[str, Path], threads: int = 0) -> Any:
    import spacy

    if threads:
        import torch

        torch.set_num_threads(threads)
    return spacy.load(model)


class ShardAnnotator:
    """Loads the pipeline once; annotates whole shards."""

    def __init__(
        self,
        model: Union[str, Path],
        output_format: str = "jsonl",
        batch_size: int = 32,
        max_chars: int = DEFAULT_MAX_CHARS,
        threads: int = 0,
    ) -> None:
        self.nlp = load_pipeline(model, threads)
        self.ents_scores_key = ents_scores_key(self.nlp)
        self.format = output_format
        self.batch_size = batch_size
        self.max_chars = max_chars

    def __call__(self, spec: ShardSpec) -> ShardResult:
        records, rejected = read_shard(spec, self.max_chars)
        inputs = [self._input(record) for record in records]
        docs = list(self.nlp.pipe(inputs, batch_size=self.batch_size))
        if self.format == "jsonl":
            lines = (record_json(r, d, self.ents_scores_key) for r, d in zip(records, docs))
            payload = "".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines).encode("utf8")
        else:
            payload = docbin_bytes(records, docs)
        done = {
            "read": len(records) + len(rejected),
            "written": len(docs),
            "rejected": [r.to_dict() for r in rejected],
        }
        return ShardResult(spec, payload, done, sum(len(doc) for doc in docs))

    def _input(self, record: Record) -> Union[str, Doc]:
        if record.doc_bytes is None:
            return record.text
        doc = Doc(self.nlp.vocab).from_bytes(record.doc_bytes)
        doc.user_data.clear()
        return doc


def ents_scores_key(nlp: Any) -> Optional[str]:
    """The span group where the pipeline's llm_tagger puts its entities' probabilities."""
    from ..pipeline.llm_tagger import LLMTagger

    for _name, pipe in nlp.pipeline:
        if isinstance(pipe, LLMTagger) and pipe.confidences and pipe.cfg["target"] == "ents":
            return pipe.score_settings.scores_key
    return None


def spans_json(
    spans: Iterable[Span], scores: Optional[Sequence[Optional[float]]] = None
) -> List[Dict[str, Any]]:
    """Spans with character offsets, labels and, where known, probabilities."""
    out = [{"start": s.start_char, "end": s.end_char, "label": s.label_} for s in spans]
    for item, score in zip(out, scores or []):
        if score is not None:
            item["score"] = round(float(score), 3)  # 3 decimals: the same bytes from any engine
    return out


def record_json(record: Record, doc: Doc, scores_key: Optional[str] = None) -> Dict[str, Any]:
    """One output line: id, text, spans (the entities, with their probabilities), span groups
    (with theirs), every other input field."""
    ent_scores = None
    if scores_key is not None and scores_key in doc.spans:
        group = doc.spans[scores_key]
        by_span = {(s.start, s.end, s.label_): p for s, p in zip(group, group.attrs.get("scores", []))}
        ent_scores = [by_span.get((e.start, e.end, e.label_)) for e in doc.ents]
    line: Dict[str, Any] = {"id": record.id, "text": record.text, "spans": spans_json(doc.ents, ent_scores)}
    groups = {
        key: spans_json(group, group.attrs.get("scores"))
        for key, group in doc.spans.items()
        if key != scores_key
    }
    if groups:
        line["span_groups"] = groups
    for key, value in record.fields.items():
        line.setdefault(key, value)
    return line


def docbin_bytes(records: List[Record], docs: List[Doc]) -> bytes:
    """The annotated docs as a DocBin; each keeps its id and input fields in ``user_data``."""
    docbin = DocBin(store_user_data=True)
    for record, doc in zip(records, docs):
        doc.user_data["id"] = record.id
        doc.user_data["fields"] = record.fields
        docbin.add(doc)
    return docbin.to_bytes()
