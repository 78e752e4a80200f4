"""Hostile input and faults: nothing crashes deep in torch, nothing is dropped."""

import numpy as np
import pytest
import torch
from spacy.tokens import Doc, Span
from spacy.training import Example
from thinc.api import fix_random_seed

from spacy_llm_tagger.errors import ModelError, ModelNotFoundError

from .test_component import make_nlp, ner_examples, train

HOSTILE_TEXTS = [
    "",
    " ",
    "   \n\t  ",
    "word",
    "\x00\x01\x02 control \x07 chars \x1b[31m",
    "zero\u200bwidth\u200d joiner\ufeff bom",
    "emoji 👩‍👩‍👧‍👦 family 🏳️‍🌈 flag e\u0301 combining a\u0308\u0304",
    "עברית מימין לשמאל and العربية and 日本語のテキスト 中文 한국어",
    "https://example.com/" + "a" * 2000 + " and base64 " + "QUJD" * 500,
    "mixed\r\nnewlines\rand\n\n\nmore\u2028lines\u2029",
    "Peter Blackburn lives in Brussels .",
]


@pytest.fixture(scope="module")
def nlp(tiny_model_dir):
    nlp = make_nlp(tiny_model_dir, max_length=64, window_overlap=16)
    train(nlp, ner_examples(nlp), steps=3)
    return nlp


def ents(doc):
    return [(e.start, e.end, e.label_) for e in doc.ents]


@pytest.mark.parametrize("text", HOSTILE_TEXTS)
def test_hostile_text_gives_a_valid_doc(nlp, text):
    doc = nlp(text)
    assert doc.text == text
    for ent in doc.ents:
        assert 0 <= ent.start < ent.end <= len(doc)


def test_words_without_spaces_and_other_tokenizers(nlp):
    doc = Doc(nlp.vocab, words=["Peter", "Blackburn", "lives", "in", "Brussels"], spaces=[False] * 5)
    doc = nlp(doc)
    assert len(doc) == 5
    chars = Doc(nlp.vocab, words=list("PeterBlackburn"), spaces=[False] * 14)
    assert len(nlp(chars)) == 14


def test_very_long_doc_is_windowed_not_truncated(nlp):
    words = (["Peter", "Blackburn", "lives", "in", "Brussels", "."] * 17000)[:100_000]
    doc = Doc(nlp.vocab, words=words)
    tagger = nlp.get_pipe("llm_tagger")
    (scores,) = tagger.model.predict([doc])
    assert scores.shape[0] == 100_000 and np.isfinite(scores).all()
    doc = nlp(doc)
    assert len(doc) == 100_000


def test_pipe_many_mixed_docs_same_count_order_and_predictions(nlp):
    rng = np.random.default_rng(0)
    short = [t for t in HOSTILE_TEXTS if len(t) < 200]
    texts = [short[i] for i in rng.integers(0, len(short), 10_000)]
    texts[5000] = HOSTILE_TEXTS[8]  # one very long doc in the middle
    texts = [f"{t} {i}" if i % 3 else t for i, t in enumerate(texts)]
    one_by_one = {}
    for text in set(texts[:300]):
        one_by_one[text] = ents(nlp(text))
    for batch_size in (1, 256):
        subset = texts if batch_size == 256 else texts[:300]
        docs = list(nlp.pipe(subset, batch_size=batch_size))
        assert [d.text for d in docs] == subset
        for doc in docs[:300]:
            assert ents(doc) == one_by_one[doc.text]


def test_pipe_with_two_processes(nlp):
    texts = [f"Peter Blackburn {i} lives in Brussels ." for i in range(40)] + HOSTILE_TEXTS
    expected = [ents(d) for d in nlp.pipe(texts, batch_size=8)]
    docs = list(nlp.pipe(texts, batch_size=8, n_process=2))
    assert [d.text for d in docs] == texts
    assert [ents(d) for d in docs] == expected


def test_misaligned_and_empty_training_examples(tiny_model_dir):
    nlp = make_nlp(tiny_model_dir)
    examples = ner_examples(nlp)
    # reference tokenized differently from the predicted doc: aligned, not wrong
    ref = Doc(
        nlp.vocab,
        words=["PeterBlackburn", "lives", "in", "Brussels", "."],
        spaces=[True, True, True, False, False],
    )
    ref.ents = [Span(ref, 0, 1, "PER"), Span(ref, 3, 4, "LOC")]
    predicted = nlp.make_doc("PeterBlackburn lives in Brussels.")
    misaligned = Example(predicted, ref)
    empty = Example(nlp.make_doc(""), nlp.make_doc(""))
    nlp.initialize(lambda: examples + [misaligned, empty])
    losses = {}
    nlp.update([misaligned, empty], losses=losses)
    nlp.update([empty], losses=losses)
    assert np.isfinite(losses["llm_tagger"])
    gold = nlp.get_pipe("llm_tagger").target.gold(
        misaligned, {t: i for i, t in enumerate(nlp.get_pipe("llm_tagger").tag_names)}
    )
    assert len(gold) == len(predicted)


def test_simulated_out_of_memory_splits_the_batch(nlp, monkeypatch):
    tagger = nlp.get_pipe("llm_tagger")
    module = tagger.model.loaded.module
    texts = [f"Peter Blackburn {i} lives in Brussels ." for i in range(12)]
    expected = [tagger.model.ops.to_numpy(s) for s in tagger.model.predict([nlp.make_doc(t) for t in texts])]
    original = module.forward
    calls = []

    def forward_with_oom(*args, **kwargs):
        rows = kwargs["input_ids"].shape[0]
        calls.append(rows)
        if rows > 2:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (simulated)")
        return original(*args, **kwargs)

    monkeypatch.setattr(module, "forward", forward_with_oom)
    got = [tagger.model.ops.to_numpy(s) for s in tagger.model.predict([nlp.make_doc(t) for t in texts])]
    assert max(calls) > 2 and calls[-1] <= 2
    for a, b in zip(expected, got):
        np.testing.assert_allclose(a, b, atol=1e-5)


def test_out_of_memory_on_one_window_is_a_clear_error(nlp, monkeypatch):
    module = nlp.get_pipe("llm_tagger").model.loaded.module

    def always_oom(*args, **kwargs):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory (simulated)")

    monkeypatch.setattr(module, "forward", always_oom)
    with pytest.raises(MemoryError, match="max_length"):
        nlp("Peter lives in Brussels .")


def test_same_seed_same_adapters_and_predictions(tiny_model_dir):
    def run():
        nlp = make_nlp(tiny_model_dir, lora_dropout=0.1)
        train(nlp, ner_examples(nlp), steps=3)
        module = nlp.get_pipe("llm_tagger").model.loaded.module
        state = {k: v.clone() for k, v in module.state_dict().items() if "lora_" in k or "head" in k}
        return state, [ents(d) for d in nlp.pipe([t for t, _ in [("Peter lives in Brussels .", 0)]] * 2)]

    fix_random_seed(0)
    a_state, a_pred = run()
    b_state, b_pred = run()
    assert a_state.keys() == b_state.keys()
    for key in a_state:
        assert torch.equal(a_state[key], b_state[key]), key
    assert a_pred == b_pred


def test_garbage_gguf_file_is_a_clear_error(tmp_path):
    bad = tmp_path / "model.gguf"
    bad.write_bytes(b"not a gguf file at all")
    nlp = make_nlp(bad)
    with pytest.raises(ModelNotFoundError, match="model.gguf"):
        nlp.initialize(lambda: ner_examples(nlp))


def write_encoder_gguf(path):
    """A well-formed GGUF file holding a (tiny, random) BERT encoder, not a decoder."""
    gguf = pytest.importorskip("gguf")
    writer = gguf.GGUFWriter(str(path), "bert")
    writer.add_block_count(1)
    writer.add_embedding_length(8)
    writer.add_feed_forward_length(16)
    writer.add_head_count(2)
    writer.add_context_length(32)
    writer.add_tokenizer_model("bert")
    writer.add_token_list(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "hello", "world"])
    writer.add_tensor("token_embd.weight", np.random.rand(6, 8).astype(np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def test_encoder_gguf_file_is_a_clear_error(tmp_path):
    encoder = write_encoder_gguf(tmp_path / "bert-encoder.gguf")
    nlp = make_nlp(encoder)
    with pytest.raises((ModelError, ModelNotFoundError), match=r"bert-encoder\.gguf.*'bert'"):
        nlp.initialize(lambda: ner_examples(nlp))


def test_gguf_file_without_the_gguf_package_names_the_extra(tmp_path, monkeypatch):
    import importlib.util

    from spacy_llm_tagger.errors import MissingDependencyError

    model_file = tmp_path / "model.gguf"
    model_file.write_bytes(b"GGUF")
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "gguf" else find_spec(name, *a)
    )
    nlp = make_nlp(model_file)
    with pytest.raises(MissingDependencyError, match=r"spacy-llm-tagger\[gguf\]"):
        nlp.initialize(lambda: ner_examples(nlp))


def test_hub_id_offline_points_at_local_names(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))  # an empty cache
    nlp = make_nlp("no-such-org/no-such-model")
    with pytest.raises(
        ModelNotFoundError, match=r"(?s)no-such-org/no-such-model.*docs/models\.md.*HF_HUB_OFFLINE"
    ):
        nlp.initialize(lambda: ner_examples(nlp))
