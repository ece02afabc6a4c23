"""Examples → tokens, and back: Gato's tokenization of text, images, discrete and continuous values."""

from gato.suite import token_layout
from gato.suite.task_spec import ActionSpec, ObservationField, TaskSpec

from .episode_layout import chunk_boundaries, layout_episode, make_prompt
from .image_processing_gato import GatoImageProcessor
from .processing_gato import GatoProcessor
from .tokenization_gato import DEFAULT_TOKENIZER_DIR, load_default_tokenizer
from .tokenize_values import (
    detokenize_continuous,
    detokenize_discrete,
    mu_law_decode,
    mu_law_encode,
    tokenize_continuous,
    tokenize_discrete,
)

__all__ = [
    "token_layout",
    "mu_law_encode",
    "mu_law_decode",
    "tokenize_continuous",
    "detokenize_continuous",
    "tokenize_discrete",
    "detokenize_discrete",
    "ActionSpec",
    "ObservationField",
    "TaskSpec",
    "GatoImageProcessor",
    "GatoProcessor",
    "DEFAULT_TOKENIZER_DIR",
    "load_default_tokenizer",
    "layout_episode",
    "chunk_boundaries",
    "make_prompt",
]
