"""Train gato's SentencePiece text tokenizer on the offline corpus and ship it in ``processing/tokenizer/``.

The exact command that produced the shipped files (run from the repository root, Python 3.11.7 and
the package versions listed in ``corpus_manifest.json``; ~2 minutes on this 2-core machine: ~40 s to
read the corpus, the rest SentencePiece's single-threaded training)::

    HF_HUB_OFFLINE=1 python scripts/train_tokenizer.py

It builds the corpus of :mod:`gato.episodes.text_corpus` (``DEFAULT_SOURCES``, ~8.8 M characters),
trains a BPE SentencePiece model of exactly ``token_layout.TEXT_VOCAB_SIZE`` (32000) pieces with byte
fallback and pad=0, unk=1, bos=2, eos=3 (:func:`gato.processing.tokenization_gato.train_sentencepiece`:
one thread, no sampling or shuffling, seed 0; why BPE and not unigram is in that module's docstring),
and writes ``tokenizer.model``, ``tokenizer.json``, ``tokenizer_config.json`` and
``corpus_manifest.json``. Running it twice in the same environment gives byte-identical files (checked
by hand: two runs, ``cmp`` of all four files). ``corpus_manifest.json`` records the Python and package
versions of that environment; ``--check`` compares it with the current environment without training,
``--convert-only`` rewrites the transformers files from the existing ``tokenizer.model``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from gato.episodes.text_corpus import DEFAULT_SOURCES, corpus_manifest, iter_corpus_documents
from gato.processing.tokenization_gato import (
    CORPUS_MANIFEST_FILE,
    DEFAULT_TOKENIZER_DIR,
    SENTENCEPIECE_MODEL_FILE,
    save_tokenizer,
    train_sentencepiece,
)
from gato.suite.token_layout import TEXT_VOCAB_SIZE


def corpus_sentences() -> Iterator[str]:
    """The corpus as SentencePiece training sentences: one paragraph (or vocabulary phrase) per line."""
    for document in iter_corpus_documents(DEFAULT_SOURCES):
        yield from (line for line in document.split("\n") if line.strip())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output-dir", type=Path, default=DEFAULT_TOKENIZER_DIR)
    parser.add_argument("--vocab-size", type=int, default=TEXT_VOCAB_SIZE)
    parser.add_argument("--model-type", choices=("bpe", "unigram"), default="bpe")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--check", action="store_true", help="only compare the shipped manifest with this environment")
    parser.add_argument(
        "--convert-only",
        action="store_true",
        help="rewrite the transformers files from the existing tokenizer.model and manifest, without training",
    )
    args = parser.parse_args(argv)

    start = time.perf_counter()
    if args.convert_only:
        model = (args.output_dir / SENTENCEPIECE_MODEL_FILE).read_bytes()
        manifest = json.loads((args.output_dir / CORPUS_MANIFEST_FILE).read_text(encoding="utf-8"))
        save_tokenizer(model, args.output_dir, manifest)
        print(f"converted {args.output_dir / SENTENCEPIECE_MODEL_FILE}")
        return 0
    manifest = corpus_manifest(DEFAULT_SOURCES)
    manifest["tokenizer"] = {"model_type": args.model_type, "vocab_size": args.vocab_size, "seed": args.seed}
    print(
        f"corpus: {sum(s['characters'] for s in manifest['sources']):,} characters, sha256 {manifest['sha256'][:16]}…"
    )
    if args.check:
        shipped = json.loads((args.output_dir / CORPUS_MANIFEST_FILE).read_text(encoding="utf-8"))
        same = shipped == manifest
        print("manifest matches this environment" if same else "manifest DIFFERS from this environment")
        return 0 if same else 1

    model = train_sentencepiece(corpus_sentences(), args.vocab_size, args.model_type, args.seed)
    save_tokenizer(model, args.output_dir, manifest)
    print(f"wrote {args.output_dir} in {time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
