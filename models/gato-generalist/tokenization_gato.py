"""Gato's text tokenizer: a SentencePiece model with 32000 pieces, trained by this project, used through transformers.

The paper tokenizes text "with SentencePiece, 32000 subwords" into ids [0, 32000) (GATO_SPEC.md
section 1). No pretrained model may be downloaded here, so ``scripts/train_tokenizer.py`` trains one
on the offline corpus of :mod:`gato.episodes.text_corpus` with :func:`train_sentencepiece` and ships it
in ``processing/tokenizer/`` (:data:`DEFAULT_TOKENIZER_DIR`):

- ``tokenizer.model``: the SentencePiece model itself (the reference; the exact encoder);
- ``tokenizer.json`` + ``tokenizer_config.json``: the same model as a 🤗 ``tokenizers`` pipeline,
  loaded by ``transformers.PreTrainedTokenizerFast`` — a class every transformers version has, so
  ``AutoTokenizer.from_pretrained(folder)`` works offline without ``import gato`` and without
  ``sentencepiece``;
- ``corpus_manifest.json``: the corpus's sources, versions and hashes (reproducibility).

Choices (the paper says only "SentencePiece, 32000"):

- **BPE** (SentencePiece's ``model_type=bpe``, as Llama's tokenizer). SentencePiece's default,
  unigram, was tried first: on our ~9 MB deduplicated offline corpus it supports at most ~25k
  pieces ("Vocabulary size too high"), while BPE reaches the paper's exact 32000. ``unigram``
  remains selectable in :func:`train_sentencepiece` and the script.
- **identity normalization** and no whitespace collapsing, with **byte fallback**: every string
  encodes (unseen characters become their UTF-8 bytes, ids 4…259) and ``decode(encode(text)) ==
  text`` exactly, except that U+2581 "▁" (SentencePiece's own whitespace marker) decodes to a space.
  SentencePiece's default NFKC normalization would silently rewrite text (e.g. "ﬁ" → "fi"), which a
  tokenizer that also serves as a decoder of the model's output should not do.
- the dummy prefix (a space before the text) stays on, SentencePiece's default, so a word is the
  same piece at the start of a text as inside it.
- **special tokens**: pad ``<pad>`` = 0, unk ``<unk>`` = 1, bos ``<s>`` = 2, eos ``</s>`` = 3
  (:mod:`gato.suite.token_layout`). Encoding adds **none** of them (no post-processor): the
  Gato processor places bos/eos itself. ``split_special_tokens`` is on, so the literal text "<s>"
  in data is encoded as text and can never inject a control id.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Literal

from transformers import PreTrainedTokenizerFast

try:
    from gato.suite.token_layout import BOS_TOKEN_ID, EOS_TOKEN_ID, PAD_TOKEN_ID, TEXT_VOCAB_SIZE, UNK_TOKEN_ID
except ImportError:  # a remote-code folder (GatoProcessor.save_pretrained), loaded where gato is not installed
    from .token_layout import BOS_TOKEN_ID, EOS_TOKEN_ID, PAD_TOKEN_ID, TEXT_VOCAB_SIZE, UNK_TOKEN_ID

DEFAULT_TOKENIZER_DIR = Path(__file__).resolve().parent / "tokenizer"
SENTENCEPIECE_MODEL_FILE = "tokenizer.model"
CORPUS_MANIFEST_FILE = "corpus_manifest.json"

PAD_TOKEN, UNK_TOKEN, BOS_TOKEN, EOS_TOKEN = "<pad>", "<unk>", "<s>", "</s>"
SPECIAL_TOKENS: dict[str, tuple[str, int]] = {
    "pad_token": (PAD_TOKEN, PAD_TOKEN_ID),
    "unk_token": (UNK_TOKEN, UNK_TOKEN_ID),
    "bos_token": (BOS_TOKEN, BOS_TOKEN_ID),
    "eos_token": (EOS_TOKEN, EOS_TOKEN_ID),
}

# SentencePiece skips training sentences longer than this many bytes; paragraphs of the corpus are
# sometimes a few KB, so the default (4192) is raised rather than lose them.
MAX_SENTENCE_BYTES = 16384

# SentencePiece piece types (sentencepiece_model.proto: NORMAL=1, UNKNOWN=2, CONTROL=3, USER_DEFINED=4, BYTE=6)
_NORMAL, _USER_DEFINED = 1, 4
_BPE = 2  # TrainerSpec.ModelType: UNIGRAM=1, BPE=2
_UNREACHABLE_SCORE = -1e9


def train_sentencepiece(
    sentences: Iterable[str],
    vocab_size: int = TEXT_VOCAB_SIZE,
    model_type: Literal["bpe", "unigram"] = "bpe",
    seed: int = 0,
    character_coverage: float = 0.9995,
) -> bytes:
    """Train a SentencePiece model on ``sentences`` and return the serialized model (``tokenizer.model`` bytes).

    Deterministic: one thread, every sentence used in the order given (no sampling, no shuffling),
    a fixed random seed; the same sentences give byte-identical output.

    Args:
        sentences: training sentences (one line of text each; newlines inside are not expected).
        vocab_size: number of pieces including the 4 special pieces and the 256 byte pieces.
        model_type: "bpe" (the default, see the module docstring) or "unigram".
        seed: SentencePiece's random-generator seed.
        character_coverage: fraction of characters covered by single-character pieces; the rest
            are encoded through byte fallback.
    """
    import sentencepiece as spm  # training only; loading the shipped tokenizer does not need it

    if vocab_size <= 4 + 256:
        raise ValueError(f"vocab_size must exceed the 4 special + 256 byte pieces (260), got {vocab_size}")
    if model_type not in ("bpe", "unigram"):
        raise ValueError(f"model_type must be 'bpe' or 'unigram', got {model_type!r}")
    spm.set_random_generator_seed(seed)
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(sentences),
        model_writer=model,
        model_type=model_type,
        vocab_size=vocab_size,
        character_coverage=character_coverage,
        byte_fallback=True,
        normalization_rule_name="identity",
        remove_extra_whitespaces=False,
        add_dummy_prefix=True,
        pad_id=PAD_TOKEN_ID,
        unk_id=UNK_TOKEN_ID,
        bos_id=BOS_TOKEN_ID,
        eos_id=EOS_TOKEN_ID,
        pad_piece=PAD_TOKEN,
        unk_piece=UNK_TOKEN,
        bos_piece=BOS_TOKEN,
        eos_piece=EOS_TOKEN,
        num_threads=1,
        input_sentence_size=0,  # use every sentence: sampling would make the model depend on the sample
        shuffle_input_sentence=False,
        max_sentence_length=MAX_SENTENCE_BYTES,
        hard_vocab_limit=True,
        minloglevel=2,
    )
    return model.getvalue()


def tokenizer_from_sentencepiece(model: bytes) -> PreTrainedTokenizerFast:
    """A transformers tokenizer equivalent to the SentencePiece ``model`` (serialized bytes).

    Uses transformers' own SentencePiece → ``tokenizers`` translation
    (``SpmConverter.build_tokenizer_from_spm_proto``), which follows the model's normalizer spec so
    that ids equal ``SentencePieceProcessor.encode`` on plain text (checked in the tests).
    """
    from sentencepiece import sentencepiece_model_pb2  # needs protobuf; conversion time only
    from transformers.convert_slow_tokenizer import SpmConverter

    proto = sentencepiece_model_pb2.ModelProto()
    proto.ParseFromString(model)
    for name, (piece, token_id) in SPECIAL_TOKENS.items():
        if proto.pieces[token_id].piece != piece:
            raise ValueError(
                f"{name}: expected piece {piece!r} at id {token_id}, got {proto.pieces[token_id].piece!r}"
            )
    if proto.trainer_spec.model_type == _BPE:
        # merges are regenerated from the normal pieces' scores, so control and byte pieces can never
        # be formed from text (as in SentencePiece)
        vocab = {p.piece: i for i, p in enumerate(proto.pieces)}
    else:
        # SentencePiece never matches control, unknown or byte pieces against text, but a tokenizers
        # Unigram matches every vocabulary entry by its score (0.0 for these, the best possible), so
        # the text "<s>" or "<0x41>" would become one control / byte id. An unreachable score keeps
        # them out of the segmentation; byte fallback still finds byte pieces by name. (Exact only
        # when the characters of those names, "<", ">", "/", letters and hex digits, are pieces of
        # the model, as in any model trained on English; otherwise the unknown-character penalty,
        # below every score, would make "<s>" the cheaper path.)
        normal = {_NORMAL, _USER_DEFINED}
        vocab = [(p.piece, p.score if p.type in normal else _UNREACHABLE_SCORE) for p in proto.pieces]
    # legacy=True: the dummy prefix is added even when the text starts with a space, as SentencePiece does
    backend = SpmConverter.build_tokenizer_from_spm_proto(proto=proto, vocab=vocab, legacy=True)
    if backend is None:
        raise ValueError("model: expected a unigram or BPE SentencePiece model")
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        split_special_tokens=True,
        clean_up_tokenization_spaces=False,
        **{name: piece for name, (piece, _) in SPECIAL_TOKENS.items()},
    )


def save_tokenizer(model: bytes, directory: str | Path, manifest: dict | None = None) -> Path:
    """Write the SentencePiece ``model`` and its transformers form (and the corpus ``manifest``) to ``directory``.

    Files: ``tokenizer.model``, ``tokenizer.json``, ``tokenizer_config.json`` and, when given,
    ``corpus_manifest.json``. Writing the same inputs twice gives byte-identical files.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / SENTENCEPIECE_MODEL_FILE).write_bytes(model)
    tokenizer_from_sentencepiece(model).save_pretrained(directory)
    # transformers 5 records its class as "TokenizersBackend"; its alias "PreTrainedTokenizerFast"
    # names the same class and is understood by every transformers version that reads tokenizer.json.
    config_path = directory / "tokenizer_config.json"
    config = json.loads(config_path.read_text(encoding="utf-8"))
    config["tokenizer_class"] = "PreTrainedTokenizerFast"
    config_path.write_text(json.dumps(config, indent=2, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8")
    if manifest is not None:
        text = json.dumps(manifest, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
        (directory / CORPUS_MANIFEST_FILE).write_text(text, encoding="utf-8")
    return directory


def load_default_tokenizer() -> PreTrainedTokenizerFast:
    """The shipped tokenizer (:data:`DEFAULT_TOKENIZER_DIR`), loaded offline.

    Returns a ``PreTrainedTokenizerFast`` with 32000 ids, pad=0, unk=1, bos=2, eos=3; encoding adds
    no special tokens. ``tokenizer(text)["input_ids"]`` are text ids in [0, 32000).
    """
    if not (DEFAULT_TOKENIZER_DIR / "tokenizer.json").is_file():
        raise ValueError(
            f"DEFAULT_TOKENIZER_DIR: expected tokenizer.json in {DEFAULT_TOKENIZER_DIR}; "
            "train it with `python scripts/train_tokenizer.py`"
        )
    return PreTrainedTokenizerFast.from_pretrained(DEFAULT_TOKENIZER_DIR, local_files_only=True)


__all__ = [
    "DEFAULT_TOKENIZER_DIR",
    "SPECIAL_TOKENS",
    "train_sentencepiece",
    "tokenizer_from_sentencepiece",
    "save_tokenizer",
    "load_default_tokenizer",
]
