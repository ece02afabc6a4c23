"""The offline text corpus: normalization, determinism, manifest, datasets helpers."""

import re

import pytest
from gato.episodes.text_corpus import (
    DEFAULT_SOURCES,
    CorpusSource,
    build_text_dataset,
    corpus_manifest,
    iter_corpus_documents,
    normalize_document,
    split_text_dataset,
    vocabulary_document,
)

# Small, fast sources (the full default corpus takes ~30 s to read).
TOPICS = CorpusSource("topics", "pydoc_topics")
VOCAB = CorpusSource("vocab", "gato_vocabulary")
MINIGRID = CorpusSource("minigrid-docstrings", "package_docstrings", ("minigrid",))
README = CorpusSource("readmes", "package_readmes", ("tokenizers", "no-such-distribution-gato"))

DOCSTRING = """Return the sum of two numbers.

This function adds ``a`` and ``b`` and
returns   the result as a new number.

Example::

    x = add(1, 2)
    print(x)

>>> add(1, 2)
3

```python
def add(a, b):
    return a + b
```

The result is always finite when both inputs are.
"""


def test_normalize_keeps_prose_paragraphs_and_drops_code():
    paragraphs = normalize_document(DOCSTRING)
    assert paragraphs == [
        "Return the sum of two numbers.",
        "This function adds ``a`` and ``b`` and returns the result as a new number.",
        "The result is always finite when both inputs are.",
    ]


def test_normalize_drops_short_fragments():
    assert normalize_document("Args:\n\nx\n\nReturns:\n    int") == []


def test_vocabulary_document_covers_captions_missions_and_numbers():
    lines = set(vocabulary_document().split("\n"))
    assert "a large red circle in the top left" in lines
    assert "go to the red ball" in lines
    assert "pick up a blue key behind you" in lines
    assert "open the yellow door" in lines
    assert any(re.fullmatch(r"put the \w+ \w+ next to the \w+ \w+", line) for line in lines)
    numbers = " ".join(lines).split()
    assert {"0", "7", "1023", "seven", "hundred"} <= set(numbers)


def test_documents_are_deterministic_and_paragraphs_unique():
    first = list(iter_corpus_documents((TOPICS, MINIGRID)))
    second = list(iter_corpus_documents((TOPICS, MINIGRID)))
    assert first == second and len(first) > 50
    paragraphs = [p for document in first for p in document.split("\n\n")]
    assert len(paragraphs) == len(set(paragraphs))
    assert all(p == " ".join(p.split()) for p in paragraphs)  # whitespace normalized


def test_manifest_records_versions_counts_and_hashes():
    manifest = corpus_manifest((VOCAB, MINIGRID, README))
    by_name = {s["name"]: s for s in manifest["sources"]}
    assert list(by_name) == ["vocab", "minigrid-docstrings", "readmes"]
    minigrid = by_name["minigrid-docstrings"]
    assert minigrid["versions"]["minigrid"] is not None and minigrid["files"] > 10 and minigrid["documents"] > 10
    assert re.fullmatch(r"[0-9a-f]{64}", minigrid["sha256"])
    assert by_name["readmes"]["versions"]["no-such-distribution-gato"] is None
    assert by_name["readmes"]["files"] == 1
    assert manifest == corpus_manifest((VOCAB, MINIGRID, README))


def test_manifest_hash_changes_with_the_sources():
    assert corpus_manifest((VOCAB,))["sha256"] != corpus_manifest((VOCAB, README))["sha256"]


def test_default_sources_include_stdlib_and_vocabulary():
    kinds = {s.kind for s in DEFAULT_SOURCES}
    assert {"stdlib_docstrings", "gato_vocabulary", "package_docstrings"} <= kinds


def test_sources_are_validated():
    with pytest.raises(ValueError, match="kind"):
        CorpusSource("x", "web_crawl")
    with pytest.raises(ValueError, match="unique"):
        list(iter_corpus_documents((VOCAB, VOCAB)))


def test_text_dataset_and_split():
    dataset = build_text_dataset((TOPICS, VOCAB))
    assert dataset.column_names == ["text", "source"]
    assert set(dataset["source"]) == {"topics", "vocab"}
    splits = split_text_dataset(dataset, validation_fraction=0.2)
    again = split_text_dataset(dataset, validation_fraction=0.2)
    assert splits["validation"]["text"] == again["validation"]["text"]
    assert len(splits["train"]) + len(splits["validation"]) == len(dataset)
    assert not set(splits["train"]["text"]) & set(splits["validation"]["text"])
    assert 0 < len(splits["validation"]) < len(dataset)
    with pytest.raises(ValueError, match="validation_fraction"):
        split_text_dataset(dataset, validation_fraction=1.5)
