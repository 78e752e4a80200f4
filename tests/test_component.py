"""The llm_tagger component on a tiny random decoder: training, decoding, targets."""

import numpy as np
import pytest
import spacy
from spacy.tokens import Span
from spacy.training import Example
from thinc.api import fix_random_seed

from spacy_llm_tagger.errors import ConfigError, DataError

from .util import SENTENCES

NER_DATA = [
    ("Peter Blackburn lives in Brussels .", [(0, 15, "PER"), (25, 33, "LOC")]),
    ("EU rejects German call to boycott British lamb .", [(0, 2, "ORG"), (11, 17, "MISC"), (34, 41, "MISC")]),
    ("Apple Inc. opened a store in San Francisco .", [(0, 10, "ORG"), (29, 42, "LOC")]),
    ("Werner Zwingmann said on Wednesday .", [(0, 16, "PER")]),
]


def ner_examples(nlp):
    examples = []
    for text, ents in NER_DATA:
        doc = nlp.make_doc(text)
        ref = nlp.make_doc(text)
        ref.ents = [ref.char_span(s, e, label=label) for s, e, label in ents]
        examples.append(Example(doc, ref))
    return examples


def make_nlp(model_dir, target="ents", warmup_steps=0, **model):
    """A blank pipeline with a tiny llm_tagger; no warm-up, so a few updates fit (test_warmup.py
    covers the default's)."""
    nlp = spacy.blank("en")
    model = {"name": str(model_dir), "lora_r": 4, "lora_alpha": 8, **model}
    config = {"target": target, "warmup_steps": warmup_steps, "model": model}
    nlp.add_pipe("llm_tagger", config=config)
    return nlp


def train(nlp, examples, steps=30, lr=0.01):
    fix_random_seed(0)
    optimizer = nlp.initialize(lambda: examples)
    optimizer.learn_rate = lr
    losses = []
    for _ in range(steps):
        step = {}
        nlp.update(examples, sgd=optimizer, losses=step, drop=0.0)
        losses.append(step["llm_tagger"])
    return losses


def save_trained_pipeline(model_dir, path, steps):
    """A pipeline with a tiny llm_tagger trained ``steps`` updates on ``ner_examples``, saved at
    ``path`` (annotate, calibrate and the docs' examples read one)."""
    nlp = make_nlp(model_dir, head_dropout=0.0)
    train(nlp, ner_examples(nlp), steps=steps, lr=0.02)
    path.parent.mkdir(parents=True, exist_ok=True)
    nlp.to_disk(path)
    return path


def test_training_reduces_loss_and_fits(tiny_model_dir):
    nlp = make_nlp(tiny_model_dir, head_dropout=0.0, lora_dropout=0.0)
    examples = ner_examples(nlp)
    losses = train(nlp, examples, steps=40, lr=0.02)
    assert losses[-1] < losses[0] * 0.3, losses
    scores = nlp.evaluate(examples)
    assert scores["ents_f"] > 0.7, scores
    assert "PER" in scores["ents_per_type"]


def test_only_adapters_and_head_get_gradients(tiny_model_dir):
    nlp = make_nlp(tiny_model_dir)
    examples = ner_examples(nlp)
    nlp.initialize(lambda: examples)
    tagger = nlp.get_pipe("llm_tagger")
    module = tagger.model.loaded.module
    trainable = {n for n, p in module.named_parameters() if p.requires_grad}
    assert trainable and all(("lora_" in n) or n.startswith("head.") for n in trainable)
    tagger.update(examples, sgd=None)
    with_grad = {n for n, p in module.named_parameters() if p.grad is not None}
    assert any("lora_B" in n for n in with_grad) and "head.weight" in with_grad
    assert with_grad <= trainable


def test_decoded_entities_are_valid_spans(tiny_model_dir):
    nlp = make_nlp(tiny_model_dir)
    nlp.initialize(lambda: ner_examples(nlp))
    for doc in nlp.pipe(SENTENCES):
        starts = [e.start for e in doc.ents]
        assert starts == sorted(starts)
        for ent in doc.ents:
            assert ent.label_ in ("PER", "LOC", "ORG", "MISC")
        iobs = [t.ent_iob_ for t in doc]
        for prev, cur, tok_prev, tok in zip(iobs, iobs[1:], doc, doc[1:]):
            if cur == "I":
                assert prev in ("B", "I") and tok.ent_type_ == tok_prev.ent_type_


def test_bio_viterbi_never_produces_invalid_tags():
    from spacy_llm_tagger.pipeline.decoding import bio_constraints, bio_to_spans, viterbi_bio

    rng = np.random.default_rng(0)
    start, allowed = bio_constraints(3)
    for _ in range(50):
        scores = rng.normal(size=(12, 7)) * 3
        path = viterbi_bio(scores, start, allowed)
        assert start[path[0]]
        assert all(allowed[a, b] for a, b in zip(path, path[1:]))
        covered = [i for s, e, _ in bio_to_spans(path) for i in range(s, e)]
        assert len(covered) == len(set(covered))


def test_batched_viterbi_equals_one_doc_at_a_time():
    from spacy_llm_tagger.pipeline.decoding import bio_constraints, viterbi_bio, viterbi_bio_batch

    rng = np.random.default_rng(1)
    start, allowed = bio_constraints(4)
    lengths = [0, 1, 2, 7, 30, 3, 0, 120, 5, 1]
    seqs = [rng.normal(size=(n, 9)) * 3 for n in lengths]
    for max_cells in (1 << 16, 64):  # one group, or many small groups
        batched = viterbi_bio_batch(seqs, start, allowed, max_cells=max_cells)
        assert [len(p) for p in batched] == lengths
        for seq, path in zip(seqs, batched):
            np.testing.assert_array_equal(path, viterbi_bio(seq, start, allowed))


def test_whitespace_tokens_are_decoded_around():
    """As spaCy's ner: no entity starts or ends on a whitespace token; one inside an entity
    (a name wrapped over a line break) stays inside it."""
    from spacy_llm_tagger.pipeline.decoding import tags_around_spaces, whitespace_tokens

    doc = spacy.blank("en")("Peter\nBlackburn \n\n lives")
    spaces = whitespace_tokens(doc)
    assert [t.text for t in doc] == ["Peter", "\n", "Blackburn", "\n\n ", "lives"]
    assert spaces.tolist() == [False, True, False, True, False]
    # tags of the non-space tokens (O = 0, B-A = 1, I-A = 2, B-B = 3, I-B = 4)
    assert tags_around_spaces(np.array([1, 2, 0]), spaces).tolist() == [1, 2, 2, 0, 0]
    assert tags_around_spaces(np.array([1, 1, 0]), spaces).tolist() == [1, 0, 1, 0, 0]
    assert tags_around_spaces(np.array([3, 4, 4]), spaces).tolist() == [3, 4, 4, 4, 4]
    assert tags_around_spaces(np.array([0, 1, 2]), spaces).tolist() == [0, 0, 1, 2, 2]
    assert tags_around_spaces(np.zeros(0, dtype=np.int64), np.ones(2, dtype=bool)).tolist() == [0, 0]


def test_no_entity_starts_or_ends_on_a_line_break(tiny_model_dir):
    """Whatever the head scores the whitespace tokens, entities and their confidences skip
    them; the spans and their probabilities are those of the text without them."""
    nlp = make_nlp(tiny_model_dir)
    pipe = nlp.get_pipe("llm_tagger")
    pipe.add_label("PER")
    nlp.initialize()
    doc = nlp.make_doc("Peter\nBlackburn lives \n in\n\nBrussels")
    spaces = np.array([t.is_space for t in doc])
    # the head "says" B-PER everywhere, I-PER on Blackburn
    scores = np.tile(np.array([0.0, 5.0, -5.0], dtype=np.float32), (len(doc), 1))
    scores[2] = [0.0, -5.0, 5.0]
    ((tags, confidences),) = pipe.decode_scores([scores], spaces=[spaces])
    pipe.set_annotations([doc], [(tags, confidences)])
    assert [(e.text, e.label_) for e in doc.ents] == [
        ("Peter\nBlackburn", "PER"),
        ("lives", "PER"),
        ("in", "PER"),
        ("Brussels", "PER"),
    ]
    assert not any(doc[e.start].is_space or doc[e.end - 1].is_space for e in doc.ents)
    ((plain_tags, plain_confidences),) = pipe.decode_scores([scores[~spaces]])
    np.testing.assert_allclose(confidences, plain_confidences)
    assert tags[~spaces].tolist() == plain_tags.tolist()


@pytest.mark.parametrize("target,attr", [("tag", "tag_"), ("pos", "pos_")])
def test_token_targets(tiny_model_dir, target, attr):
    nlp = make_nlp(tiny_model_dir, target=target, head_dropout=0.0, lora_dropout=0.0)
    examples = []
    for text in SENTENCES[:3]:
        ref = nlp.make_doc(text)
        for token in ref:
            # learnable from the token itself: capitalised -> PROPN, else NOUN
            setattr(token, attr, "PROPN" if token.text[:1].isupper() else "NOUN")
        examples.append(Example(nlp.make_doc(text), ref))
    train(nlp, examples, steps=40, lr=0.01)  # 0.02 overshoots on transformers 5.x's init
    scores = nlp.evaluate(examples)
    assert scores[f"{target}_acc"] > 0.8, scores
    doc = nlp(SENTENCES[0])
    assert all(getattr(t, attr) in ("PROPN", "NOUN") for t in doc)


def test_spans_target(tiny_model_dir):
    nlp = make_nlp(tiny_model_dir, target="spans:chunks", head_dropout=0.0, lora_dropout=0.0)
    examples = []
    for text, ents in NER_DATA:
        ref = nlp.make_doc(text)
        ref.spans["chunks"] = [ref.char_span(s, e, label="NP") for s, e, _ in ents]
        examples.append(Example(nlp.make_doc(text), ref))
    train(nlp, examples, steps=30, lr=0.02)
    scores = nlp.evaluate(examples)
    assert scores["spans_chunks_f"] > 0.7, scores
    doc = nlp(NER_DATA[0][0])
    assert all(s.label_ == "NP" for s in doc.spans["chunks"])


def test_overlapping_gold_spans_are_a_clear_error(tiny_model_dir):
    nlp = make_nlp(tiny_model_dir, target="spans:sc")
    ref = nlp.make_doc("Peter Blackburn lives in Brussels")
    ref.spans["sc"] = [Span(ref, 0, 2, "PER"), Span(ref, 1, 3, "X")]
    eg = Example(nlp.make_doc(ref.text), ref)
    nlp.initialize(lambda: [eg])
    with pytest.raises(DataError, match="overlap"):
        nlp.update([eg])


def test_unknown_target_is_a_clear_error(tiny_model_dir):
    with pytest.raises(ConfigError, match="Unknown target"):
        make_nlp(tiny_model_dir, target="entities")


def test_no_labels_is_a_clear_error(tiny_model_dir):
    nlp = make_nlp(tiny_model_dir)
    eg = Example(nlp.make_doc("no entities here"), nlp.make_doc("no entities here"))
    with pytest.raises(DataError, match="No labels found"):
        nlp.initialize(lambda: [eg])


def test_unseen_training_label_is_a_clear_error(tiny_model_dir):
    nlp = make_nlp(tiny_model_dir)
    nlp.initialize(lambda: ner_examples(nlp)[:1])  # PER, LOC only
    with pytest.raises(DataError, match="not seen at initialize"):
        nlp.update(ner_examples(nlp)[1:2])


def test_layer_index_out_of_range(tiny_model_dir):
    nlp = make_nlp(tiny_model_dir, unmask=[5])
    with pytest.raises(ConfigError, match="out of range"):
        nlp.initialize(lambda: ner_examples(nlp))


def test_malformed_unmask_fails_at_construction(tiny_model_dir):
    with pytest.raises(Exception, match="Invalid unmask"):
        make_nlp(tiny_model_dir, unmask="left-only")


def test_encoder_is_rejected(tmp_path):
    import transformers

    from spacy_llm_tagger.errors import ModelError

    from .util import train_tokenizer

    tok = train_tokenizer()
    cfg = transformers.BertConfig(
        vocab_size=len(tok), hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32
    )
    transformers.AutoModel.from_config(cfg).save_pretrained(str(tmp_path))
    tok.save_pretrained(str(tmp_path))
    nlp = make_nlp(tmp_path)
    with pytest.raises(ModelError, match="not a causal decoder"):
        nlp.initialize(lambda: ner_examples(nlp))


def test_slow_tokenizer_is_rejected():
    from spacy_llm_tagger.errors import ModelError
    from spacy_llm_tagger.models.loading import prepare_tokenizer

    class SlowTokenizer:
        is_fast = False

    with pytest.raises(ModelError, match="offsets"):
        prepare_tokenizer(SlowTokenizer(), "x")


def test_existing_entities_kept_when_overwrite_false(tiny_model_dir):
    nlp = spacy.blank("en")
    nlp.add_pipe("llm_tagger", config={"overwrite": False, "model": {"name": str(tiny_model_dir)}})
    nlp.initialize(lambda: ner_examples(nlp))
    doc = nlp.make_doc("Peter Blackburn lives in Brussels .")
    doc.ents = [Span(doc, 0, 2, "CUSTOM")]
    doc = nlp.get_pipe("llm_tagger")(doc)
    assert (doc.ents[0].start, doc.ents[0].end, doc.ents[0].label_) == (0, 2, "CUSTOM")


def test_merged_adapters_predict_like_unmerged(tiny_model_dir):
    nlp = make_nlp(tiny_model_dir, head_dropout=0.0, lora_dropout=0.0)
    examples = ner_examples(nlp)
    train(nlp, examples, steps=3)
    tagger = nlp.get_pipe("llm_tagger")
    docs = [eg.predicted for eg in examples]
    merged = [tagger.model.ops.to_numpy(s) for s in tagger.model.predict(docs)]
    assert tagger.model.loaded.module.adapters_merged
    unmerged, _ = tagger.model.begin_update(docs)  # training path: adapters unmerged
    assert not tagger.model.loaded.module.adapters_merged
    for a, b in zip(merged, unmerged):
        np.testing.assert_allclose(a, tagger.model.ops.to_numpy(b), atol=1e-4)
