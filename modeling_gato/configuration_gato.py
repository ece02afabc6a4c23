"""Gato model configuration and the paper's size presets (GATO_SPEC.md sections 2 and 6)."""

import copy
import dataclasses
import difflib
import inspect
from collections.abc import Mapping
from typing import Any

from huggingface_hub.dataclasses import strict
from transformers.configuration_utils import PreTrainedConfig

try:
    from gato.suite.token_layout import (
        BOS_TOKEN_ID,
        DEFAULT_DISCRETE_LAYOUT,
        DISCRETE_LAYOUTS,
        DISCRETE_VALUES,
        EOS_TOKEN_ID,
        MAX_LENGTH,
        MAX_LOCAL_POSITIONS,
        PAD_TOKEN_ID,
        PATCH_SIZE,
        POSITION_BINS,
        SEPARATOR_TOKEN_ID,
    )
    from gato.suite.token_layout import discrete_offset as layout_discrete_offset
    from gato.suite.token_layout import vocab_size as layout_vocab_size

    GATO_IS_INSTALLED = True
except ImportError:  # a remote-code folder (``write_remote_code``), loaded where gato is not installed
    GATO_IS_INSTALLED = False
    from .token_layout import (
        BOS_TOKEN_ID,
        DEFAULT_DISCRETE_LAYOUT,
        DISCRETE_LAYOUTS,
        DISCRETE_VALUES,
        EOS_TOKEN_ID,
        MAX_LENGTH,
        MAX_LOCAL_POSITIONS,
        PAD_TOKEN_ID,
        PATCH_SIZE,
        POSITION_BINS,
        SEPARATOR_TOKEN_ID,
    )
    from .token_layout import discrete_offset as layout_discrete_offset
    from .token_layout import vocab_size as layout_vocab_size

# Fields of earlier versions that nothing read (the text and continuous-value ranges are the processor's, in
# `token_layout.py`): dropped when an old config.json is loaded.
RETIRED_FIELDS: tuple[str, ...] = ("text_vocab_size", "continuous_offset", "continuous_bins")

# Keywords PreTrainedConfig takes without a field of that name (it keeps them under a private one).
_INIT_ONLY_KEYWORDS = ("attn_implementation", "experts_implementation")

# GATO_SPEC.md section 6 (appendix C.1), plus a tiny shape for tests and CPU smoke runs.
PRESETS: dict[str, dict[str, Any]] = {
    "gato-79m": dict(num_hidden_layers=8, hidden_size=768, num_attention_heads=24, intermediate_size=3072),
    "gato-364m": dict(num_hidden_layers=12, hidden_size=1536, num_attention_heads=12, intermediate_size=6144),
    "gato-1.18b": dict(num_hidden_layers=24, hidden_size=2048, num_attention_heads=16, intermediate_size=8192),
    "gato-tiny": dict(
        num_hidden_layers=2,
        hidden_size=64,
        num_attention_heads=4,
        intermediate_size=256,
        resnet_num_groups=8,
        resnet_channels=16,
    ),
}
# The parameter counts the paper states for its sizes (appendix C.1), for comparison in tests and docs.
PAPER_PARAMETER_COUNTS: dict[str, int] = {
    "gato-79m": 79_000_000,
    "gato-364m": 364_000_000,
    "gato-1.18b": 1_180_000_000,
}

POSITION_EMBEDDING_TYPES: tuple[str, ...] = ("rope", "learned")


@strict
class GatoConfig(PreTrainedConfig):
    r"""Configuration of a Gato model: a decoder-only, pre-norm transformer over Gato's token stream.

    Vocabulary layout and tokenization constants default to the values in
    ``gato.suite.token_layout`` (the one place the processor keeps them). The config holds only what the model
    reads; the text and continuous-value id ranges are the processor's (older configs' ``text_vocab_size``,
    ``continuous_offset`` and ``continuous_bins`` are dropped on load).

    Args:
        hidden_size: model width (embedding and residual stream size).
        num_hidden_layers: number of decoder blocks.
        num_attention_heads: attention heads per block; must divide ``hidden_size``.
        intermediate_size: hidden size of each block's feed-forward network.
        hidden_act: activation of the feed-forward network (the paper's blocks use GELU).
        max_position_embeddings: context length in tokens (the paper's 1024).
        position_embedding_type: how the transformer sees *global* positions, which the paper leaves open
            (GATO_SPEC.md section 2): ``"rope"`` (default) rotates queries and keys by their position, a
            relative encoding like the Transformer-XL scheme of the Gopher family Gato was built from, so a
            time step looks the same wherever it falls in the window; ``"learned"`` adds a learned absolute
            table of ``max_position_embeddings`` rows to the input embeddings (GPT-2 style).
        rope_theta: base period of the rotary embedding (``position_embedding_type="rope"`` only).
        discrete_layout: where discrete values live in the vocabulary: ``"paper"`` shares ids
            [0, 1024) with text, ``"shifted"`` gives them their own ids above the separator.
        vocab_size: size of the token embedding table; derived from ``discrete_layout`` when left unset.
        separator_token_id: id of the ``|`` token between a time step's observation and its action.
        discrete_offset: first token id of discrete value 0; derived from ``discrete_layout`` when unset.
        discrete_values: number of discrete values, [0, discrete_values).
        num_channels: image channels of a patch.
        patch_size: side of a square image patch in pixels.
        position_bins: number of quantized bins for patch row / column positions.
        max_local_positions: observation tokens per time step that get their own learned local
            position embedding (later ones share the last index).
        resnet_num_groups: GroupNorm groups in the patch-embedding ResNet v2 block (on its hidden channels).
        resnet_channels: hidden channels of the patch-embedding ResNet v2 block (must be a multiple of
            ``resnet_num_groups``).
        layer_norm_eps: epsilon of the layer norms.
        hidden_dropout: dropout on the residual branches and embeddings.
        attention_dropout: dropout on attention probabilities.
        initializer_range: standard deviation of the normal weight initialisation.
        use_cache: return key/value caches from ``forward`` by default.
        tie_word_embeddings: share the token embedding table with the output layer.
        pad_token_id / bos_token_id / eos_token_id: the text tokenizer's special ids.
    """

    model_type = "gato"

    hidden_size: int = 768
    num_hidden_layers: int = 8
    num_attention_heads: int = 24
    intermediate_size: int = 3072
    hidden_act: str = "gelu"
    max_position_embeddings: int = MAX_LENGTH
    position_embedding_type: str = "rope"
    rope_theta: float = 10000.0
    discrete_layout: str = DEFAULT_DISCRETE_LAYOUT
    vocab_size: int | None = None
    separator_token_id: int = SEPARATOR_TOKEN_ID
    discrete_offset: int | None = None
    discrete_values: int = DISCRETE_VALUES
    num_channels: int = 3
    patch_size: int = PATCH_SIZE
    position_bins: int = POSITION_BINS
    max_local_positions: int = MAX_LOCAL_POSITIONS
    resnet_num_groups: int = 32
    resnet_channels: int = 128
    layer_norm_eps: float = 1e-5
    hidden_dropout: float = 0.0
    attention_dropout: float = 0.0
    initializer_range: float = 0.02
    use_cache: bool = True
    tie_word_embeddings: bool = True
    pad_token_id: int | None = PAD_TOKEN_ID
    bos_token_id: int | None = BOS_TOKEN_ID
    eos_token_id: int | list[int] | None = EOS_TOKEN_ID

    def __post_init__(self, **kwargs):
        for name in RETIRED_FIELDS:  # an older config.json
            kwargs.pop(name, None)
        if GATO_IS_INSTALLED:
            # A saved folder's `custom_pipelines` (the remote-code caption pipeline, `pipeline_gato.py`) is for where
            # gato is not installed; here `import gato` has registered the same pipeline for both task names, and
            # transformers would refuse a config's custom pipeline without trust_remote_code.
            kwargs.pop("custom_pipelines", None)
        if self.discrete_offset is None:
            self.discrete_offset = layout_discrete_offset(self.discrete_layout)
        if self.vocab_size is None:
            self.vocab_size = layout_vocab_size(self.discrete_layout)
        super().__post_init__(**kwargs)

    def validate_architecture(self):
        """Checks run by ``@strict`` validation: errors name the field and what was expected."""
        if self.hidden_size % self.num_attention_heads != 0:
            raise ValueError(
                f"hidden_size ({self.hidden_size}) must be a multiple of num_attention_heads ({self.num_attention_heads})"
            )
        if self.discrete_layout not in DISCRETE_LAYOUTS:
            raise ValueError(f"discrete_layout must be one of {DISCRETE_LAYOUTS}, got {self.discrete_layout!r}")
        if self.position_embedding_type not in POSITION_EMBEDDING_TYPES:
            raise ValueError(
                f"position_embedding_type must be one of {POSITION_EMBEDDING_TYPES}, got {self.position_embedding_type!r}"
            )
        if self.resnet_channels % self.resnet_num_groups != 0:
            raise ValueError(
                f"resnet_channels ({self.resnet_channels}) must be a multiple of resnet_num_groups ({self.resnet_num_groups})"
            )
        needed = max(self.separator_token_id + 1, self.discrete_offset + self.discrete_values)
        if self.vocab_size < needed:
            raise ValueError(
                f"vocab_size ({self.vocab_size}) must be ≥ {needed} for discrete_layout={self.discrete_layout!r}"
            )

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_attention_heads

    @classmethod
    def from_preset(cls, name: str, **overrides: Any) -> "GatoConfig":
        """A config for a named size (``gato-79m``, ``gato-364m``, ``gato-1.18b``, ``gato-tiny``); keywords override fields."""
        if name not in PRESETS:
            raise ValueError(f"unknown preset {name!r}; known presets: {', '.join(PRESETS)}")
        cls.check_fields(overrides)
        return cls(**{**copy.deepcopy(PRESETS[name]), **overrides})

    @classmethod
    def check_fields(cls, values: Mapping[str, Any]) -> None:
        """Refuse names that are not fields of the config, naming them: a config takes any keyword and keeps it, so
        a typo (``hidden_sise=64``) would build the preset's size and save the typo beside it."""
        known = {field.name for field in dataclasses.fields(cls)} | set(_INIT_ONLY_KEYWORDS)
        known |= {  # settable properties of PreTrainedConfig (output_attentions, num_labels, …)
            name
            for name in dir(cls)
            if not name.startswith("_")
            and isinstance(attribute := inspect.getattr_static(cls, name, None), property)
            and attribute.fset is not None
        }
        unknown = sorted(set(values) - known)
        if unknown:
            hints = [
                f"{name!r} (did you mean {close[0]!r}?)"
                if (close := difflib.get_close_matches(name, known, n=1))
                else repr(name)
                for name in unknown
            ]
            raise ValueError(f"{cls.__name__} has no field {', '.join(hints)}")


__all__ = ["GatoConfig", "PRESETS", "PAPER_PARAMETER_COUNTS", "POSITION_EMBEDDING_TYPES", "RETIRED_FIELDS"]
