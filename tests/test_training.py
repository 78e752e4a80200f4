"""`spacy train` with the project's config on a tiny random decoder."""

from pathlib import Path

import spacy
from spacy.cli.train import train
from spacy.tokens import DocBin

from .test_component import NER_DATA

CONFIG = Path(__file__).parent.parent / "projects" / "conll03" / "configs" / "llm_ner.cfg"


def write_docbin(path, nlp, copies=3):
    docs = []
    for _ in range(copies):
        for text, ents in NER_DATA:
            doc = nlp.make_doc(text)
            doc.ents = [doc.char_span(s, e, label=label) for s, e, label in ents]
            docs.append(doc)
    DocBin(docs=docs).to_disk(path)


def tiny_training(tmp_path, model_dir, **settings):
    """Overrides of the project config for a few steps on a tiny decoder: training and dev
    corpora written to ``tmp_path``, several batches per epoch, no log file; ``settings`` (dotted
    config keys, given as keyword arguments of a dict) added or replacing."""
    nlp = spacy.blank("en")
    write_docbin(tmp_path / "train.spacy", nlp, copies=4)
    write_docbin(tmp_path / "dev.spacy", nlp, copies=1)
    return {
        "paths.train": str(tmp_path / "train.spacy"),
        "paths.dev": str(tmp_path / "dev.spacy"),
        "paths.train_max_words": 0,
        "components.llm_tagger.model.name": str(model_dir),
        "training.max_epochs": 0,
        "training.batcher.size": 30,
        "training.optimizer.learn_rate": 0.01,
        "training.logger.progress_bar": None,
        "training.logger.output_file": None,
        **settings,
    }


def trained_weights(path):
    """The trainable weights (adapters and head) of the llm_tagger saved at ``path``."""
    module = spacy.load(path).get_pipe("llm_tagger").model.loaded.module
    return {name: p.detach().clone() for name, p in module.named_parameters() if p.requires_grad}


def test_spacy_train_with_the_project_config(tiny_model_dir, tmp_path, capsys):
    nlp = spacy.blank("en")
    write_docbin(tmp_path / "train.spacy", nlp)
    write_docbin(tmp_path / "dev.spacy", nlp, copies=1)
    overrides = {
        "paths.train": str(tmp_path / "train.spacy"),
        "paths.dev": str(tmp_path / "dev.spacy"),
        "components.llm_tagger.model.name": str(tiny_model_dir),
        "components.llm_tagger.model.unmask": "01",
        "training.max_epochs": 15,
        "training.eval_frequency": 5,
        "training.optimizer.learn_rate": 0.01,
        "training.logger.progress_bar": None,
    }
    train(CONFIG, tmp_path / "out", overrides=overrides)
    out = capsys.readouterr().out
    assert "LOSS LLM_T" in out and "ENTS_F" in out
    best = spacy.load(tmp_path / "out" / "model-best")
    scores = best.evaluate(
        [
            __import__("spacy").training.Example(best.make_doc(d.text), d)
            for d in DocBin().from_disk(tmp_path / "dev.spacy").get_docs(best.vocab)
        ]
    )
    assert scores["ents_f"] > 0.5, scores
    assert best.meta["performance"]["ents_f"] > 0.5
