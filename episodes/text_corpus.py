"""An offline English text corpus, built deterministically from text that ships with installed packages.

Gato's language data in the paper is MassiveText; nothing like it may be downloaded here, so the
corpus is assembled from English prose that is already on disk and fixed for a given set of
installed versions:

- the CPython standard library's module / class / function docstrings (read with :mod:`ast`, so no
  module is imported) and the language-reference topics that ``pydoc`` ships
  (``pydoc_data.topics``);
- docstrings of a few installed libraries (transformers, datasets, numpy, …);
- the README long descriptions in the ``METADATA`` files of selected installed distributions;
- a generated list of the project's own task and caption vocabulary (colours, shapes, sizes,
  positions, BabyAI missions, numbers), so those words become whole pieces of the tokenizer.

Every document is normalized the same way (code-like lines and literal blocks dropped, whitespace
collapsed inside paragraphs) and deduplicated paragraph by paragraph across the whole corpus, in a
fixed order (sources in the order given, files sorted by path, docstrings in :func:`ast.walk` order).
:func:`corpus_manifest` records each source's package, version, file count and a sha256 of the
text it contributed, so the tokenizer trained on it (``scripts/train_tokenizer.py``) can be
reproduced exactly and a changed environment is detected.

Public API: :data:`DEFAULT_SOURCES`, :class:`CorpusSource`, :func:`iter_corpus_documents`,
:func:`corpus_manifest`, :func:`build_text_dataset`, :func:`split_text_dataset`.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import importlib.util
import itertools
import platform
import re
import sysconfig
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from email import message_from_string
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    import datasets

# Bumped whenever the normalization below changes, so an old manifest is recognised as stale.
NORMALIZATION_VERSION = 1

SourceKind = Literal["stdlib_docstrings", "pydoc_topics", "package_docstrings", "package_readmes", "gato_vocabulary"]
SOURCE_KINDS: tuple[str, ...] = (
    "stdlib_docstrings",
    "pydoc_topics",
    "package_docstrings",
    "package_readmes",
    "gato_vocabulary",
)


@dataclass(frozen=True)
class CorpusSource:
    """One part of the corpus.

    Args:
        name: unique name used in the manifest and in the dataset's ``source`` column.
        kind: where the text comes from (one of :data:`SOURCE_KINDS`).
        packages: for ``package_docstrings``: the import packages whose ``.py`` files are read;
            for ``package_readmes``: the distribution names whose ``METADATA`` README is read.
            Unused for the other kinds.
    """

    name: str
    kind: SourceKind
    packages: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.kind not in SOURCE_KINDS:
            raise ValueError(f"CorpusSource.kind must be one of {SOURCE_KINDS}, got {self.kind!r}")


# Library docstrings: well-written English about the very things gato does (models, data, arrays,
# environments). torch is left out: reading its 2,300 files alone takes ~15 s on this machine.
_DOCSTRING_PACKAGES = (
    "transformers",
    "datasets",
    "accelerate",
    "huggingface_hub",
    "numpy",
    "gymnasium",
    "minigrid",
    "peft",
)
_README_DISTRIBUTIONS = (
    "accelerate", "datasets", "deepspeed", "gymnasium", "huggingface-hub", "matplotlib", "metaworld",
    "minigrid", "numpy", "pandas", "peft", "pillow", "pytest", "rich", "scipy", "sentencepiece",
    "tokenizers", "torch", "tqdm", "transformers",
)  # fmt: skip

DEFAULT_SOURCES: tuple[CorpusSource, ...] = (
    CorpusSource("gato-vocabulary", "gato_vocabulary"),
    CorpusSource("python-stdlib-docstrings", "stdlib_docstrings"),
    CorpusSource("python-language-reference", "pydoc_topics"),
    CorpusSource("library-docstrings", "package_docstrings", _DOCSTRING_PACKAGES),
    CorpusSource("package-readmes", "package_readmes", _README_DISTRIBUTIONS),
)

# Stdlib folders that are tests, vendored code or not prose.
_STDLIB_SKIP = frozenset({"test", "tests", "idlelib", "lib2to3", "site-packages", "turtledemo", "__pycache__"})
_PACKAGE_SKIP = frozenset({"test", "tests", "testing", "_vendor", "vendor", "__pycache__"})


# --- normalization ------------------------------------------------------------------------------------
_CODE_START = re.compile(
    r"^(>>>|\.\.\.|\$ |%|#|//|@|\.\. |:[a-z]+:|[-=~^*+`#_]{3,}|\||<|\{|\}|\[|\]|\(|\)|import |from \S+ import |"
    r"def |class |return |raise |if .*:$|for .*:$|pip |python |git )"
)
_FENCE = re.compile(r"^\s*(```|~~~)")
_WORD = re.compile(r"[A-Za-z]+")
_MIN_PARAGRAPH_CHARS = 24
_MIN_PARAGRAPH_WORDS = 4
# A prose line is mostly letters, digits, spaces and ordinary punctuation once inline code spans
# (`...`) are taken out; an "=" outside them is an assignment or a keyword argument, i.e. code.
_INLINE_CODE = re.compile(r"`[^`]*`")
_PROSE_CHARS = re.compile(r"[A-Za-z0-9\s,.;:'\"!?()\-*/]")
_MIN_PROSE_FRACTION = 0.9


def _is_code_like(line: str) -> bool:
    stripped = line.strip()
    if _CODE_START.match(stripped):
        return True
    if stripped.endswith(("{", "}", ";", ")", "]", "\\")) and not stripped.endswith(".)"):
        return True
    outside_code = _INLINE_CODE.sub("", stripped)
    if "=" in outside_code:
        return True
    prose = len(_PROSE_CHARS.findall(outside_code))
    return prose < _MIN_PROSE_FRACTION * len(outside_code)


def normalize_document(text: str) -> list[str]:
    """Raw documentation text → a list of normalized English paragraphs.

    Fenced code blocks (````` ```/~~~ `````), reST literal blocks (the indented lines after a
    line ending in ``::``), doctest lines and other code-like lines are dropped; each remaining
    paragraph (lines separated by a blank line) is joined into one line with single spaces.
    Paragraphs shorter than 24 characters or 4 words are dropped.
    """
    paragraphs: list[str] = []
    current: list[str] = []
    in_fence = False
    literal_indent: int | None = None  # indentation of the line that opened a reST literal block

    def flush() -> None:
        if current:
            paragraph = " ".join(" ".join(current).split())
            if len(paragraph) >= _MIN_PARAGRAPH_CHARS and len(_WORD.findall(paragraph)) >= _MIN_PARAGRAPH_WORDS:
                paragraphs.append(paragraph)
            current.clear()

    for line in text.expandtabs(4).splitlines():
        if _FENCE.match(line):
            in_fence = not in_fence
            flush()
            continue
        if in_fence:
            continue
        stripped = line.strip()
        indent = len(line) - len(line.lstrip())
        if literal_indent is not None:
            if not stripped or indent > literal_indent:
                continue
            literal_indent = None
        if not stripped:
            flush()
            continue
        if stripped.endswith("::"):
            literal_indent = indent
            stripped = stripped[:-1]  # "Example::" reads as "Example:"
        if _is_code_like(stripped):
            flush()  # a code line ends the prose paragraph around it
            continue
        current.append(stripped)
    flush()
    return paragraphs


# --- readers ------------------------------------------------------------------------------------------
def _python_files(root: Path, skip: frozenset[str]) -> list[Path]:
    return sorted(p for p in root.rglob("*.py") if not skip.intersection(p.relative_to(root).parts[:-1]))


# Fields of a node that hold nested blocks, in ast's field order (the order ast.walk visits them).
_STATEMENT_FIELDS = ("body", "handlers", "orelse", "finalbody", "cases")
_BLOCK_NODES = (ast.stmt, ast.excepthandler, ast.match_case)


def _docstrings(path: Path) -> Iterator[str]:
    try:
        tree = ast.parse(path.read_bytes(), filename=str(path))
    except (SyntaxError, ValueError):  # e.g. Python-2 example files shipped inside a package
        return
    # Breadth-first like ast.walk, but only through statements: docstrings live in module, class and
    # function bodies, which are reachable through statements only, and skipping the expressions
    # (~90% of the nodes) keeps the order of ast.walk while making the walk ~5x faster.
    queue = deque([tree])
    while queue:
        node = queue.popleft()
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            docstring = ast.get_docstring(node, clean=True)
            if docstring:
                yield docstring
        for field in _STATEMENT_FIELDS:
            children = getattr(node, field, None)
            if isinstance(children, list):
                queue.extend(c for c in children if isinstance(c, _BLOCK_NODES))


def _package_root(package: str) -> Path | None:
    # find_spec on a top-level name locates the package without importing (and running) it
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(sorted(spec.submodule_search_locations)[0])


@functools.cache
def _packages_distributions() -> dict[str, list[str]]:
    return metadata.packages_distributions()  # scans every installed distribution: do it once


def _distribution_of(package: str) -> str:
    distributions = _packages_distributions().get(package, [package])
    return sorted(distributions)[0]


def _version(distribution: str) -> str | None:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def _stdlib_root() -> Path:
    return Path(sysconfig.get_paths()["stdlib"])


@dataclass
class _SourceText:
    """What one source yields: its files (for the manifest) and its raw documents, lazily."""

    versions: dict[str, str | None]
    files: list[str]
    documents: Iterable[str]


def _read_source(source: CorpusSource) -> _SourceText:
    if source.kind == "stdlib_docstrings":
        root = _stdlib_root()
        paths = _python_files(root, _STDLIB_SKIP)
        documents = itertools.chain.from_iterable(_docstrings(p) for p in paths)
        return _SourceText({"python": platform.python_version()}, [str(p.relative_to(root)) for p in paths], documents)
    if source.kind == "pydoc_topics":
        from pydoc_data.topics import topics  # the language reference text pydoc shows; fixed per Python version

        return _SourceText(
            {"python": platform.python_version()}, ["pydoc_data/topics.py"], [topics[k] for k in sorted(topics)]
        )
    if source.kind == "package_docstrings":
        versions: dict[str, str | None] = {}
        files: list[str] = []
        paths: list[Path] = []
        for package in source.packages:
            root = _package_root(package)
            versions[package] = _version(_distribution_of(package)) if root is not None else None
            if root is None:
                continue
            package_paths = _python_files(root, _PACKAGE_SKIP)
            paths += package_paths
            files += [f"{package}/{p.relative_to(root)}" for p in package_paths]
        return _SourceText(versions, files, itertools.chain.from_iterable(_docstrings(p) for p in paths))
    if source.kind == "package_readmes":
        versions, files, documents = {}, [], []
        for distribution in source.packages:
            versions[distribution] = _version(distribution)
            if versions[distribution] is None:
                continue
            text = metadata.distribution(distribution).read_text("METADATA") or ""
            body = message_from_string(text).get_payload()
            if isinstance(body, str) and body.strip():
                files.append(f"{distribution}/METADATA")
                documents.append(body)
        return _SourceText(versions, files, documents)
    # gato_vocabulary
    return _SourceText({}, [], [vocabulary_document()])


# --- the project's own vocabulary ---------------------------------------------------------------------
COLOURS = ("red", "green", "blue", "yellow", "purple", "orange", "pink", "white", "black", "grey", "gray", "brown", "cyan", "magenta")  # fmt: skip
SHAPES = ("circle", "square", "triangle", "rectangle", "star", "cross", "diamond", "ellipse", "hexagon", "ball", "box", "key", "door")  # fmt: skip
SIZES = ("small", "large", "big", "tiny", "medium")
POSITIONS = (
    "in the top left", "in the top right", "in the bottom left", "in the bottom right", "in the centre",
    "in the center", "in the middle", "at the top", "at the bottom", "on the left", "on the right",
)  # fmt: skip
BABYAI_COLOURS = ("red", "green", "blue", "purple", "yellow", "grey")
BABYAI_OBJECTS = ("ball", "box", "key", "door")
BABYAI_LOCATIONS = ("", " in front of you", " behind you", " on your left", " on your right")
_NUMBER_WORDS = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
    "seventeen eighteen nineteen twenty thirty forty fifty sixty seventy eighty ninety hundred thousand"
).split()


def vocabulary_document() -> str:
    """The project's caption and mission vocabulary as one document, one phrase per line.

    Captions ("a large red circle in the top left"), BabyAI missions ("go to the red ball",
    "pick up a blue key behind you", "open the yellow door", "put the red ball next to the grey box",
    "… then …", "… after you …"), and numbers as digits and words.
    """
    lines: list[str] = []
    for size, colour, shape, position in itertools.product(SIZES, COLOURS, SHAPES, POSITIONS):
        lines.append(f"a {size} {colour} {shape} {position}")
    for article, colour, obj, where in itertools.product(
        ("the", "a"), BABYAI_COLOURS, BABYAI_OBJECTS, BABYAI_LOCATIONS
    ):
        thing = f"{article} {colour} {obj}{where}"
        lines += [f"go to {thing}", f"pick up {thing}" if obj != "door" else f"open {thing}"]
        if obj == "door":
            lines.append(f"unlock {thing}")
    for first, second in itertools.product(BABYAI_OBJECTS[:3], BABYAI_OBJECTS):
        for colour_a, colour_b in zip(BABYAI_COLOURS, BABYAI_COLOURS[1:] + BABYAI_COLOURS[:1]):
            lines.append(f"put the {colour_a} {first} next to the {colour_b} {second}")
            lines.append(f"pick up a {colour_a} {first} then go to the {colour_b} {second}")
            lines.append(f"go to the {colour_b} {second} after you pick up the {colour_a} {first}")
            lines.append(f"open the {colour_a} door and pick up the {colour_b} {first}")
    lines += [" ".join(str(n) for n in range(start, start + 32)) for start in range(0, 1024, 32)]
    lines += [" ".join(_NUMBER_WORDS)]
    return "\n".join(lines)


# --- the corpus ---------------------------------------------------------------------------------------
def _iter_source_documents(source: CorpusSource, seen: set[bytes]) -> tuple[_SourceText, Iterator[str]]:
    """(source text, its normalized documents with paragraphs already in ``seen`` removed)."""
    source_text = _read_source(source)

    def documents() -> Iterator[str]:
        if source.kind == "gato_vocabulary":  # phrases, not prose: one line each, no normalization
            yield from source_text.documents
            return
        for raw in source_text.documents:
            fresh = []
            for paragraph in normalize_document(raw):
                key = hashlib.blake2b(paragraph.encode(), digest_size=16).digest()
                if key not in seen:
                    seen.add(key)
                    fresh.append(paragraph)
            if fresh:
                yield "\n\n".join(fresh)

    return source_text, documents()


def _check_sources(sources: Iterable[CorpusSource]) -> tuple[CorpusSource, ...]:
    sources = tuple(sources)
    names = [s.name for s in sources]
    if len(set(names)) != len(names):
        raise ValueError(f"sources: names must be unique, got {names}")
    return sources


def iter_corpus_documents(sources: Iterable[CorpusSource] = DEFAULT_SOURCES) -> Iterator[str]:
    """Yield the corpus's documents (normalized, deduplicated), in a fixed order.

    A document is a docstring or README of one or more paragraphs separated by ``"\\n\\n"``; the
    vocabulary source is one document with one phrase per line.
    """
    for _, document in _iter_tagged_documents(sources):
        yield document


def _iter_tagged_documents(sources: Iterable[CorpusSource]) -> Iterator[tuple[str, str]]:
    seen: set[bytes] = set()
    for source in _check_sources(sources):
        _, documents = _iter_source_documents(source, seen)
        for document in documents:
            yield source.name, document


def corpus_manifest(sources: Iterable[CorpusSource] = DEFAULT_SOURCES) -> dict:
    """Describe the corpus exactly: Python version, per-source package versions, counts and sha256.

    Returns a JSON-serializable dict ``{"normalization_version", "python", "sources": [{"name",
    "kind", "versions", "files", "documents", "characters", "sha256"}, ...], "sha256"}``. A source's
    ``sha256`` hashes the documents it contributes (each followed by a NUL byte); the top-level
    ``sha256`` hashes the whole corpus in order. Two environments that give the same manifest give
    the same corpus, hence the same tokenizer.
    """
    seen: set[bytes] = set()
    total = hashlib.sha256()
    entries = []
    for source in _check_sources(sources):
        source_text, documents = _iter_source_documents(source, seen)
        digest = hashlib.sha256()
        n_documents = n_characters = 0
        for document in documents:
            data = document.encode() + b"\0"
            digest.update(data)
            total.update(data)
            n_documents += 1
            n_characters += len(document)
        entries.append(
            {
                "name": source.name,
                "kind": source.kind,
                "versions": source_text.versions,
                "files": len(source_text.files),
                "documents": n_documents,
                "characters": n_characters,
                "sha256": digest.hexdigest(),
            }
        )
    return {
        "normalization_version": NORMALIZATION_VERSION,
        "python": platform.python_version(),
        "sources": entries,
        "sha256": total.hexdigest(),
    }


def build_text_dataset(sources: Iterable[CorpusSource] = DEFAULT_SOURCES) -> datasets.Dataset:
    """The corpus as a ``datasets.Dataset`` with columns ``text`` (a document) and ``source`` (its name).

    Rows are in the corpus's fixed order; use :func:`split_text_dataset` for train/validation.
    """
    import datasets  # only this helper needs it; the corpus itself is plain Python

    texts: list[str] = []
    names: list[str] = []
    for name, document in _iter_tagged_documents(sources):
        names.append(name)
        texts.append(document)
    features = datasets.Features({"text": datasets.Value("string"), "source": datasets.Value("string")})
    return datasets.Dataset.from_dict({"text": texts, "source": names}, features=features)


def split_text_dataset(
    dataset: datasets.Dataset, validation_fraction: float = 0.01, salt: str = "gato-text"
) -> datasets.DatasetDict:
    """Split a text dataset into ``DatasetDict(train=..., validation=...)`` by hashing each text.

    A document goes to validation when the first 8 bytes of ``sha256(salt + text)``, read as a
    fraction of 2**64, are below ``validation_fraction``; the assignment of a document therefore
    never depends on the rest of the corpus or on a random state. Order within each split is kept.
    """
    import datasets

    if not 0.0 < validation_fraction < 1.0:
        raise ValueError(f"validation_fraction must be in (0, 1), got {validation_fraction}")
    threshold = int(validation_fraction * 2**64)
    is_validation = [
        int.from_bytes(hashlib.sha256((salt + text).encode()).digest()[:8], "big") < threshold
        for text in dataset["text"]
    ]
    validation = [i for i, v in enumerate(is_validation) if v]
    train = [i for i, v in enumerate(is_validation) if not v]
    return datasets.DatasetDict(train=dataset.select(train), validation=dataset.select(validation))


__all__ = [
    "CorpusSource",
    "DEFAULT_SOURCES",
    "SOURCE_KINDS",
    "NORMALIZATION_VERSION",
    "normalize_document",
    "vocabulary_document",
    "iter_corpus_documents",
    "corpus_manifest",
    "build_text_dataset",
    "split_text_dataset",
]
