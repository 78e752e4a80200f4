"""The component warms up its own updates, whatever optimizer drives it (issue #34)."""

import pytest
from thinc.api import Optimizer

from spacy_llm_tagger.errors import ConfigError
from spacy_llm_tagger.pipeline.warmup import warmup_scale

from .test_component import make_nlp, ner_examples


class RecordingOptimizer(Optimizer):
    """Adam that remembers the lr_scale of every parameter update."""

    def __init__(self) -> None:
        super().__init__(0.001)
        self.scales = []

    def __call__(self, key, weights, gradient, *, lr_scale=1.0):
        self.scales.append(lr_scale)
        return super().__call__(key, weights, gradient, lr_scale=lr_scale)


def test_warmup_scale_rises_linearly_then_stays():
    assert [warmup_scale(n, 4) for n in range(6)] == [0.25, 0.5, 0.75, 1.0, 1.0, 1.0]
    assert warmup_scale(0, 0) == 1.0


@pytest.mark.parametrize("warmup_steps", [0, 4])
def test_the_first_updates_get_a_growing_share_of_the_learning_rate(tiny_model_dir, warmup_steps):
    nlp = make_nlp(tiny_model_dir, warmup_steps=warmup_steps)
    examples = ner_examples(nlp)
    nlp.initialize(lambda: examples)
    optimizer = RecordingOptimizer()
    per_update = []
    for _ in range(6):
        optimizer.scales = []
        nlp.update(examples, sgd=optimizer)
        assert len(set(optimizer.scales)) == 1  # every parameter of one update alike
        per_update.append(optimizer.scales[0])
    expected = [0.25, 0.5, 0.75, 1.0, 1.0, 1.0] if warmup_steps else [1.0] * 6
    assert per_update == pytest.approx(expected)
    assert nlp.get_pipe("llm_tagger").updates_done == 6


def test_the_default_warms_up_and_a_negative_value_is_an_error(tiny_model_dir):
    import spacy

    nlp = spacy.blank("en")
    tagger = nlp.add_pipe("llm_tagger", config={"model": {"name": str(tiny_model_dir)}})
    assert tagger.warmup_steps == 30
    with pytest.raises(ConfigError, match="warmup_steps"):
        spacy.blank("en").add_pipe(
            "llm_tagger", config={"warmup_steps": -1, "model": {"name": str(tiny_model_dir)}}
        )
