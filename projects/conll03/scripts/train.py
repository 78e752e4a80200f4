"""Run `spacy train` with overrides; values written `package:DIST/path` become paths.

Lets configs name model files shipped inside installed Python packages (the
all-MiniLM-L6-v2 encoder for spacy-transformers, say) without hard-coded
site-packages paths.  Usage: train.py CONFIG OUTPUT [--gpu-id N] [--section.key value ...]
"""
import sys
import time
from pathlib import Path

from spacy.cli._util import parse_config_overrides
from spacy.cli.train import train
from spacy.util import load_config

import spacy_llm_tagger  # noqa: F401  (registers the llm_tagger pieces)
from spacy_llm_tagger.errors import ModelNotFoundError
from spacy_llm_tagger.models.loading import PACKAGE_PREFIX, package_path


def resolve_package_path(value: str) -> str:
    if not isinstance(value, str) or not value.startswith(PACKAGE_PREFIX):
        return value
    try:
        return package_path(value)
    except ModelNotFoundError as err:
        sys.exit(str(err))


def main() -> None:
    config, output, *rest = sys.argv[1:]
    use_gpu = -1
    if "--gpu-id" in rest:
        at = rest.index("--gpu-id")
        use_gpu = int(rest[at + 1])
        rest = rest[:at] + rest[at + 2:]
    overrides = parse_config_overrides(rest)
    overrides = {k: resolve_package_path(v) for k, v in overrides.items()}
    # Model names in the config itself (e.g. spacy-transformers' `name`), except in
    # spacy-llm-tagger architectures, which resolve `package:` names on their own (and
    # keep them portable).
    config_values = load_config(Path(config), overrides=overrides, interpolate=False)
    for name, component in config_values.get("components", {}).items():
        key = f"components.{name}.model.name"
        model = component.get("model", {})
        value = model.get("name")
        ours = str(model.get("@architectures", "")).startswith("spacy-llm-tagger.")
        if not ours and isinstance(value, str):
            if value.startswith("package:") and key not in overrides:
                overrides[key] = resolve_package_path(value)
    start = time.perf_counter()
    train(Path(config), Path(output), use_gpu=use_gpu, overrides=overrides)
    seconds = time.perf_counter() - start
    Path(output).mkdir(parents=True, exist_ok=True)
    (Path(output) / "train_seconds.txt").write_text(f"{seconds:.1f}\n")
    print(f"Training took {seconds:.0f} s")


if __name__ == "__main__":
    main()
