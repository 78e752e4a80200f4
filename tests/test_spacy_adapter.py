"""The one module that relies on spaCy's and thinc's internals: fails loudly when they change."""

import numpy
import pytest
import spacy
import thinc
from spacy.tokens import DocBin
from thinc.api import Adam, Optimizer

from spacy_llm_tagger import spacy_adapter
from spacy_llm_tagger.distributed.data_parallel import DataParallelOptimizer
from spacy_llm_tagger.errors import DistributedError

VERSIONS = f"spaCy {spacy.__version__} (thinc {thinc.__version__})"


def test_the_installed_spacy_and_thinc_have_what_the_adapter_relies_on():
    try:
        spacy_adapter.check_spacy_internals()
    except DistributedError as err:
        pytest.fail(f"{VERSIONS}: {err}")


def test_a_changed_internal_is_an_error_naming_the_versions(monkeypatch):
    from spacy.training import loop

    def train_while_improving(nlp, train_data, optimizer, evaluate):  # arguments swapped
        pass

    monkeypatch.setattr(loop, "train_while_improving", train_while_improving)
    with pytest.raises(DistributedError, match=f"spaCy {spacy.__version__}.*train_while_improving"):
        spacy_adapter.check_spacy_internals()
    with pytest.raises(DistributedError, match="spacy_adapter.py"):
        with spacy_adapter.hooks_in_spacy_training(lambda o, s: s, lambda e: e):
            pass


def tiny_tagger_config(tmp_path):
    nlp = spacy.blank("en")
    docs = []
    for i in range(6):
        doc = nlp.make_doc(f"the cat {i} sat on the mat")
        for token in doc:
            token.tag_ = "N" if token.text in ("cat", "mat") else "X"
        docs.append(doc)
    DocBin(docs=docs).to_disk(tmp_path / "data.spacy")
    nlp.add_pipe("tagger")
    config = nlp.config
    config["paths"]["train"] = config["paths"]["dev"] = str(tmp_path / "data.spacy")
    config["components"]["tagger"]["model"]["tok2vec"].update(width=8, depth=1, embed_size=50)
    config["training"].update(max_steps=4, eval_frequency=2, max_epochs=0)
    config["training"]["batcher"] = {"@batchers": "spacy.batch_by_sequence.v1", "size": 3}
    config["training"]["logger"] = {"@loggers": "spacy.ConsoleLogger.v1", "progress_bar": False}
    return config


def test_spacy_train_draws_its_batches_and_scores_through_the_hooks(tmp_path):
    from spacy.training.initialize import init_nlp
    from spacy.training.loop import train

    seen = {"batches": 0, "evaluations": 0, "optimizers": set()}

    def steps(optimizer, train_data):
        seen["optimizers"].add(id(optimizer))
        for epoch, batch in train_data:
            seen["batches"] += 1
            yield epoch, batch

    def evaluate(evaluation):
        def counted():
            seen["evaluations"] += 1
            return evaluation()

        return counted

    nlp = init_nlp(tiny_tagger_config(tmp_path))
    with spacy_adapter.hooks_in_spacy_training(steps, evaluate):
        train(nlp, None)
    message = f"{VERSIONS}: spacy.training.loop.train no longer goes through train_while_improving"
    assert seen["batches"] == 5 and seen["evaluations"] == 3 and len(seen["optimizers"]) == 1, message
    from spacy.training import loop

    assert loop.train_while_improving.__module__ == "spacy.training.loop"  # put back


def test_optimizer_as_copies_every_setting_and_the_state():
    plain = Adam(0.01, L2=0.001, grad_clip=0.5)
    weights, gradient = numpy.ones(4, dtype="f"), numpy.array([0.5, -1.0, 0.0, 2.0], dtype="f")
    plain((1, "w"), weights.copy(), gradient.copy())  # some state (moments, counts) to copy
    copied = spacy_adapter.optimizer_as(DataParallelOptimizer, plain)
    assert type(copied) is DataParallelOptimizer and isinstance(copied, Optimizer)
    for slot in Optimizer.__slots__:
        if hasattr(plain, slot):
            assert getattr(copied, slot) is getattr(plain, slot), slot


def test_torch_modules_finds_the_module_of_a_pytorch_wrapper():
    import torch
    from thinc.api import Linear, PyTorchWrapper, chain

    linear = torch.nn.Linear(2, 2)
    model = chain(Linear(2, 2), PyTorchWrapper(linear))
    assert list(spacy_adapter.torch_modules(model)) == [linear]


def test_parse_overrides_reads_spacy_train_overrides(monkeypatch):
    monkeypatch.delenv("SPACY_CONFIG_OVERRIDES", raising=False)
    args = ["--paths.train", "train.spacy", "--training.max_steps=100", "--nlp.batch_size", "8"]
    assert spacy_adapter.parse_overrides(args) == {
        "paths.train": "train.spacy",
        "training.max_steps": 100,
        "nlp.batch_size": 8,
    }
    assert args[0] == "--paths.train"  # the caller's list is left alone
