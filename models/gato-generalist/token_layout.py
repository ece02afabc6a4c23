"""The paper's constants, in one place (GATO_SPEC.md sections 1 and 2).

Every number that defines how Gato turns data into tokens lives here; the processor, the model config
and the agent read them from this module instead of repeating literals.

Vocabulary layout (token ids)
-----------------------------
=========================  ==============================  =========================================
what                       ids                             note
=========================  ==============================  =========================================
text (SentencePiece)       [0, 32000)                      pad=0, unk=1, bos=2, eos=3 live in here
continuous values          [32000, 33024)                  μ-law (per field) → clip → 1024 bins
separator ``|``            33024                           between a time step's observation and action
discrete values, "paper"   [0, 1024)                       shares ids with text, as in the paper
discrete values, "shifted" [33025, 34049)                  own ids above the separator (switchable)
=========================  ==============================  =========================================

The model's vocabulary size is therefore 33025 with the paper's discrete layout and 34049 with the
shifted one (:func:`vocab_size`).

Processor outputs (the contract between ``processing/`` and ``modeling_gato/``)
--------------------------------------------------------------------------------
All tensors are batch-first; ``L`` is the padded sequence length, ``P`` the padded number of image
patches per sequence.

- ``input_ids`` ``(B, L)`` long — token ids; at image-patch positions the value is
  :data:`PATCH_PLACEHOLDER_ID` (the model replaces those embeddings with patch embeddings).
- ``attention_mask`` ``(B, L)`` long — 1 on real tokens, 0 on padding (right padding).
- ``loss_mask`` ``(B, L)`` long — 1 where the token *at that position* is a prediction target
  (text and action tokens); the model predicts it from position ``l - 1``.
- ``labels`` ``(B, L)`` long — ``input_ids`` where ``loss_mask`` is 1, :data:`IGNORE_INDEX` elsewhere
  (transformers' convention: the model shifts).
- ``local_positions`` ``(B, L)`` long — index of an observation token within its time step's
  observation (0, 1, 2, …); :data:`LOCAL_POSITION_ACTION` on action tokens;
  :data:`LOCAL_POSITION_NONE` on tokens that get no local position embedding (plain text, captions,
  the separator, padding).
- ``patch_mask`` ``(B, L)`` bool — True at image-patch positions (present only when there are images).
- ``patch_pixels`` ``(B, P, 3, 16, 16)`` float32 — the patches, in the order their positions appear
  in the row (raster order within each image); pixels scaled to [-1, 1] then divided by 4.
- ``patch_rows`` / ``patch_cols`` ``(B, P, 2)`` long — each patch's row / column interval as
  quantized position bins ``[lo, hi)`` in [0, 128]; the model samples uniformly inside in training
  and takes ``(lo + hi) // 2`` in evaluation.
- ``patch_valid`` ``(B, P)`` bool — True on real patches; ``patch_valid[b].sum() == patch_mask[b].sum()``.
"""

from __future__ import annotations

from typing import Literal

# --- text -------------------------------------------------------------------------------------------
TEXT_VOCAB_SIZE = 32000
PAD_TOKEN_ID = 0
UNK_TOKEN_ID = 1
BOS_TOKEN_ID = 2
EOS_TOKEN_ID = 3

# --- continuous values --------------------------------------------------------------------------------
MU_LAW_MU = 100.0
MU_LAW_M = 256.0
CONTINUOUS_BINS = 1024
CONTINUOUS_OFFSET = TEXT_VOCAB_SIZE  # 32000

# --- separator and discrete values ------------------------------------------------------------------
SEPARATOR_TOKEN_ID = CONTINUOUS_OFFSET + CONTINUOUS_BINS  # 33024
DISCRETE_VALUES = 1024
DiscreteLayout = Literal["paper", "shifted"]
DISCRETE_LAYOUTS: tuple[str, ...] = ("paper", "shifted")
DISCRETE_OFFSETS: dict[str, int] = {"paper": 0, "shifted": SEPARATOR_TOKEN_ID + 1}  # 0 or 33025
DEFAULT_DISCRETE_LAYOUT: DiscreteLayout = "paper"

# --- images -------------------------------------------------------------------------------------------
PATCH_SIZE = 16
PATCH_PIXEL_DIVISOR = 4.0  # √PATCH_SIZE: pixels in [-1, 1] are divided by 4
POSITION_BINS = 128
DEFAULT_IMAGE_SIZE = (64, 64)  # (height, width); any multiple of PATCH_SIZE is allowed
PATCH_PLACEHOLDER_ID = PAD_TOKEN_ID

# --- sequences ----------------------------------------------------------------------------------------
MAX_LENGTH = 1024
IGNORE_INDEX = -100
LOCAL_POSITION_NONE = -1
LOCAL_POSITION_ACTION = -2
MAX_LOCAL_POSITIONS = 512  # observation tokens per time step that get their own local embedding
PROMPT_PROBABILITY = 0.25  # fraction of training sequences prefixed with a demonstration
PROMPT_END_PROBABILITY = 0.5  # of those, the fraction taken from an episode's end


def discrete_offset(layout: str) -> int:
    """First token id of discrete value 0 under ``layout`` ("paper" → 0, "shifted" → 33025)."""
    if layout not in DISCRETE_OFFSETS:
        raise ValueError(f"discrete_layout must be one of {DISCRETE_LAYOUTS}, got {layout!r}")
    return DISCRETE_OFFSETS[layout]


def vocab_size(layout: str = DEFAULT_DISCRETE_LAYOUT) -> int:
    """Number of token ids the model's embedding table needs under a discrete ``layout``."""
    return max(SEPARATOR_TOKEN_ID + 1, discrete_offset(layout) + DISCRETE_VALUES)
