"""Gato's text tokenizer: the shipped SentencePiece model through transformers, and its training."""

import json
import os
import platform
import subprocess
import sys
from importlib import metadata

import pytest
import sentencepiece as spm
from gato.processing.tokenization_gato import (
    CORPUS_MANIFEST_FILE,
    DEFAULT_TOKENIZER_DIR,
    SENTENCEPIECE_MODEL_FILE,
    load_default_tokenizer,
    save_tokenizer,
    tokenizer_from_sentencepiece,
    train_sentencepiece,
)
from gato.suite import token_layout
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from transformers import AutoTokenizer

# Any Unicode string without lone surrogates (not encodable as UTF-8, so not text a file can hold)
# and without U+2581 "▁": SentencePiece writes spaces as "▁", so a literal "▁" decodes to a space.
TEXT = st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\u2581"), max_size=200)
PROPERTY_SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture(scope="module")
def tokenizer():
    return load_default_tokenizer()


@pytest.fixture(scope="module")
def sentencepiece_processor():
    return spm.SentencePieceProcessor(model_file=str(DEFAULT_TOKENIZER_DIR / SENTENCEPIECE_MODEL_FILE))


def test_vocabulary_has_exactly_the_text_ids(tokenizer):
    assert len(tokenizer) == token_layout.TEXT_VOCAB_SIZE
    assert tokenizer.vocab_size == token_layout.TEXT_VOCAB_SIZE
    assert sorted(tokenizer.get_vocab().values()) == list(range(token_layout.TEXT_VOCAB_SIZE))


def test_special_ids_follow_token_layout(tokenizer):
    assert tokenizer.pad_token_id == token_layout.PAD_TOKEN_ID
    assert tokenizer.unk_token_id == token_layout.UNK_TOKEN_ID
    assert tokenizer.bos_token_id == token_layout.BOS_TOKEN_ID
    assert tokenizer.eos_token_id == token_layout.EOS_TOKEN_ID
    assert tokenizer.convert_ids_to_tokens([0, 1, 2, 3]) == ["<pad>", "<unk>", "<s>", "</s>"]


def test_encoding_adds_no_special_tokens(tokenizer):
    ids = tokenizer("go to the red ball")["input_ids"]
    assert ids and not set(ids) & {0, 1, 2, 3}


def test_literal_special_token_text_is_encoded_as_text(tokenizer):
    # Data containing the text "<s>" or "<0x41>" must not inject a control or byte id.
    ids = tokenizer("a <s> b </s> <pad> <unk> <0x41>")["input_ids"]
    assert not set(ids) & {0, 1, 2, 3}
    assert tokenizer.convert_tokens_to_ids("<0x41>") not in ids


def test_project_vocabulary_are_single_pieces(tokenizer):
    for word in ["red", "green", "blue", "ball", "door", "key", "circle", "square", "left", "right", "pick", "open"]:
        assert len(tokenizer(f"the {word}")["input_ids"]) == 2, word


@PROPERTY_SETTINGS
@given(text=TEXT)
def test_decode_inverts_encode(tokenizer, text):
    ids = tokenizer(text)["input_ids"]
    assert all(0 <= i < token_layout.TEXT_VOCAB_SIZE for i in ids)
    assert tokenizer.decode(ids) == text


@PROPERTY_SETTINGS
@given(text=st.text(st.characters(exclude_categories=("Cs",)), max_size=200))
def test_transformers_ids_equal_sentencepiece_ids(tokenizer, sentencepiece_processor, text):
    assert tokenizer(text)["input_ids"] == sentencepiece_processor.encode(text)


def test_caveat_sentencepiece_space_marker_decodes_to_space(tokenizer):
    # The one documented exception to decode(encode(text)) == text.
    assert tokenizer.decode(tokenizer("a\u2581b")["input_ids"]) == "a b"


def test_save_and_auto_load_give_identical_ids(tokenizer, tmp_path):
    text = "A large red circle in the top left; pick up the blue key. ünïcödé 日本語 \t\n 1024"
    tokenizer.save_pretrained(tmp_path)
    reloaded = AutoTokenizer.from_pretrained(tmp_path, local_files_only=True)
    assert reloaded(text)["input_ids"] == tokenizer(text)["input_ids"]
    assert reloaded.decode(reloaded(text)["input_ids"]) == text
    shipped = AutoTokenizer.from_pretrained(DEFAULT_TOKENIZER_DIR, local_files_only=True)
    assert shipped(text)["input_ids"] == tokenizer(text)["input_ids"]


def test_shipped_folder_loads_with_plain_transformers(tokenizer, tmp_path):
    # A user without gato installed: only transformers, offline, from a folder outside the repo.
    code = (
        "import sys; from transformers import AutoTokenizer; "
        "t = AutoTokenizer.from_pretrained(sys.argv[1], local_files_only=True); "
        "assert 'gato' not in sys.modules; print(t('pick up the red key')['input_ids'])"
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": ""}
    result = subprocess.run(
        [sys.executable, "-c", code, str(DEFAULT_TOKENIZER_DIR)], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1]) == tokenizer("pick up the red key")["input_ids"]


def test_shipped_files_are_small():
    total = sum(p.stat().st_size for p in DEFAULT_TOKENIZER_DIR.iterdir() if p.is_file())
    assert total < 5 * 2**20


def _shipped_manifest() -> dict:
    return json.loads((DEFAULT_TOKENIZER_DIR / CORPUS_MANIFEST_FILE).read_text(encoding="utf-8"))


def test_shipped_manifest_describes_the_shipped_model(sentencepiece_processor):
    manifest = _shipped_manifest()
    assert (
        manifest["tokenizer"]["vocab_size"] == sentencepiece_processor.get_piece_size() == token_layout.TEXT_VOCAB_SIZE
    )
    assert {s["name"] for s in manifest["sources"]} >= {"gato-vocabulary", "python-stdlib-docstrings"}


@pytest.mark.slow
def test_shipped_manifest_matches_this_environment():
    from gato.episodes.text_corpus import DEFAULT_SOURCES, corpus_manifest

    shipped = _shipped_manifest()
    if shipped["python"] != platform.python_version():
        pytest.skip(f"tokenizer corpus was built on Python {shipped['python']}, this is {platform.python_version()}")
    for source in shipped["sources"]:
        for package, version in source["versions"].items():
            if package == "python":
                continue
            try:
                installed = metadata.version(package)
            except metadata.PackageNotFoundError:
                installed = None
            if installed != version:
                pytest.skip(
                    f"corpus source {source['name']!r} was read from {package} {version}, installed: {installed}"
                )
    current = corpus_manifest(DEFAULT_SOURCES)
    shipped.pop("tokenizer")
    assert current == shipped


# --- training -------------------------------------------------------------------------------------------
TINY_CORPUS = [
    f"the {size} {colour} {shape} is {place} of the grid, {n} steps away"
    for n, (size, colour, shape, place) in enumerate(
        (s, c, h, p)
        for s in ("small", "large")
        for c in ("red", "green", "blue", "yellow")
        for h in ("circle", "square", "triangle")
        for p in ("left", "right", "top")
    )
] + ["markup such as <b> or </i> and hex like 0x41 or <0xAB> shows up in docs, Unknown"] * 20
TINY_VOCAB = 300


def test_training_is_deterministic(tmp_path):
    first = train_sentencepiece(TINY_CORPUS, vocab_size=TINY_VOCAB)
    second = train_sentencepiece(TINY_CORPUS, vocab_size=TINY_VOCAB)
    assert first == second
    save_tokenizer(first, tmp_path / "a", {"corpus": "tiny"})
    save_tokenizer(second, tmp_path / "b", {"corpus": "tiny"})
    files = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert files == ["corpus_manifest.json", "tokenizer.json", "tokenizer.model", "tokenizer_config.json"]
    for name in files:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name


@pytest.mark.parametrize("model_type", ["bpe", "unigram"])
def test_trained_model_has_the_requested_size_and_special_pieces(model_type):
    model = train_sentencepiece(TINY_CORPUS, vocab_size=TINY_VOCAB, model_type=model_type)
    processor = spm.SentencePieceProcessor(model_proto=model)
    assert processor.get_piece_size() == TINY_VOCAB
    assert [processor.pad_id(), processor.unk_id(), processor.bos_id(), processor.eos_id()] == [0, 1, 2, 3]
    tokenizer = tokenizer_from_sentencepiece(model)
    for text in ["the large red circle — ñ 3", " two  spaces ", "<s> literal </s> <0x41> <unk>"]:
        assert tokenizer(text)["input_ids"] == processor.encode(text)
    text = "the large red circle — ñ 3"
    assert tokenizer.decode(tokenizer(text)["input_ids"]) == text


def test_training_rejects_a_vocabulary_without_room_for_bytes():
    with pytest.raises(ValueError, match="vocab_size"):
        train_sentencepiece(TINY_CORPUS, vocab_size=260)
    with pytest.raises(ValueError, match="model_type"):
        train_sentencepiece(TINY_CORPUS, vocab_size=TINY_VOCAB, model_type="wordpiece")
