"""Examples → tokens, and back: Gato's tokenization of text, images, discrete and continuous values."""

from . import token_layout
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
]

from .task_spec import ActionSpec, ObservationField, TaskSpec  # noqa: E402

__all__ += ["ActionSpec", "ObservationField", "TaskSpec"]

from .episode_layout import chunk_boundaries, layout_episode, make_prompt  # noqa: E402
from .processing_gato import GatoProcessor  # noqa: E402

__all__ += ["GatoProcessor", "layout_episode", "chunk_boundaries", "make_prompt"]
