"""The project's systems: one small file per system in systems/, read by train.py and evaluate.py.

A system file names its base (a full spaCy config in configs/, or another system) and the
config overrides it adds, written as `spacy train` takes them on the command line
(`--training.patience 96` is `training.patience = 96`):

    [base]
    system = "llm-unmasked"

    [overrides]
    components.llm_tagger.model.unmask = "none"

A system's overrides are its base system's, then its own (the later wins); `train.py` adds the
seed and any command-line overrides on top. Names may have folders (`full/trf-ner`): the system
`NAME` trains into training/NAME and is scored into metrics/NAME.json.

    python scripts/systems.py list                   # every system and what it is
    python scripts/systems.py show llm-causal        # its base, its overrides and the full config
"""
import hashlib
import math
import os
import shlex
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import srsly
import typer
from spacy.util import load_config
from thinc.api import Config

PROJECT = Path(__file__).resolve().parent.parent
SYSTEMS = PROJECT / "systems"
TEST_DATA = "corpus/test.spacy"
OURS = "spacy-llm-tagger."  # architectures that load `package:` model names themselves


def project_relative(path: Path) -> Path:
    """PATH from the project folder, where the scripts run (as the records name paths)."""
    return path.relative_to(PROJECT) if path.is_relative_to(PROJECT) else path


def from_project(*paths: Path) -> List[Path]:
    """PATHS, given from the current folder, as seen from the project folder, which becomes the
    current folder: systems name corpus/ and assets/ relative to it, and so does a pipeline
    trained from one (Gemma's base model, assets/gemma-3-270m-q4_k_m.gguf), whatever folder a
    script is started from (study/)."""
    resolved = [path.resolve() for path in paths]
    os.chdir(PROJECT)
    return [project_relative(path) for path in resolved]


def system_file(name: str) -> Path:
    path = SYSTEMS / f"{name}.cfg"
    if not path.is_file():
        raise SystemExit(f"No system {name!r} (no {path.relative_to(PROJECT)}). Systems: {', '.join(names())}")
    return path


def names() -> List[str]:
    return sorted(str(p.relative_to(SYSTEMS).with_suffix("")) for p in SYSTEMS.glob("**/*.cfg"))


def describe(name: str) -> str:
    """The first comment paragraph of the system's file, on one line."""
    lines = []
    for line in system_file(name).read_text(encoding="utf8").splitlines():
        if not line.startswith("#"):
            break
        lines.append(line.lstrip("# ").strip())
    return " ".join(lines)


def resolve(name: str) -> Tuple[str, Dict[str, Any], List[str]]:
    """(the base spaCy config, relative to the project; the system's overrides in the order they
    apply, its bases' first; the chain of systems from the root base to NAME)."""
    chain: List[str] = []
    files: List[Config] = []
    current: Optional[str] = name
    while current is not None:
        if current in chain:
            raise SystemExit(f"System {name!r}: its bases loop ({' -> '.join(chain + [current])})")
        cfg = Config().from_disk(system_file(current), interpolate=False)
        base = cfg.get("base", {})
        if set(base) not in ({"system"}, {"config"}):
            raise SystemExit(f"{system_file(current)}: [base] needs one `system` or one `config`")
        chain.append(current)
        files.append(cfg)
        current = base.get("system")
    config_path = files[-1]["base"]["config"]
    overrides: Dict[str, Any] = {}
    for cfg in reversed(files):  # the root base first; a derived system's values replace its base's
        for key, value in cfg.get("overrides", {}).items():
            overrides.pop(key, None)
            overrides[key] = value
    return config_path, overrides, chain[::-1]


def decoder_components(config: Config) -> List[str]:
    """The components whose model is a decoder of this package (llm_tagger, or a transformer
    with DecoderTransformerModel.v1)."""
    return [
        name for name, component in config.get("components", {}).items()
        if str(component.get("model", {}).get("@architectures", "")).startswith(OURS)
    ]


def system_overrides(
    name: str, seed: Optional[int] = None, model: str = "", extra: Optional[Dict[str, Any]] = None
) -> Tuple[str, Dict[str, Any]]:
    """The base config and every override a run of NAME trains with: the system's own, the
    decoder (`model`, "" = the system's own), the seed (None = the config's, 0) and EXTRA."""
    config_path, overrides, _ = resolve(name)
    overrides = dict(overrides)
    if model:
        base = load_config(PROJECT / config_path, overrides=overrides, interpolate=False)
        for component in decoder_components(base):
            overrides[f"components.{component}.model.name"] = model
    if seed is not None:
        overrides["system.seed"] = seed
    overrides.update(extra or {})
    return config_path, overrides


def training_config(config_path: str, overrides: Dict[str, Any]) -> Config:
    """The config a run trains with (variables not interpolated), as train.py gives it to spaCy."""
    return load_config(PROJECT / config_path, overrides=overrides, interpolate=False)


def config_text(config_path: str, overrides: Dict[str, Any]) -> str:
    """The training config as text, without what only names the output folder (the log file)."""
    overrides = {k: v for k, v in overrides.items() if k != "training.logger.output_file"}
    return training_config(config_path, overrides).to_str()


def same_values(a: Any, b: Any) -> bool:
    """Equal config values, floats to 12 significant digits: a value given on the command line
    was parsed by ujson (`0.0003` -> 0.00030000000000000003), the same value in a file by json."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same_values(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(same_values(x, y) for x, y in zip(a, b))
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-12, abs_tol=0.0)
    return type(a) is type(b) and a == b


def same_config(a: str, b: str) -> bool:
    """Whether two training configs (as text) set the same values."""
    return a == b or same_values(
        Config().from_str(a, interpolate=False), Config().from_str(b, interpolate=False)
    )


def fingerprint(text: str) -> str:
    return hashlib.sha256(text.encode("utf8")).hexdigest()[:16]


def parse_train_command(command: str) -> Tuple[str, Dict[str, Any], int]:
    """(config, overrides, gpu id) of an old-style command line `python scripts/train.py CONFIG
    OUTPUT --section.key value ... --gpu-id N`, as the project ran them before systems/."""
    from spacy_llm_tagger.spacy_adapter import parse_overrides

    args = shlex.split(command)
    at = next(i for i, arg in enumerate(args) if arg.endswith("train.py"))
    config, _output, *rest = args[at + 1:]
    gpu = -1
    if "--gpu-id" in rest:
        i = rest.index("--gpu-id")
        gpu = int(rest[i + 1])
        rest = rest[:i] + rest[i + 2:]
    return config, parse_overrides(rest), gpu


app = typer.Typer(add_completion=False, help=__doc__.split("\n")[0])


@app.command("list")
def list_systems() -> None:
    """Every system with the first paragraph of its file."""
    for name in names():
        print(f"{name:34} {describe(name)}")


@app.command()
def show(name: str, full: bool = typer.Option(True, help="Also print the whole training config")) -> None:
    """A system's chain of bases, its overrides and the training config they make."""
    config_path, overrides, chain = resolve(name)
    print(f"{name}: {describe(name)}")
    print(f"base config: {config_path}; systems: {' -> '.join(chain)}")
    for key, value in overrides.items():
        print(f"  {key} = {srsly.json_dumps(value)}")
    if full:
        print()
        print(config_text(config_path, overrides))


if __name__ == "__main__":
    app()
