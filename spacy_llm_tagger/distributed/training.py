"""``spacy-llm-tagger train``: spaCy training on one process or data-parallel on Ray Train.

With one worker this is ``spacy train``. With N workers, Ray Train's ``TorchTrainer`` starts N
processes joined in a ``torch.distributed`` group (gloo on CPU, NCCL on GPU); each runs spaCy's
own training loop on the same config with the data-parallel batcher and optimizer of
:mod:`.data_parallel`, and worker 0 writes ``OUTPUT/model-best`` and ``OUTPUT/model-last``.
"""

import io
import os
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Dict, Optional

from ..errors import ConfigError, MissingDependencyError
from ..models.settings import check_model_settings


@dataclass(frozen=True)
class TrainSettings:
    """What every worker needs: the filled-in config text and where to write."""

    config: str
    output: str
    workers: int
    gpus_per_worker: float
    cpus_per_worker: int
    # the launching process's folder: relative paths in the config (corpora, vectors) are
    # read from there, as `spacy train` reads them, though Ray starts workers elsewhere
    working_dir: str = ""


def load_training_config(config_path: Path, overrides: Dict[str, Any]):
    """The config with its overrides, checked before any worker starts."""
    from spacy.util import load_config

    if not config_path.exists():
        raise ConfigError(f"Config file not found: {config_path}")
    config = load_config(config_path, overrides=overrides, interpolate=False)
    for section in ("training", "nlp", "components", "corpora"):
        if section not in config:
            raise ConfigError(f"{config_path} has no [{section}] section: is it a spaCy training config?")
    check_model_settings(config)
    return config


def train(
    config_path: Path,
    output: Optional[Path],
    overrides: Dict[str, Any],
    workers: int = 1,
    gpus_per_worker: float = 0.0,
    cpus_per_worker: int = 1,
    address: Optional[str] = None,
    restart: bool = False,
    checkpoint_steps: int = 0,
) -> None:
    """Train the pipeline of ``config_path``; ``workers`` > 1 trains data-parallel on Ray.

    One worker writing to ``output`` trains resumably (:mod:`..resumable_training`): run again
    after a kill, it goes on from ``output/checkpoint``; ``restart`` starts from scratch."""
    if workers < 1:
        raise ConfigError(f"--workers must be at least 1, not {workers}.")
    if gpus_per_worker < 0 or cpus_per_worker < 1:
        raise ConfigError("--gpus-per-worker must be >= 0 and --cpus-per-worker >= 1.")
    config = load_training_config(config_path, overrides)
    if workers == 1 and address is None:
        use_gpu = 0 if gpus_per_worker > 0 else -1
        if output is None:  # nothing to keep a checkpoint in
            from spacy.cli.train import train as spacy_train

            spacy_train(config_path, output, use_gpu=use_gpu, overrides=overrides)
            return
        from ..resumable_training import train_resumable

        train_resumable(
            config_path,
            output,
            overrides,
            use_gpu=use_gpu,
            restart=restart,
            checkpoint_steps=checkpoint_steps,
        )
        return
    from ..spacy_adapter import check_spacy_internals
    from .data_parallel import data_parallel_config

    check_spacy_internals()  # before any worker starts
    settings = TrainSettings(
        config=data_parallel_config(config).to_str(),
        output=str(output.resolve()) if output is not None else "",
        workers=workers,
        gpus_per_worker=gpus_per_worker,
        cpus_per_worker=cpus_per_worker,
        working_dir=os.getcwd(),
    )
    if output is not None:
        output.mkdir(parents=True, exist_ok=True)
    fit_on_ray(settings, address)


def import_ray_train() -> Any:
    try:
        import ray
        import ray.train.torch  # noqa: F401
    except ImportError as err:
        raise MissingDependencyError(
            "--workers > 1 trains on Ray Train: pip install 'spacy-llm-tagger[ray]' "
            "(or train with --workers 1)."
        ) from err
    return ray


def fit_on_ray(settings: TrainSettings, address: Optional[str]) -> None:
    """Run :func:`train_worker` on ``settings.workers`` Ray Train workers."""
    ray = import_ray_train()
    from ray.train import RunConfig, ScalingConfig
    from ray.train.torch import TorchConfig, TorchTrainer

    started_here = False
    if not ray.is_initialized():
        if address:
            ray.init(address=address)
        else:
            cpus = settings.workers * settings.cpus_per_worker
            ray.init(num_cpus=cpus, include_dashboard=False)
            started_here = True
    on_gpu = settings.gpus_per_worker > 0
    resources: Dict[str, float] = {"CPU": settings.cpus_per_worker}
    if on_gpu:
        resources["GPU"] = settings.gpus_per_worker
    storage = str(Path(settings.output) / "ray_train") if settings.output else None
    trainer = TorchTrainer(
        train_worker,
        train_loop_config=asdict(settings),
        scaling_config=ScalingConfig(
            num_workers=settings.workers, use_gpu=on_gpu, resources_per_worker=resources
        ),
        torch_config=TorchConfig(backend="nccl" if on_gpu else "gloo"),
        run_config=RunConfig(name="spacy-llm-tagger", storage_path=storage),
    )
    try:
        trainer.fit()
    finally:
        if started_here:
            ray.shutdown()


def train_worker(settings_dict: Dict[str, Any]) -> None:
    """One data-parallel worker: spaCy's training loop on this worker's share of each batch."""
    import ray.train
    import torch
    from spacy.training.initialize import init_nlp
    from spacy.training.loop import train as train_nlp
    from spacy.util import load_config_from_str
    from thinc.api import require_gpu

    import spacy_llm_tagger  # noqa: F401  (registers the pieces in the worker process)

    from ..spacy_adapter import hooks_in_spacy_training
    from .data_parallel import broadcast_parameters, pass_step_shares, rank_zero_evaluation

    settings = TrainSettings(**settings_dict)
    if settings.working_dir and os.path.isdir(settings.working_dir):
        os.chdir(settings.working_dir)
    rank = ray.train.get_context().get_world_rank()
    use_gpu = -1
    if settings.gpus_per_worker > 0:
        device = ray.train.torch.get_device()
        use_gpu = device.index or 0
        require_gpu(use_gpu)
    else:
        torch.set_num_threads(settings.cpus_per_worker)
    config = load_config_from_str(settings.config, interpolate=False)
    if rank != 0:
        # one log: worker 0's (a logger's output_file written by every worker would clash)
        config["training"]["logger"] = {"@loggers": "spacy.ConsoleLogger.v1", "progress_bar": False}
    quiet = io.StringIO()
    nlp = init_nlp(config, use_gpu=use_gpu)
    broadcast_parameters(nlp)
    output = Path(settings.output) if settings.output and rank == 0 else None
    with hooks_in_spacy_training(pass_step_shares, rank_zero_evaluation()):
        train_nlp(
            nlp,
            output,
            use_gpu=use_gpu,
            stdout=sys.stdout if rank == 0 else quiet,
            stderr=sys.stderr if rank == 0 else quiet,
        )
