"""`spacy-llm-tagger annotate`: order, count, bad input, resume after kill -9, engines agree."""

import importlib.util
import json
import os
import signal
import subprocess
import sys
import time

import pytest
import spacy
from spacy.tokens import DocBin

from spacy_llm_tagger.annotate import annotate
from spacy_llm_tagger.errors import ConfigError, DataError, ModelNotFoundError

from .test_component import save_trained_pipeline
from .util import SENTENCES, make_tiny_model_dir

HAS_RAY = importlib.util.find_spec("ray") is not None


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    base = make_tiny_model_dir(tmp_path_factory.mktemp("base"), "llama")
    return save_trained_pipeline(base, tmp_path_factory.mktemp("pipeline") / "pipe", steps=20)


def write_jsonl(path, lines):
    with open(path, "wb") as f:
        for line in lines:
            f.write(line if isinstance(line, bytes) else line.encode("utf8"))
            f.write(b"\n")
    return path


GOOD = [
    json.dumps({"id": f"doc-{i}", "text": text, "source": "test"}, ensure_ascii=False)
    for i, text in enumerate(SENTENCES)
]
BAD = [
    "{not json",
    json.dumps({"title": "no text"}),
    json.dumps({"text": 42}),
    b"\xff\xfe broken utf-8",
    json.dumps({"text": "x" * 300}),
    "",
    json.dumps(["a", "list"]),
]


@pytest.fixture
def mixed_input(tmp_path):
    # valid records with bad ones between them, and an empty text (valid, no spans)
    lines = [
        GOOD[0],
        BAD[0],
        GOOD[1],
        BAD[1],
        BAD[2],
        GOOD[2],
        BAD[3],
        BAD[4],
        BAD[5],
        BAD[6],
        json.dumps({"text": ""}),
        *GOOD[3:],
    ]
    return write_jsonl(tmp_path / "in.jsonl", lines)


def read_output(folder, suffix="jsonl"):
    lines = []
    for shard in sorted(folder.glob(f"shard-*.{suffix}")):
        lines.extend(json.loads(line) for line in shard.read_text().splitlines())
    return lines


def test_every_valid_record_once_in_order_bad_ones_reported(pipeline, mixed_input, tmp_path):
    out = tmp_path / "out"
    totals = annotate(pipeline, mixed_input, out, shard_size=4, max_chars=250, progress=False)
    lines = read_output(out)
    expected_ids = [f"doc-{i}" for i in range(len(SENTENCES))]
    assert [line["id"] for line in lines if line["id"] != 11] == expected_ids
    empty = [line for line in lines if line["text"] == ""]
    assert len(empty) == 1 and empty[0]["spans"] == [] and empty[0]["id"] == 11  # line number
    assert all(line["source"] == "test" for line in lines if line["text"])
    nlp = spacy.load(pipeline)
    for line in lines:
        doc = nlp(line["text"])
        scores = doc.spans["scored_ents"].attrs["scores"]
        assert line["spans"] == [
            {"start": e.start_char, "end": e.end_char, "label": e.label_, "score": round(p, 3)}
            for e, p in zip(doc.ents, scores)
        ]
    errors = [json.loads(line) for line in (out / "errors.jsonl").read_text().splitlines()]
    assert [e["line"] for e in errors] == [2, 4, 5, 7, 8, 9, 10]
    reasons = " | ".join(e["reason"] for e in errors)
    for expected in (
        "invalid JSON",
        "no 'text' field",
        "'text' is int",
        "invalid UTF-8",
        "over the limit",
        "empty line",
        "expected a JSON object",
    ):
        assert expected in reasons
    assert totals == {"shards": 4, "read": len(SENTENCES) + 8, "written": len(SENTENCES) + 1, "rejected": 7}
    assert json.loads((out / "summary.json").read_text()) == totals


def test_txt_and_spacy_inputs_and_spacy_output(pipeline, tmp_path):
    folder = tmp_path / "inputs"
    folder.mkdir()
    (folder / "a.txt").write_text("\n".join(SENTENCES[:3]) + "\n")
    nlp = spacy.blank("en")
    docbin = DocBin(store_user_data=True)
    for text in SENTENCES[2:7]:  # three shards of one DocBin
        docbin.add(nlp(text))
    docbin.to_disk(folder / "b.spacy")
    out = tmp_path / "out"
    totals = annotate(pipeline, folder, out, output_format="spacy", shard_size=2, progress=False)
    assert totals["written"] == 8 and totals["rejected"] == 0
    docs = []
    for shard in sorted(out.glob("shard-*.spacy")):
        docs.extend(DocBin().from_disk(shard).get_docs(nlp.vocab))
    assert [d.text for d in docs] == SENTENCES[:3] + SENTENCES[2:7]
    assert [d.user_data["id"] for d in docs] == [1, 2, 3, 1, 2, 3, 4, 5]


def test_review_queue_least_confident_first(pipeline, mixed_input, tmp_path):
    out = tmp_path / "out"
    annotate(pipeline, mixed_input, out, shard_size=4, progress=False, review=3)
    queue = [json.loads(line) for line in (out / "review.jsonl").read_text().splitlines()]
    scored = [line for line in read_output(out) if any("score" in s for s in line["spans"])]
    assert len(queue) == min(3, len(scored)) > 0
    lowest = sorted(min(s["score"] for s in line["spans"]) for line in scored)[: len(queue)]
    assert [task["meta"]["min_score"] for task in queue] == lowest
    for task in queue:
        assert set(task) == {"text", "spans", "meta"}
        assert all({"start", "end", "label", "score"} <= set(span) for span in task["spans"])
    with pytest.raises(ConfigError, match="--format jsonl"):
        annotate(pipeline, mixed_input, tmp_path / "other", output_format="spacy", review=3, progress=False)


def test_clear_errors_before_any_work(pipeline, tmp_path):
    good = write_jsonl(tmp_path / "in.jsonl", GOOD)
    with pytest.raises(ModelNotFoundError, match="neither a pipeline folder nor an installed"):
        annotate(tmp_path / "no-such-model", good, tmp_path / "out")
    with pytest.raises(DataError, match="does not exist"):
        annotate(pipeline, tmp_path / "missing.jsonl", tmp_path / "out")
    (tmp_path / "in.csv").write_text("a,b\n")
    with pytest.raises(DataError, match="unsupported file type"):
        annotate(pipeline, tmp_path / "in.csv", tmp_path / "out")
    with pytest.raises(ConfigError, match="need --engine ray"):
        annotate(pipeline, good, tmp_path / "out", workers=2)
    annotate(pipeline, good, tmp_path / "out", shard_size=3, progress=False)
    with pytest.raises(DataError, match="another run"):
        annotate(pipeline, good, tmp_path / "out", shard_size=2, progress=False)
    assert not (tmp_path / "out2").exists()
    (tmp_path / "empty.jsonl").write_text("")
    with pytest.raises(DataError, match="holds no records"):
        annotate(pipeline, tmp_path / "empty.jsonl", tmp_path / "out3")


def test_a_retrained_model_does_not_reuse_the_results_of_the_old_one(pipeline, tmp_path):
    import shutil

    model = tmp_path / "model"
    shutil.copytree(pipeline, model)
    good = write_jsonl(tmp_path / "in.jsonl", GOOD)
    annotate(model, good, tmp_path / "out", progress=False)
    annotate(model, good, tmp_path / "out", progress=False)  # same model: resumes (nothing to do)
    meta = model / "meta.json"
    meta.write_text(meta.read_text())  # the folder written again, as a retraining does
    os.utime(meta, ns=(time.time_ns() + 10**9, time.time_ns() + 10**9))
    with pytest.raises(DataError, match="retrained"):
        annotate(model, good, tmp_path / "out", progress=False)


def test_resumes_after_kill_9(pipeline, tmp_path):
    records = [json.dumps({"id": i, "text": SENTENCES[i % len(SENTENCES)]}) for i in range(120)]
    source = write_jsonl(tmp_path / "in.jsonl", records)
    command = [
        sys.executable,
        "-m",
        "spacy_llm_tagger",
        "annotate",
        str(pipeline),
        str(source),
        str(tmp_path / "out"),
        "--shard-size",
        "4",
        "--batch-size",
        "4",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 600  # a slow or busy machine still gets its 3 shards
    while time.time() < deadline and len(list((tmp_path / "out").glob("*.done.json"))) < 3:
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    finished = len(list((tmp_path / "out").glob("*.done.json")))
    assert 3 <= finished < 30, "the run must be killed part-way"
    rerun = subprocess.run(command, env=env, capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stderr
    assert "resuming" in rerun.stderr and "120 records read, 120 written, 0 rejected" in rerun.stderr
    assert [line["id"] for line in read_output(tmp_path / "out")] == list(range(120))
    assert not list((tmp_path / "out").glob(".*partial*"))


@pytest.mark.skipif(not HAS_RAY, reason="needs ray[data] (pip install 'spacy-llm-tagger[ray]')")
def test_ray_engine_gives_the_local_output(pipeline, mixed_input, tmp_path):
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        annotate(pipeline, mixed_input, tmp_path / "local", shard_size=3, progress=False)
        annotate(
            pipeline, mixed_input, tmp_path / "ray", engine="ray", workers=2, shard_size=3, progress=False
        )
    finally:
        ray.shutdown()
    for name in ("errors.jsonl", "summary.json"):
        assert (tmp_path / "local" / name).read_text() == (tmp_path / "ray" / name).read_text()
    local = sorted((tmp_path / "local").glob("shard-*.jsonl"))
    assert [p.name for p in local] == [p.name for p in sorted((tmp_path / "ray").glob("shard-*.jsonl"))]
    for shard in local:
        assert shard.read_bytes() == (tmp_path / "ray" / shard.name).read_bytes()
