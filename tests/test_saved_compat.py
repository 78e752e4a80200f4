"""Pipeline folders saved by release 0.1.0 load with today's code and predict the same.

The folders were written by ``tests/fixtures/make_saved_pipelines.py`` (see its docstring);
they carry their tiny base decoder (``store_base_weights = true``), so nothing is looked up.
"""

import json
from pathlib import Path

import numpy as np
import pytest
import spacy

SAVED = Path(__file__).parent / "fixtures" / "saved-0.1.0"
EXPECTED = json.loads((SAVED / "expected.json").read_text())
TEXTS = EXPECTED["texts"]


def test_llm_tagger_folder_from_0_1_0_loads_with_identical_predictions():
    nlp = spacy.load(SAVED / "llm_tagger_pipeline")
    tagger = nlp.get_pipe("llm_tagger")
    expected = EXPECTED["llm_tagger"]
    ents = [[[e.start, e.end, e.label_] for e in doc.ents] for doc in nlp.pipe(TEXTS)]
    assert ents == expected["ents"]
    scores = tagger.model.predict([nlp.make_doc(t) for t in TEXTS])
    assert len(scores) == len(expected["scores"])
    for got, want in zip(scores, expected["scores"]):
        np.testing.assert_allclose(
            tagger.model.ops.to_numpy(got), np.asarray(want).reshape(-1, got.shape[1]), atol=1e-4
        )


def test_llm_tagger_folder_from_0_1_0_round_trips(tmp_path):
    nlp = spacy.load(SAVED / "llm_tagger_pipeline")
    nlp.to_disk(tmp_path / "again")
    again = spacy.load(tmp_path / "again")
    got = [[[e.start, e.end, e.label_] for e in doc.ents] for doc in again.pipe(TEXTS)]
    assert got == EXPECTED["llm_tagger"]["ents"]


@pytest.mark.trf
def test_transformer_folder_from_0_1_0_loads_with_identical_predictions():
    pytest.importorskip("spacy_transformers")
    nlp = spacy.load(SAVED / "transformer_pipeline")
    expected = EXPECTED["transformer"]
    docs = list(nlp.pipe(TEXTS))
    assert [[[e.start, e.end, e.label_] for e in doc.ents] for doc in docs] == expected["ents"]
    assert [[t.tag_ for t in doc] for doc in docs] == expected["tags"]
    for doc, want in zip(docs, expected["token_states"]):
        if not len(doc):
            assert want == []
            continue
        data = doc._.trf_data
        states = data.model_output.last_hidden_state
        rows = states.reshape(-1, states.shape[-1])[data.align.data]
        np.testing.assert_allclose(rows, np.asarray(want), atol=1e-4)
