"""Data-parallel training: N Ray Train workers take the same steps as one worker."""

import importlib.util
import subprocess
import sys

import numpy
import pytest
import spacy
import torch
from spacy.training import Example
from thinc.api import Adam

from spacy_llm_tagger.distributed import (
    DataParallelOptimizer,
    WorkerBatch,
    configure_data_parallel_batcher,
    data_parallel,
    data_parallel_config,
    split_batch,
)
from spacy_llm_tagger.distributed.training import train
from spacy_llm_tagger.errors import ConfigError, DistributedError

from .test_training import CONFIG, tiny_training, trained_weights

HAS_RAY = importlib.util.find_spec("ray") is not None


def examples(lengths):
    nlp = spacy.blank("en")
    return [Example(nlp.make_doc("w " * n), nlp.make_doc("w " * n)) for n in lengths]


def test_split_batch_balances_words_keeps_order_and_loses_nothing():
    batch = examples([9, 1, 4, 4, 3, 7, 2, 8])
    parts = split_batch(batch, 3)
    assert sorted(id(eg) for part in parts for eg in part) == sorted(id(eg) for eg in batch)
    words = [sum(len(eg.reference) for eg in part) for part in parts]
    assert max(words) - min(words) <= 2, words
    for part in parts:
        positions = [batch.index(eg) for eg in part]
        assert positions == sorted(positions)
    assert [[id(eg) for eg in p] for p in split_batch(batch, 3)] == [[id(eg) for eg in p] for p in parts]


def test_wrappers_do_nothing_outside_a_process_group():
    batches = [examples([3, 2]), examples([5])]
    shard = configure_data_parallel_batcher(lambda _examples: iter(batches))
    assert list(shard([])) == batches
    plain, wrapped = Adam(0.01), DataParallelOptimizer.wrap(Adam(0.01))
    weights, gradient = numpy.ones(4, dtype="f"), numpy.array([0.5, -1.0, 0.0, 2.0], dtype="f")
    expected, _ = plain((1, "w"), weights.copy(), gradient.copy())
    got, _ = wrapped((1, "w"), weights.copy(), gradient.copy())
    numpy.testing.assert_array_equal(got, expected)
    assert wrapped.learn_rate == plain.learn_rate


def test_the_share_of_a_step_travels_with_its_batch_to_the_optimizer(monkeypatch):
    batch = examples([9, 1, 4, 4, 3, 7, 2, 8])
    parts = [data_parallel.worker_batch(batch, rank, 3) for rank in range(3)]
    assert all(isinstance(part, WorkerBatch) for part in parts)
    assert [list(part) for part in parts] == split_batch(batch, 3)
    assert sum(part.share for part in parts) == pytest.approx(1.0)
    assert parts[0].share == sum(len(eg.reference) for eg in parts[0]) / 38
    optimizer = DataParallelOptimizer.wrap(Adam(0.01))
    steps = data_parallel.pass_step_shares(optimizer, iter([(0, parts[1]), (0, parts[2])]))
    for _epoch, part in steps:
        assert optimizer.step_share == part.share
        optimizer.step_schedules()
        assert optimizer.step_share is None  # each step's share is given for that step only
    # in a process group, a step nobody gave the share of is an error, not a wrong average
    monkeypatch.setattr(data_parallel, "world", lambda: (0, 2))
    with pytest.raises(DistributedError, match="spacy-llm-tagger train --workers"):
        optimizer((1, "w"), numpy.ones(2, dtype="f"), numpy.ones(2, dtype="f"))


def test_no_class_holds_the_share_of_a_step():
    for cls in (DataParallelOptimizer, WorkerBatch):
        assert not [k for k, v in vars(cls).items() if isinstance(v, (int, float, list, dict))], cls


def test_data_parallel_config_wraps_batcher_and_optimizer_once():
    config = spacy.util.load_config(CONFIG)
    wrapped = data_parallel_config(data_parallel_config(config))
    assert wrapped["training"]["batcher"]["@batchers"] == "spacy-llm-tagger.DataParallelBatcher.v1"
    assert wrapped["training"]["batcher"]["batcher"]["@batchers"] == "spacy.batch_by_words.v1"
    assert wrapped["training"]["optimizer"]["optimizer"]["@optimizers"] == "Adam.v1"
    resolved = spacy.util.registry.resolve({"optimizer": wrapped["training"]["optimizer"]})
    assert isinstance(resolved["optimizer"], DataParallelOptimizer)
    assert resolved["optimizer"].learn_rate == 0.001


def test_clear_errors_before_any_worker_starts(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        train(tmp_path / "missing.cfg", tmp_path / "out", {}, workers=2)
    with pytest.raises(ConfigError, match="at least 1"):
        train(CONFIG, tmp_path / "out", {}, workers=0)


@pytest.mark.skipif(not HAS_RAY, reason="needs the [ray] extra")
def test_two_ray_train_workers_take_the_steps_of_one(tiny_model_dir, tmp_path):
    overrides = tiny_training(
        tmp_path,
        tiny_model_dir,
        **{
            "components.llm_tagger.model.head_dropout": 0.0,
            "training.dropout": 0.0,
            "training.max_steps": 6,
            "training.eval_frequency": 3,
        },
    )
    train(CONFIG, tmp_path / "one", overrides, workers=1)
    train(CONFIG, tmp_path / "two", overrides, workers=2)
    one, two = (
        trained_weights(tmp_path / "one" / "model-last"),
        trained_weights(tmp_path / "two" / "model-last"),
    )
    assert one.keys() == two.keys() and any("lora_B" in name for name in one)
    largest = max(float(p.abs().max()) for name, p in one.items() if "lora_B" in name)
    assert largest > 0.01  # the steps moved the adapters (lora_B starts at zero)
    # Adam turns float-summation noise in near-zero gradients into steps of up to the learn rate,
    # so equal runs differ by ~4e-5 here (machine-dependent); without the all-reduce they differ
    # by ~0.08. The bound sits between: a tenth of one step at lr 0.01.
    for name in one:
        torch.testing.assert_close(two[name], one[name], atol=1e-3, rtol=0, msg=name)
    config = spacy.util.load_config(tmp_path / "two" / "model-last" / "config.cfg")
    assert config["training"]["batcher"]["@batchers"] == "spacy-llm-tagger.DataParallelBatcher.v1"


def test_train_cli_help_names_the_workers_option():
    result = subprocess.run(
        [sys.executable, "-m", "spacy_llm_tagger", "train", "--help"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "--workers" in result.stdout and "--gpus-per-worker" in result.stdout


def _reduce_in_group(rank, init_file, results):
    import numpy as np
    import torch.distributed as dist

    from spacy_llm_tagger.distributed.data_parallel import all_reduce_weighted

    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=2)
    gradient = np.array([1.0, 2.0], dtype="f") if rank == 0 else np.array([3.0, 4.0], dtype="f")
    share = 0.25 if rank == 0 else 0.75
    results[rank] = all_reduce_weighted(gradient, share).tolist()
    dist.destroy_process_group()


def test_gradients_are_averaged_weighted_by_each_workers_share_of_words(tmp_path):
    context = torch.multiprocessing.get_context("spawn")
    with context.Manager() as manager:
        results = manager.dict()
        torch.multiprocessing.start_processes(
            _reduce_in_group, args=(str(tmp_path / "init"), results), nprocs=2, start_method="spawn"
        )
        assert results[0] == results[1] == pytest.approx([0.25 * 1 + 0.75 * 3, 0.25 * 2 + 0.75 * 4])
