"""Annotating one shard: read its records, run the pipeline, serialize the result.

:class:`ShardAnnotator` loads the pipeline once and is what every engine runs: the local
engine calls it in its own process, the Ray engine makes it a Ray Data actor, so both give
the same bytes for the same shard.
"""
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Iterable, List, Union

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
        self.format = output_format
        self.batch_size = batch_size
        self.max_chars = max_chars

    def __call__(self, spec: ShardSpec) -> ShardResult:
        records, rejected = read_shard(spec, self.max_chars)
        inputs = [self._input(record) for record in records]
        docs = list(self.nlp.pipe(inputs, batch_size=self.batch_size))
        if self.format == "jsonl":
            payload = "".join(json.dumps(record_json(r, d), ensure_ascii=False) + "\n" for r, d in zip(records, docs)).encode("utf8")
        else:
            payload = docbin_bytes(records, docs)
        done = {"read": len(records) + len(rejected), "written": len(docs), "rejected": [r.to_dict() for r in rejected]}
        return ShardResult(spec, payload, done, sum(len(doc) for doc in docs))

    def _input(self, record: Record) -> Union[str, Doc]:
        if record.doc_bytes is None:
            return record.text
        doc = Doc(self.nlp.vocab).from_bytes(record.doc_bytes)
        doc.user_data.clear()
        return doc


def spans_json(spans: Iterable[Span]) -> List[Dict[str, Any]]:
    """Spans with character offsets and labels."""
    return [{"start": s.start_char, "end": s.end_char, "label": s.label_} for s in spans]


def record_json(record: Record, doc: Doc) -> Dict[str, Any]:
    """One output line: id, text, spans (the entities), span groups, every other input field."""
    line: Dict[str, Any] = {"id": record.id, "text": record.text, "spans": spans_json(doc.ents)}
    groups = {key: spans_json(group) for key, group in doc.spans.items()}
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
