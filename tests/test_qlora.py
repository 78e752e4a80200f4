"""A 4- or 8-bit base under the adapters (quantize_base, QLoRA) on CPU."""

import builtins
import json
import subprocess
import sys
from pathlib import Path

import pytest
import spacy
import torch

from spacy_llm_tagger.errors import ConfigError, MissingDependencyError
from spacy_llm_tagger.models.settings import DecoderSettings

from .test_component import make_nlp, ner_examples, train
from .util import FAMILIES

pytest.importorskip("bitsandbytes")


def linear_weight_dtypes(nlp):
    module = nlp.get_pipe("llm_tagger").model.loaded.module
    base = module.decoder.get_base_model() if hasattr(module.decoder, "get_base_model") else module.decoder
    return {
        type(layer).__name__: layer.weight.dtype
        for layer in base.modules()
        if type(layer).__name__ in ("Linear4bit", "Linear8bitLt", "Linear")
    }


def predictions(nlp, texts):
    return [[(e.start, e.end, e.label_) for e in doc.ents] for doc in nlp.pipe(texts)]


def tag_scores(nlp, texts):
    """The tagger's scores for ``texts``: predictions compared as numbers, not only labels."""
    tagger = nlp.get_pipe("llm_tagger")
    return tagger.model.predict([nlp.make_doc(text) for text in texts])


@pytest.mark.parametrize("family", FAMILIES)
def test_nf4_base_trains_predicts_and_round_trips(tiny_family_dir, family, tmp_path):
    nlp = make_nlp(tiny_family_dir(family), quantize_base="nf4", head_dropout=0.0, unmask="all")
    examples = ner_examples(nlp)
    losses = train(nlp, examples, steps=12, lr=0.02)
    assert losses[-1] < losses[0] * 0.8
    # the base's linear layers hold 4-bit weights; only adapters and head train
    assert linear_weight_dtypes(nlp).get("Linear4bit") == torch.uint8
    module = nlp.get_pipe("llm_tagger").model.loaded.module
    trainable = [n for n, p in module.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n or n.startswith("head.") for n in trainable)
    texts = [eg.reference.text for eg in examples]
    before = predictions(nlp, texts)
    scores = tag_scores(nlp, texts)
    nlp.to_disk(tmp_path / "pipeline")
    saved = sorted(p.name for p in (tmp_path / "pipeline" / "llm_tagger" / "model").iterdir())
    assert "base" not in saved  # adapters and head only
    loaded = spacy.load(tmp_path / "pipeline")
    assert linear_weight_dtypes(loaded).get("Linear4bit") == torch.uint8  # quantized again at load
    assert predictions(loaded, texts) == before
    for a, b in zip(scores, tag_scores(loaded, texts)):
        torch.testing.assert_close(torch.as_tensor(a), torch.as_tensor(b))


def test_int8_base_trains_and_round_trips(tiny_model_dir, tmp_path):
    nlp = make_nlp(tiny_model_dir, quantize_base="int8", head_dropout=0.0)
    examples = ner_examples(nlp)
    losses = train(nlp, examples, steps=12, lr=0.02)
    assert losses[-1] < losses[0] * 0.8
    assert linear_weight_dtypes(nlp).get("Linear8bitLt") == torch.int8
    texts = [eg.reference.text for eg in examples]
    before = predictions(nlp, texts)
    nlp.to_disk(tmp_path / "pipeline")
    assert predictions(spacy.load(tmp_path / "pipeline"), texts) == before


def test_nf4_base_starts_close_to_the_full_precision_one(tiny_model_dir):
    """Before training, the NF4 base's hidden states are the float32 base's up to 4-bit rounding."""
    settings = dict(head_dropout=0.0, lora_r=0)
    full = make_nlp(tiny_model_dir, **settings)
    nf4 = make_nlp(tiny_model_dir, quantize_base="nf4", **settings)
    examples = ner_examples(full)
    full.initialize(lambda: examples)
    nf4.initialize(lambda: examples)
    nf4.get_pipe("llm_tagger").model.loaded.module.head.load_state_dict(
        full.get_pipe("llm_tagger").model.loaded.module.head.state_dict()
    )
    texts = [eg.reference.text for eg in examples]
    a = torch.as_tensor(tag_scores(full, texts)[0])
    b = torch.as_tensor(tag_scores(nf4, texts)[0])
    assert not torch.equal(a, b)  # the weights really are rounded
    assert (a - b).abs().max() < 0.25 * a.abs().max()


def test_nf4_with_gradient_checkpointing_and_kept_layers(tiny_model_dir):
    nlp = make_nlp(tiny_model_dir, quantize_base="nf4", gradient_checkpointing=True, keep_layers=2)
    losses = train(nlp, ner_examples(nlp), steps=8, lr=0.02)
    assert losses[-1] < losses[0]
    assert len(nlp.get_pipe("llm_tagger").model.loaded.module.unmasked_layers) == 2


@pytest.mark.parametrize(
    "settings, fix",
    [
        ({"quantize_base": "nf8"}, "quantize_base must be one of"),
        ({"quantize_base": "nf4", "quantize": "int8"}, "Set quantize = 'none'"),
        ({"quantize_base": "int8", "store_base_weights": True}, "Set store_base_weights = false"),
    ],
)
def test_unsupported_combinations_are_config_errors(settings, fix):
    with pytest.raises(ConfigError, match=fix):
        DecoderSettings(name="x", **settings)


def test_quantized_base_predicts_with_unmerged_adapters():
    assert DecoderSettings(name="x").merges_adapters
    assert not DecoderSettings(name="x", quantize_base="nf4").merges_adapters


def test_missing_bitsandbytes_names_the_extra(tiny_model_dir, monkeypatch):
    real_import = builtins.__import__

    def without_bitsandbytes(name, *args, **kwargs):
        if name == "bitsandbytes" or name.startswith("bitsandbytes."):
            raise ImportError("No module named 'bitsandbytes'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", without_bitsandbytes)
    nlp = make_nlp(tiny_model_dir, quantize_base="nf4")
    with pytest.raises(MissingDependencyError, match=r"spacy-llm-tagger\[qlora\]"):
        nlp.initialize(lambda: ner_examples(nlp))


def test_gpu_benchmark_runs_at_a_tiny_shape_on_cpu():
    """The GPU command of docs/qlora.md (bench_qlora.py shape), at a tiny shape on CPU."""
    script = Path(__file__).parent.parent / "benchmarks" / "bench_qlora.py"
    result = subprocess.run(
        [
            sys.executable,
            str(script),
            "shape",
            "--shape",
            "tiny",
            "--device",
            "cpu",
            "--batch",
            "2",
            "--seq",
            "16",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    rows = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert [row["quantize_base"] for row in rows] == ["none", "nf4"]
    assert all(row["seconds_per_step"] > 0 for row in rows)
    assert "nf4 / full precision, seconds_per_step" in result.stdout


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_nf4_base_trains_on_gpu(tiny_model_dir):
    from thinc.api import require_gpu

    require_gpu(0)
    nlp = make_nlp(tiny_model_dir, quantize_base="nf4", dtype="bfloat16")
    losses = train(nlp, ner_examples(nlp), steps=8, lr=0.02)
    assert losses[-1] < losses[0]
    module = nlp.get_pipe("llm_tagger").model.loaded.module
    assert all(p.is_cuda for p in module.parameters())
