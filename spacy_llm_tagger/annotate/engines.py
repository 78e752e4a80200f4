"""Where shards are annotated: in this process (``local``) or on Ray Data actors (``ray``).

Both engines yield one :class:`ShardResult` per pending shard, in shard order, and run the
same :class:`ShardAnnotator`, so their output is the same. The Ray engine follows Ray's own
batch-inference pattern: ``map_batches`` with an actor class that loads the pipeline once
(a pool of ``workers`` actors), one shard per batch, order preserved.
"""

from dataclasses import asdict, dataclass
from typing import Any, Dict, Iterator, List, Optional

from ..errors import MissingDependencyError
from .annotator import ShardAnnotator, ShardResult
from .inputs import ShardSpec

ENGINES = ("local", "ray")


@dataclass(frozen=True)
class AnnotatorSettings:
    """What every annotator is built from."""

    model: str
    output_format: str
    batch_size: int
    max_chars: int


def run_local(pending: List[ShardSpec], settings: AnnotatorSettings) -> Iterator[ShardResult]:
    """One process, one pipeline, shard after shard."""
    if not pending:
        return
    annotator = ShardAnnotator(
        settings.model, settings.output_format, settings.batch_size, settings.max_chars
    )
    for spec in pending:
        yield annotator(spec)


class RayShardAnnotator:
    """A Ray Data actor: loads the pipeline once, annotates one shard per batch."""

    def __init__(self, settings: Dict[str, Any], threads: int) -> None:
        self.annotator = ShardAnnotator(
            settings["model"],
            settings["output_format"],
            settings["batch_size"],
            settings["max_chars"],
            threads=threads,
        )

    def __call__(self, batch: Dict[str, Any]) -> Dict[str, list]:
        out: Dict[str, list] = {"spec": [], "payload": [], "done": [], "words": []}
        for spec in batch["spec"]:
            result = self.annotator(ShardSpec(**spec))
            out["spec"].append(spec)
            out["payload"].append(result.payload)
            out["done"].append(result.done)
            out["words"].append(result.words)
        return out


def run_ray(
    pending: List[ShardSpec],
    settings: AnnotatorSettings,
    workers: int,
    gpus_per_worker: float = 0.0,
    address: Optional[str] = None,
) -> Iterator[ShardResult]:
    """Ray Data over the pending shards with ``workers`` actors; results in shard order."""
    ray = import_ray()
    if not pending:
        return
    if not ray.is_initialized():
        if address:
            ray.init(address=address)
        else:
            # a local instance sized for the actors (GPUs are detected by Ray)
            ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False)
    context = ray.data.DataContext.get_current()
    context.execution_options.preserve_order = True
    context.enable_progress_bars = False  # annotate shows its own
    dataset = ray.data.from_items(
        [{"spec": asdict(spec)} for spec in pending], override_num_blocks=len(pending)
    )
    on_gpu = gpus_per_worker > 0
    results = dataset.map_batches(
        RayShardAnnotator,
        fn_constructor_kwargs={"settings": asdict(settings), "threads": 0 if on_gpu else 1},
        batch_size=1,
        batch_format="default",
        compute=ray.data.ActorPoolStrategy(size=workers),
        num_cpus=1,
        num_gpus=gpus_per_worker if on_gpu else None,
    )
    for row in results.iter_rows():
        yield ShardResult(ShardSpec(**row["spec"]), row["payload"], row["done"], int(row["words"]))


def import_ray() -> Any:
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError as err:
        raise MissingDependencyError(
            "--engine ray needs Ray Data: pip install 'spacy-llm-tagger[ray]' (or use --engine local)."
        ) from err
    return ray
