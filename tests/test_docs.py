"""docs/ pages name every setting that exists, and nothing they link to is missing."""

import re
from dataclasses import fields
from pathlib import Path

from spacy.language import Language

import spacy_llm_tagger  # noqa: F401  (registers the factory)
from spacy_llm_tagger.models.settings import DecoderSettings

DOCS = Path(__file__).parent.parent / "docs"


def test_the_configuration_page_lists_every_setting():
    page = (DOCS / "configuration.md").read_text(encoding="utf8")
    documented = set(re.findall(r"^\| `([a-z_0-9`, ]+)` \|", page, re.M))
    names = {name.strip("` ") for row in documented for name in row.split(",")}
    component = set(Language.get_factory_meta("llm_tagger").default_config) - {"model"}
    missing = ({s.name for s in fields(DecoderSettings)} | component) - names
    assert not missing, f"docs/configuration.md does not describe {sorted(missing)}"


def test_relative_links_in_docs_point_to_files_that_exist():
    for page in DOCS.glob("*.md"):
        for target in re.findall(r"\]\((?!https?:)([^)#]+)", page.read_text(encoding="utf8")):
            assert (page.parent / target).exists(), f"{page.name} links to missing {target}"


def test_readme_links_point_to_files_that_exist_and_it_stays_short():
    readme = DOCS.parent / "README.md"
    text = readme.read_text(encoding="utf8")
    for target in re.findall(r"\]\((?!https?:)([^)#]+)", text):
        assert (readme.parent / target).exists(), f"README.md links to missing {target}"
    assert len(text.splitlines()) <= 250, "README.md is for users: at most 250 lines (details go to docs/)"
