"""[training.score_weights] follow the tagger's target: spaCy picks the best model by its score."""

import pytest
import spacy
from spacy.tokens import Doc
from spacy.training import Example

from spacy_llm_tagger.pipeline.targets import make_target

from .test_component import make_nlp


def weights(nlp):
    return dict(nlp.config["training"]["score_weights"])


def examples(nlp):
    words = ["Peter", "Blackburn", "lives", "in", "Brussels", "."]
    out = []
    for _ in range(2):
        reference = Doc(nlp.vocab, words=words, ents=["B-PER", "I-PER", "O", "O", "B-LOC", "O"])
        reference.spans["chunks"] = [reference[0:2], reference[4:5]]
        for token, tag in zip(reference, ["NNP", "NNP", "VBZ", "IN", "NNP", "."]):
            token.tag_ = tag
        out.append(Example(Doc(nlp.vocab, words=words), reference))
    return out


def test_the_factory_declares_the_default_targets_scores():
    nlp = spacy.blank("en")
    nlp.add_pipe("llm_tagger", config={"model": {"name": "not-loaded"}})
    assert weights(nlp) == {"ents_f": 1.0, "ents_p": 0.0, "ents_r": 0.0, "ents_per_type": None}
    assert nlp.get_pipe_meta("llm_tagger").default_score_weights == make_target("ents").score_weights


@pytest.mark.parametrize(
    "target,main",
    [("ents", "ents_f"), ("tag", "tag_acc"), ("pos", "pos_acc"), ("spans:chunks", "spans_chunks_f")],
)
def test_each_target_weights_the_score_it_reports(target, main):
    scores = make_target(target).score_weights
    assert scores[main] == 1.0 and sum(v or 0.0 for v in scores.values()) == 1.0


@pytest.mark.parametrize(
    "target,main",
    [("tag", "tag_acc"), ("spans:chunks", "spans_chunks_f"), ("ents", "ents_f")],
)
def test_after_initialize_only_the_targets_score_is_weighted(tiny_model_dir, target, main):
    nlp = make_nlp(tiny_model_dir, target=target)
    nlp.initialize(lambda: examples(nlp))
    weighted = {key: value for key, value in weights(nlp).items() if value}
    assert weighted == {main: 1.0}
    # spaCy's training loop scores each evaluation with these weights: the score is the target's
    from spacy.training.loop import create_evaluation_callback

    score, scores = create_evaluation_callback(nlp, lambda nlp: examples(nlp), weights(nlp))()
    assert score == pytest.approx(scores[main])


def test_a_config_written_for_another_target_needs_no_override(tiny_model_dir):
    # the weights `spacy init fill-config` wrote for an ents tagger, the target switched to tag
    nlp = make_nlp(tiny_model_dir, target="tag")
    nlp.config["training"]["score_weights"] = {
        "ents_f": 1.0,
        "ents_p": 0.0,
        "ents_r": 0.0,
        "ents_per_type": None,
        "tag_acc": None,
        "pos_acc": None,
    }
    nlp.initialize(lambda: examples(nlp))
    assert {key: value for key, value in weights(nlp).items() if value} == {"tag_acc": 1.0}


def test_weights_the_config_gives_and_other_components_scores_are_kept(tiny_model_dir):
    nlp = make_nlp(tiny_model_dir, target="tag")
    nlp.add_pipe("ner")  # reports ents_f too
    nlp.add_pipe(
        "llm_tagger",
        name="chunker",
        config={"target": "spans:chunks", "model": {"name": str(tiny_model_dir)}},
    )
    nlp.config["training"]["score_weights"]["spans_chunks_f"] = 0.25
    nlp.initialize(lambda: examples(nlp))
    final = weights(nlp)
    assert final["ents_f"] and final["tag_acc"] and final["spans_chunks_f"]
    assert final["spans_chunks_f"] < final["tag_acc"]  # the config's 0.25 against the default 1.0
