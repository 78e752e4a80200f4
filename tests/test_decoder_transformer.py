"""The decoder as a spacy-transformers encoder shared by stock `ner` and `tagger` listeners."""

from pathlib import Path

import numpy as np
import pytest
import spacy
import torch
from spacy.training import Example
from spacy.util import fix_random_seed, load_config, load_model_from_config

pytest.importorskip("spacy_transformers")
pytestmark = pytest.mark.trf

CONFIG = Path(__file__).parent.parent / "projects" / "conll03" / "configs" / "llm_trf_ner_tag.cfg"

TRAIN_DATA = [
    (
        "Peter Blackburn visited Brussels on Monday .",
        ["NNP", "NNP", "VBD", "NNP", "IN", "NNP", "."],
        [(0, 2, "PER"), (3, 4, "LOC")],
    ),
    (
        "The European Commission said it disagreed .",
        ["DT", "NNP", "NNP", "VBD", "PRP", "VBD", "."],
        [(1, 3, "ORG")],
    ),
    (
        "Germany imports lamb from Britain .",
        ["NNP", "VBZ", "NN", "IN", "NNP", "."],
        [(0, 1, "LOC"), (4, 5, "LOC")],
    ),
    (
        "John Smith works for Google in London .",
        ["NNP", "NNP", "VBZ", "IN", "NNP", "IN", "NNP", "."],
        [(0, 2, "PER"), (4, 5, "ORG"), (6, 7, "LOC")],
    ),
]


def make_nlp(model_dir, **model_overrides):
    config = load_config(CONFIG)
    config["components"]["transformer"]["model"]["name"] = str(model_dir)
    config["components"]["transformer"]["model"]["unmask"] = "01"
    config["components"]["transformer"]["model"].update(model_overrides)
    return load_model_from_config(config, auto_fill=True, validate=True)


def examples(nlp):
    out = []
    for text, tags, ents in TRAIN_DATA:
        reference = nlp.make_doc(text)
        for token, tag in zip(reference, tags):
            token.tag_ = tag
        reference.ents = [spacy.tokens.Span(reference, s, e, label=label) for s, e, label in ents]
        out.append(Example(nlp.make_doc(text), reference))
    return out


def decoder_module(nlp):
    return nlp.get_pipe("transformer").model.loaded.module


def lora_b_grads(nlp):
    return {
        name: param.grad.detach().clone()
        for name, param in decoder_module(nlp).named_parameters()
        if "lora_B" in name and param.grad is not None
    }


def zero_grads(nlp):
    for param in decoder_module(nlp).parameters():
        param.grad = None


def set_grad_factors(nlp, ner: float, tagger: float):
    for name, factor in (("ner", ner), ("tagger", tagger)):
        for node in nlp.get_pipe(name).model.walk():
            if node.name == "trfs2arrays":
                node.attrs["grad_factor"] = factor


@pytest.fixture(scope="module")
def trained(tiny_model_dir):
    fix_random_seed(0)
    nlp = make_nlp(tiny_model_dir)
    egs = examples(nlp)
    optimizer = nlp.initialize(lambda: egs)
    losses = {}
    for _ in range(8):
        nlp.update(egs, sgd=optimizer, drop=0.0, losses=losses)
    return nlp


def test_listeners_get_one_row_per_token(trained):
    nlp = trained
    docs = list(nlp.pipe(["Peter Blackburn visited Brussels .", "", "Hi"]))
    assert [len(d) for d in docs] == [5, 0, 1]
    data = docs[0]._.trf_data
    hidden = data.model_output.last_hidden_state
    width = nlp.get_pipe("transformer").model.get_dim("nO")
    assert hidden.shape[0] == 1 and hidden.shape[-1] == width
    assert list(data.align.lengths) == [1] * 5  # pooling "first": one subword per token
    assert data.wordpieces.lengths[0] == len(data.wordpieces.strings[0])
    assert [t.tag_ for t in docs[0]] and all(t.tag_ for t in docs[0])


def test_long_doc_uses_overlapping_windows(tiny_model_dir):
    fix_random_seed(0)
    nlp = make_nlp(tiny_model_dir, max_length=16, window_overlap=4)
    nlp.initialize(lambda: examples(nlp))
    text = " ".join(["Peter visited Brussels on Monday ."] * 20)
    doc = nlp(text)
    data = doc._.trf_data
    assert data.model_output.last_hidden_state.shape[0] > 5
    assert len(data.align.lengths) == len(doc)
    assert len(doc) == 120 and all(t.tag_ for t in doc)
    # the same doc inside a batch of other docs gets the same features
    alone = doc._.trf_data.model_output.last_hidden_state
    batch = list(nlp.pipe(["Hello .", text, "Germany imports lamb ."]))
    in_batch = batch[1]._.trf_data
    per_token = lambda d: d.model_output.last_hidden_state.reshape(-1, alone.shape[-1])[d.align.data]
    np.testing.assert_allclose(per_token(data), per_token(in_batch), atol=1e-5)


def test_simulated_out_of_memory_splits_the_windows(trained, monkeypatch):
    nlp = trained
    texts = [t for t, _, _ in TRAIN_DATA]
    expected = [d._.trf_data.model_output.last_hidden_state for d in nlp.pipe(texts)]
    module = decoder_module(nlp)
    original = module.forward
    calls = []

    def forward_with_oom(input_ids, attention_mask, position_ids):
        calls.append(input_ids.shape[0])
        if input_ids.shape[0] > 1:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (simulated)")
        return original(input_ids, attention_mask, position_ids)

    monkeypatch.setattr(module, "forward", forward_with_oom)
    got = [d._.trf_data.model_output.last_hidden_state for d in nlp.pipe(texts)]
    assert calls[0] == len(texts) and calls.count(1) == len(texts)
    for a, b in zip(expected, got):
        np.testing.assert_allclose(a, b, atol=1e-5)


def test_mean_pooling_aligns_every_subword(tiny_model_dir):
    nlp = make_nlp(tiny_model_dir, pooling="mean")
    nlp.initialize(lambda: examples(nlp))
    doc = nlp("Blackburnshire unbelievably .")
    lengths = doc._.trf_data.align.lengths
    assert len(lengths) == 3 and lengths.sum() > 3


def test_both_components_send_gradients_to_the_adapters(trained):
    nlp = trained
    egs = examples(nlp)
    grads = {}
    for key, factors in {"ner": (1.0, 0.0), "tagger": (0.0, 1.0), "both": (1.0, 1.0)}.items():
        zero_grads(nlp)
        set_grad_factors(nlp, *factors)
        nlp.update(egs, sgd=False, drop=0.0)
        grads[key] = lora_b_grads(nlp)
    set_grad_factors(nlp, 1.0, 1.0)
    zero_grads(nlp)
    assert grads["ner"] and grads["tagger"]
    norm = lambda g: float(sum(v.norm() ** 2 for v in g.values()) ** 0.5)
    assert norm(grads["ner"]) > 0 and norm(grads["tagger"]) > 0
    for name, both in grads["both"].items():
        torch.testing.assert_close(both, grads["ner"][name] + grads["tagger"][name], rtol=1e-4, atol=1e-6)


def test_training_changes_the_adapters_only(tiny_model_dir, trained):
    module = decoder_module(trained)
    changed = {name for name, p in module.named_parameters() if "lora_B" in name and p.abs().sum() > 0}
    assert changed, "LoRA B matrices start at zero and must have been trained"
    assert all(not p.requires_grad for n, p in module.named_parameters() if "lora_" not in n)


def test_save_and_load_offline_identical(trained, tmp_path):
    nlp = trained
    texts = [t for t, _, _ in TRAIN_DATA] + ["Maria flew to Paris ."]
    before = list(nlp.pipe(texts))
    nlp.to_disk(tmp_path / "pipe")
    assert (tmp_path / "pipe" / "transformer" / "model").is_file()
    loaded = spacy.load(tmp_path / "pipe")
    after = list(loaded.pipe(texts))
    for a, b in zip(before, after):
        assert [(e.start, e.end, e.label_) for e in a.ents] == [(e.start, e.end, e.label_) for e in b.ents]
        assert [t.tag_ for t in a] == [t.tag_ for t in b]
        np.testing.assert_array_equal(
            a._.trf_data.model_output.last_hidden_state,
            b._.trf_data.model_output.last_hidden_state,
        )


def test_trains_from_the_config_with_spacy_train(tiny_model_dir, tmp_path):
    from spacy.cli.train import train
    from spacy.tokens import DocBin

    nlp = spacy.blank("en")
    docs = [eg.reference for eg in examples(nlp)] * 3
    DocBin(docs=docs).to_disk(tmp_path / "train.spacy")
    DocBin(docs=docs[:4]).to_disk(tmp_path / "dev.spacy")
    overrides = {
        "paths.train": str(tmp_path / "train.spacy"),
        "paths.dev": str(tmp_path / "dev.spacy"),
        "components.transformer.model.name": str(tiny_model_dir),
        "components.transformer.model.unmask": "01",
        "training.max_epochs": 20,
        "training.eval_frequency": 10,
        "training.optimizer.learn_rate": 0.01,
        "training.logger.progress_bar": None,
    }
    train(CONFIG, tmp_path / "out", overrides=overrides)
    best = spacy.load(tmp_path / "out" / "model-best")
    assert best.pipe_names == ["transformer", "ner", "tagger"]
    scores = best.evaluate(examples(best))
    assert scores["tag_acc"] > 0.7 and scores["ents_f"] > 0.5, scores


LISTENER = {
    "@architectures": "spacy-transformers.TransformerListener.v1",
    "grad_factor": 1.0,
    "pooling": {"@layers": "reduce_mean.v1"},
}

SPAN_CAT_DATA = [
    ("Peter visited Brussels .", [(0, 5, "PER"), (14, 22, "LOC")], "TRAVEL"),
    ("Germany imports lamb .", [(0, 7, "LOC")], "TRADE"),
    ("John likes Paris .", [(0, 4, "PER"), (11, 16, "LOC")], "TRAVEL"),
]


def test_spancat_and_textcat_listen_to_the_same_decoder(tiny_model_dir):
    fix_random_seed(0)
    nlp = spacy.blank("en")
    nlp.add_pipe(
        "transformer",
        config={
            "model": {
                "@architectures": "spacy-llm-tagger.DecoderTransformerModel.v1",
                "name": str(tiny_model_dir),
                "unmask": "01",
                "lora_r": 4,
                "lora_alpha": 8,
            }
        },
    )
    nlp.add_pipe(
        "spancat",
        config={
            "spans_key": "sc",
            "model": {
                "@architectures": "spacy.SpanCategorizer.v1",
                "reducer": {"@layers": "spacy.mean_max_reducer.v1", "hidden_size": 32},
                "scorer": {"@layers": "spacy.LinearLogistic.v1"},
                "tok2vec": LISTENER,
            },
        },
    )
    nlp.add_pipe(
        "textcat",
        config={
            "model": {
                "@architectures": "spacy.TextCatReduce.v1",
                "exclusive_classes": True,
                "use_reduce_first": False,
                "use_reduce_last": False,
                "use_reduce_max": False,
                "use_reduce_mean": True,
                "tok2vec": LISTENER,
            }
        },
    )
    egs = []
    for text, spans, cat in SPAN_CAT_DATA:
        cats = {label: float(label == cat) for label in ("TRAVEL", "TRADE")}
        egs.append(Example.from_dict(nlp.make_doc(text), {"spans": {"sc": spans}, "cats": cats}))
    optimizer = nlp.initialize(lambda: egs)
    first = last = None
    for _ in range(15):
        losses = nlp.update(egs, sgd=optimizer, drop=0.0, losses={})
        first = first or dict(losses)
        last = losses
    for name in ("spancat", "textcat"):
        assert last[name] < first[name], (name, first, last)
    doc = nlp("Peter visited Brussels .")
    assert set(doc.cats) == {"TRAVEL", "TRADE"}
    assert "sc" in doc.spans
    module = decoder_module(nlp)
    assert any(p.abs().sum() > 0 for n, p in module.named_parameters() if "lora_B" in n)


def test_replace_listeners_is_a_clear_error(trained):
    before = trained.config.to_str()
    with pytest.raises(NotImplementedError, match="replace_listeners"):
        trained.replace_listeners("transformer", "tagger", ["model.tok2vec"])
    assert trained.config.to_str() == before


def test_nf4_base_under_the_shared_decoder(tiny_model_dir):
    pytest.importorskip("bitsandbytes")
    fix_random_seed(0)
    nlp = make_nlp(tiny_model_dir, quantize_base="nf4")
    egs = examples(nlp)
    optimizer = nlp.initialize(lambda: egs)
    first = last = None
    for _ in range(8):
        losses = {}
        nlp.update(egs, sgd=optimizer, drop=0.0, losses=losses)
        first = first or losses["ner"]
        last = losses["ner"]
    assert last < first
    assert (
        type(decoder_module(nlp).decoder.get_base_model().layers[0].mlp.up_proj.base_layer).__name__
        == "Linear4bit"
    )
    assert [len(doc) for doc in nlp.pipe(["Berlin is in Germany .", "Peter visited Brussels ."])] == [5, 4]
