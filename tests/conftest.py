import pytest

from .util import make_tiny_model_dir


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    """A tiny random Llama-family decoder folder with a local tokenizer."""
    return make_tiny_model_dir(tmp_path_factory.mktemp("tiny-llama"), "llama")


@pytest.fixture(scope="session")
def tiny_family_dir(tmp_path_factory):
    cache = {}

    def get(family: str):
        if family not in cache:
            cache[family] = make_tiny_model_dir(tmp_path_factory.mktemp(f"tiny-{family}"), family)
        return cache[family]

    return get
