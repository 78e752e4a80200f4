"""dtype handling, gradient checkpointing and the GPU path."""

import warnings

import pytest
import torch

from .test_component import make_nlp, ner_examples


def grads_after_one_update(nlp, examples):
    tagger = nlp.get_pipe("llm_tagger")
    module = tagger.model.loaded.module
    module.zero_grad()
    tagger.update(examples, sgd=None)
    return {n: p.grad.clone() for n, p in module.named_parameters() if p.grad is not None}


def test_bfloat16_base_keeps_adapters_and_head_in_float32(tiny_model_dir):
    nlp = make_nlp(tiny_model_dir, dtype="bfloat16")
    examples = ner_examples(nlp)
    nlp.initialize(lambda: examples)
    module = nlp.get_pipe("llm_tagger").model.loaded.module
    dtypes = {n: p.dtype for n, p in module.named_parameters()}
    assert all(d == torch.float32 for n, d in dtypes.items() if "lora_" in n or n.startswith("head."))
    assert any(d == torch.bfloat16 for n, d in dtypes.items() if "lora_" not in n)
    grads = grads_after_one_update(nlp, examples)
    assert grads and all(torch.isfinite(g).all() for g in grads.values())
    assert all(g.dtype == torch.float32 for g in grads.values())


@pytest.mark.parametrize("unmask", ["none", "01"])
def test_gradient_checkpointing_gives_the_same_gradients(tiny_model_dir, unmask):
    settings = dict(unmask=unmask, lora_dropout=0.0, head_dropout=0.0, max_batch_tokens=64, max_length=32)
    plain = make_nlp(tiny_model_dir, **settings)
    examples = ner_examples(plain)
    plain.initialize(lambda: examples)
    checkpointed = make_nlp(tiny_model_dir, gradient_checkpointing=True, **settings)
    checkpointed.initialize(lambda: examples)
    checkpointed.get_pipe("llm_tagger").from_bytes(plain.get_pipe("llm_tagger").to_bytes())
    # several forward batches of different padding: backward must re-run each
    # batch's unmasked layers with that batch's padding mask.
    a = grads_after_one_update(plain, examples)
    b = grads_after_one_update(checkpointed, examples)
    assert a.keys() == b.keys() and a
    for name in a:
        torch.testing.assert_close(a[name], b[name], atol=1e-5, rtol=1e-4)


def test_gradient_checkpointing_is_on_in_every_layer_without_our_deprecation_warning(tiny_model_dir):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        nlp = make_nlp(tiny_model_dir, gradient_checkpointing=True)
        examples = ner_examples(nlp)
        nlp.initialize(lambda: examples)
    # transformers 5 deprecates gradient_checkpointing_enable (peft's own
    # is_gradient_checkpointing warning is not ours to fix)
    assert not [w for w in caught if "gradient_checkpointing_enable" in str(w.message)]
    module = nlp.get_pipe("llm_tagger").model.loaded.module
    layers = [m for m in module.modules() if type(m).__name__.endswith("DecoderLayer")]
    assert layers and all(layer.gradient_checkpointing for layer in layers)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_training_step_on_gpu(tiny_model_dir):
    from thinc.api import require_gpu

    require_gpu(0)
    nlp = make_nlp(tiny_model_dir, dtype="bfloat16")
    examples = ner_examples(nlp)
    optimizer = nlp.initialize(lambda: examples)
    losses = {}
    nlp.update(examples, sgd=optimizer, losses=losses)
    assert losses["llm_tagger"] > 0
    module = nlp.get_pipe("llm_tagger").model.loaded.module
    assert next(module.parameters()).is_cuda
