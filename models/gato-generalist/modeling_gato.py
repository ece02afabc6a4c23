"""Gato: a decoder-only, pre-norm transformer over one token stream of text, image patches and values.

Reads top to bottom like transformers' ``models/llama/modeling_llama.py``: patch embedding, rotary
positions, MLP, attention, decoder layer, pretrained base, model, causal-LM head. GATO_SPEC.md sections
2 (embeddings), 3 (loss) and 5 (deployment) are what this file implements; the action API itself lives in
``acting.py``.

Inputs are the processor's tensors (see ``gato.suite.token_layout``): ``input_ids``,
``attention_mask``, ``local_positions`` and, when there are images, ``patch_mask``, ``patch_pixels``,
``patch_rows``, ``patch_cols``, ``patch_valid``; for training also ``labels`` and ``loss_mask``.

torch.compile: the patch scatter and the loss gather select positions with boolean masks (data-dependent
shapes, which is what keeps the output layer to the loss targets). Set
``torch._dynamo.config.capture_dynamic_output_shape_ops = True`` (and ``capture_scalar_outputs``) to compile
the forward as one graph; without them dynamo breaks the graph at those gathers.

Input checks: ``forward`` checks every argument's shape against ``input_ids`` (cheap, also under
``torch.compile``) and, on CPU tensors outside ``torch.compile``, the values (token ids inside the vocabulary,
labels, local positions, patch counts); on an accelerator the value checks are skipped, since each would wait for the device
at every step. Errors are ValueErrors naming the argument, the expected and the given shape.

Remote code: ``save_pretrained`` copies this file, ``configuration_gato.py``, ``acting.py``, ``loss_gato.py``,
``pipeline_gato.py`` (the caption pipeline, named for both caption tasks in ``config.json``'s ``custom_pipelines``) and
``token_layout.py`` unchanged beside the weights. Each imports the constants from ``gato.suite.token_layout``
and, where ``gato`` is not installed, from the ``token_layout.py`` copy beside it (the ``except ImportError``
branch), so ``trust_remote_code=True`` loads the folder without rewriting any source.
"""

import inspect
import json
import math
import os
import re
import sys
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from transformers.activations import ACT2FN
from transformers.cache_utils import Cache, DynamicCache
from transformers.generation import GenerationMixin
from transformers.masking_utils import create_causal_mask
from transformers.modeling_layers import GradientCheckpointingLayer
from transformers.modeling_outputs import BaseModelOutputWithPast, CausalLMOutputWithPast
from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS, PreTrainedModel, slice_logits_to_keep
from transformers.processing_utils import Unpack
from transformers.utils import TransformersKwargs, can_return_tuple, logging
from transformers.utils.deprecation import deprecate_kwarg
from transformers.utils.generic import merge_with_config_defaults
from transformers.utils.output_capturing import capture_outputs

try:
    from gato.suite.token_layout import IGNORE_INDEX, LOCAL_POSITION_ACTION, LOCAL_POSITION_NONE
except ImportError:  # a remote-code folder, loaded where gato is not installed
    from .token_layout import IGNORE_INDEX, LOCAL_POSITION_ACTION, LOCAL_POSITION_NONE

from .acting import GatoActingMixin
from .configuration_gato import GatoConfig
from .loss_gato import fused_loss_applies, linear_cross_entropy
from .pipeline_gato import REMOTE_CUSTOM_PIPELINES

logger = logging.get_logger(__name__)

# Inputs that only describe the prompt (image patches, local positions): `generate` passes them to the prefill
# step only; the tokens it generates afterwards are plain text (no patches, no local position).
PREFILL_ONLY_INPUTS = ("patch_mask", "patch_pixels", "patch_rows", "patch_cols", "patch_valid", "local_positions")
# Targets of the loss: `generate` never passes them to the model (transformers drops `labels` the same way).
TRAINING_ONLY_INPUTS = ("labels", "loss_mask", "shift_labels")


# --- input checks ---------------------------------------------------------------------------------------------


def values_are_checkable(tensor: torch.Tensor) -> bool:
    """Value checks read a tensor on the host: only CPU tensors outside ``torch.compile`` are checked, so that an
    accelerator never waits for a check (a graph never breaks for one)."""
    return tensor.device.type == "cpu" and not torch.compiler.is_compiling()


def check_shape(name: str, value: torch.Tensor | None, expected: tuple[int, ...], what: str) -> None:
    """``ValueError`` naming ``name`` unless ``value`` is ``None`` or of shape ``expected`` (described by ``what``)."""
    if value is not None and tuple(value.shape) != tuple(expected):
        raise ValueError(f"{name}: expected shape {what} = {tuple(expected)}, got {tuple(value.shape)}")


def check_values_in_range(
    name: str, value: torch.Tensor | None, low: int, high: int | None, also: tuple[int, ...] = ()
) -> None:
    """``ValueError`` naming ``name`` unless every value lies in ``[low, high)`` (``high=None``: no upper bound) or
    in ``also``. Checked on CPU only (:func:`values_are_checkable`)."""
    if value is None or value.numel() == 0 or not values_are_checkable(value):
        return
    bad = value < low
    if high is not None:
        bad |= value >= high
    for allowed in also:
        bad &= value != allowed
    if bad.any():
        examples = sorted(set(value[bad].tolist()))[:5]
        expected = f"[{low}, {high})" if high is not None else f"≥ {low}"
        others = f" or one of {list(also)}" if also else ""
        raise ValueError(
            f"{name}: values must be {expected}{others}; got {examples} at {int(bad.sum())} of {value.numel()} positions"
        )


def check_token_inputs(
    config: GatoConfig,
    input_ids: torch.Tensor | None,
    inputs_embeds: torch.Tensor | None,
    local_positions: torch.Tensor | None,
    patch_mask: torch.Tensor | None,
    patch_pixels: torch.Tensor | None,
    patch_rows: torch.Tensor | None,
    patch_cols: torch.Tensor | None,
    patch_valid: torch.Tensor | None,
) -> tuple[int, int]:
    """Check the token-level inputs of :meth:`GatoModel.forward` against each other; returns ``(batch, seq)``.

    Shapes are always checked; values (ids inside the vocabulary, local positions) on CPU
    (:func:`values_are_checkable`).
    """
    if (input_ids is None) ^ (inputs_embeds is not None):
        raise ValueError("You must specify exactly one of input_ids or inputs_embeds")
    if input_ids is not None:
        if input_ids.ndim != 2:
            raise ValueError(f"input_ids: expected shape (batch, seq), got {tuple(input_ids.shape)}")
        check_values_in_range("input_ids", input_ids, 0, config.vocab_size)
        tokens, reference = tuple(input_ids.shape), "(batch, seq) of input_ids"
    else:
        if inputs_embeds.ndim != 3 or inputs_embeds.shape[-1] != config.hidden_size:
            raise ValueError(
                f"inputs_embeds: expected shape (batch, seq, hidden_size={config.hidden_size}), got {tuple(inputs_embeds.shape)}"
            )
        tokens, reference = tuple(inputs_embeds.shape[:2]), "(batch, seq) of inputs_embeds"
    check_shape("local_positions", local_positions, tokens, reference)
    check_values_in_range(
        "local_positions", local_positions, 0, None, also=(LOCAL_POSITION_NONE, LOCAL_POSITION_ACTION)
    )
    check_shape("patch_mask", patch_mask, tokens, reference)
    if patch_pixels is not None or patch_mask is not None:
        if patch_pixels is None or patch_mask is None or patch_rows is None or patch_cols is None:
            raise ValueError("image inputs need all of patch_mask, patch_pixels, patch_rows and patch_cols")
        if patch_pixels.ndim != 5:
            raise ValueError(
                f"patch_pixels: expected shape (batch, patches, channels, patch_size, patch_size), got {tuple(patch_pixels.shape)}"
            )
        patches = (tokens[0], patch_pixels.shape[1])
        check_shape(
            "patch_pixels",
            patch_pixels,
            (*patches, config.num_channels, config.patch_size, config.patch_size),
            f"(batch, patches, num_channels, patch_size, patch_size) for {reference} and the config",
        )
        check_shape("patch_rows", patch_rows, (*patches, 2), "(batch, patches, 2) of patch_pixels")
        check_shape("patch_cols", patch_cols, (*patches, 2), "(batch, patches, 2) of patch_pixels")
        check_shape("patch_valid", patch_valid, patches, "(batch, patches) of patch_pixels")
    return tokens


def check_attention_inputs(
    attention_mask: torch.Tensor | None,
    position_ids: torch.Tensor | None,
    cache: Cache | None,
    tokens: tuple[int, int],
) -> None:
    """Check a 2D ``attention_mask`` ``(batch, cached + seq)`` and ``position_ids`` ``(batch or 1, seq)`` against the
    ``(batch, seq)`` of the new tokens. A 4D (prepared) mask is the caller's business."""
    batch, seq = tokens
    if attention_mask is not None and attention_mask.ndim != 4:
        if attention_mask.ndim != 2:
            raise ValueError(
                f"attention_mask: expected shape (batch, seq) or a prepared 4D mask, got {tuple(attention_mask.shape)}"
            )
        if cache is None or (isinstance(cache, DynamicCache) and not torch.compiler.is_compiling()):
            past = cache.get_seq_length() if cache is not None else 0
            what = "(batch, seq) of input_ids" if cache is None else f"(batch, {past} cached + seq) for input_ids"
            check_shape("attention_mask", attention_mask, (batch, past + seq), what)
        elif attention_mask.shape[0] != batch or attention_mask.shape[1] < seq:
            raise ValueError(
                f"attention_mask: expected shape (batch, cached + seq) for input_ids {tokens}, got {tuple(attention_mask.shape)}"
            )
    if position_ids is not None and (
        position_ids.ndim != 2 or position_ids.shape[0] not in (1, batch) or position_ids.shape[1] != seq
    ):
        raise ValueError(
            f"position_ids: expected shape (batch or 1, seq) for input_ids {tokens}, got {tuple(position_ids.shape)}"
        )


class GatoPatchResidualBlock(nn.Module):
    """The single ResNet v2 (pre-activation) block every 16×16 image patch goes through (GATO_SPEC.md §2).

    ``x + conv(GELU(GroupNorm(conv(GELU(GroupNorm(x))))))``: a 3×3 convolution widens the patch's
    ``num_channels`` to ``resnet_channels`` and a second one brings it back, so the residual adds in pixel
    space. The paper asks for GroupNorm with 32 groups; the hidden channels get ``resnet_num_groups``
    groups, while the 3-channel input can only be split into ``gcd(resnet_num_groups, 3) = 1`` group.
    """

    def __init__(self, config: GatoConfig):
        super().__init__()
        in_channels, channels = config.num_channels, config.resnet_channels
        input_groups = math.gcd(config.resnet_num_groups, in_channels)
        self.norm1 = nn.GroupNorm(input_groups, in_channels, eps=config.layer_norm_eps)
        self.conv1 = nn.Conv2d(in_channels, channels, kernel_size=3, padding=1)
        self.norm2 = nn.GroupNorm(config.resnet_num_groups, channels, eps=config.layer_norm_eps)
        self.conv2 = nn.Conv2d(channels, in_channels, kernel_size=3, padding=1)
        self.act = nn.GELU()

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        """``pixels`` ``(num_patches, channels, patch_size, patch_size)`` → the same shape."""
        hidden = self.conv1(self.act(self.norm1(pixels)))
        hidden = self.conv2(self.act(self.norm2(hidden)))
        return pixels + hidden


class GatoPatchEmbedding(nn.Module):
    """Image patches → width-sized embeddings with their row/column position encodings (GATO_SPEC.md §2).

    The ResNet block's output ``(channels, 16, 16)`` is flattened (channel-major, 768 values for RGB) and
    projected linearly to ``hidden_size``. Row and column encodings come from two learned tables of
    ``position_bins`` rows: each patch carries its quantized ``[lo, hi)`` row and column intervals; in
    ``train()`` mode an index is drawn uniformly inside each interval, in ``eval()`` mode the middle
    ``(lo + hi) // 2`` is used.
    """

    def __init__(self, config: GatoConfig):
        super().__init__()
        self.position_bins = config.position_bins
        self.residual_block = GatoPatchResidualBlock(config)
        self.projection = nn.Linear(config.num_channels * config.patch_size**2, config.hidden_size)
        self.row_embeddings = nn.Embedding(config.position_bins, config.hidden_size)
        self.col_embeddings = nn.Embedding(config.position_bins, config.hidden_size)

    def position_index(self, intervals: torch.Tensor) -> torch.Tensor:
        """``intervals`` ``(..., 2)`` long ``[lo, hi)`` bins → ``(...)`` long bin indices (random in train, middle in eval)."""
        lo, hi = intervals[..., 0], intervals[..., 1]
        # An empty interval (a patch thinner than one bin) still names the bin it starts in.
        hi = torch.maximum(hi, lo + 1)
        if self.training:
            index = lo + (torch.rand(lo.shape, device=lo.device) * (hi - lo)).long()
        else:
            index = torch.div(lo + hi, 2, rounding_mode="floor")
        return index.clamp(0, self.position_bins - 1)

    def forward(self, pixels: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
        """``pixels`` ``(N, C, ps, ps)`` float, ``rows``/``cols`` ``(N, 2)`` long → ``(N, hidden_size)``."""
        patches = self.residual_block(pixels).flatten(1)
        embeddings = self.projection(patches)
        embeddings = embeddings + self.row_embeddings(self.position_index(rows))
        return embeddings + self.col_embeddings(self.position_index(cols))


class GatoRotaryEmbedding(nn.Module):
    """Rotary position embedding (the default, ``position_embedding_type="rope"``), as llama's."""

    def __init__(self, config: GatoConfig):
        super().__init__()
        self.config = config
        self.rope_type = "default"
        self.max_seq_len_cached = config.max_position_embeddings
        inv_freq, self.attention_scaling = self.compute_default_rope_parameters(config)
        self.inv_freq = nn.Buffer(inv_freq, persistent=False)
        self.original_inv_freq = nn.Buffer(inv_freq.clone(), persistent=False)

    @staticmethod
    def compute_default_rope_parameters(config: GatoConfig, **kwargs) -> tuple[torch.Tensor, float]:
        """Inverse frequencies ``(head_dim // 2,)`` of the original RoPE, and its (unused) scaling 1.0."""
        dim = config.hidden_size // config.num_attention_heads
        inv_freq = 1.0 / (config.rope_theta ** (torch.arange(0, dim, 2, dtype=torch.float) / dim))
        return inv_freq, 1.0

    @torch.no_grad()
    def forward(self, x: torch.Tensor, position_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``position_ids`` ``(batch, seq)`` → ``cos``, ``sin`` ``(batch, seq, head_dim)`` in ``x``'s dtype."""
        freqs = position_ids[..., None].float() * self.inv_freq.to(device=x.device, dtype=torch.float)
        emb = torch.cat((freqs, freqs), dim=-1)
        return (emb.cos() * self.attention_scaling).to(x.dtype), (emb.sin() * self.attention_scaling).to(x.dtype)


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    """Rotates half the hidden dims of the input."""
    x1 = x[..., : x.shape[-1] // 2]
    x2 = x[..., x.shape[-1] // 2 :]
    return torch.cat((-x2, x1), dim=-1)


def apply_rotary_pos_emb(q, k, cos, sin, unsqueeze_dim: int = 1):
    """Rotates ``q``, ``k`` ``(batch, heads, seq, head_dim)`` by ``cos``, ``sin`` ``(batch, seq, head_dim)``."""
    cos = cos.unsqueeze(unsqueeze_dim)
    sin = sin.unsqueeze(unsqueeze_dim)
    return (q * cos) + (rotate_half(q) * sin), (k * cos) + (rotate_half(k) * sin)


class GatoMLP(nn.Module):
    """The paper's feed-forward block: Linear → GELU → Linear."""

    def __init__(self, config: GatoConfig):
        super().__init__()
        self.fc_in = nn.Linear(config.hidden_size, config.intermediate_size)
        self.fc_out = nn.Linear(config.intermediate_size, config.hidden_size)
        self.act_fn = ACT2FN[config.hidden_act]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc_out(self.act_fn(self.fc_in(x)))


def eager_attention_forward(
    module: nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    scaling: float,
    dropout: float = 0.0,
    **kwargs: Unpack[TransformersKwargs],
):
    attn_weights = torch.matmul(query, key.transpose(2, 3)) * scaling
    if attention_mask is not None:
        attn_weights = attn_weights + attention_mask
    attn_weights = nn.functional.softmax(attn_weights, dim=-1, dtype=torch.float32).to(query.dtype)
    attn_weights = nn.functional.dropout(attn_weights, p=dropout, training=module.training)
    attn_output = torch.matmul(attn_weights, value).transpose(1, 2).contiguous()
    return attn_output, attn_weights


class GatoAttention(nn.Module):
    """Multi-head causal self-attention through transformers' attention interface (SDPA by default)."""

    def __init__(self, config: GatoConfig, layer_idx: int):
        super().__init__()
        self.config = config
        self.layer_idx = layer_idx
        self.head_dim = config.hidden_size // config.num_attention_heads
        self.num_key_value_groups = 1
        self.scaling = self.head_dim**-0.5
        self.attention_dropout = config.attention_dropout
        self.is_causal = True
        self.q_proj = nn.Linear(config.hidden_size, config.hidden_size)
        self.k_proj = nn.Linear(config.hidden_size, config.hidden_size)
        self.v_proj = nn.Linear(config.hidden_size, config.hidden_size)
        self.o_proj = nn.Linear(config.hidden_size, config.hidden_size)

    @deprecate_kwarg("past_key_values", "5.40.0", new_name="cache")
    def forward(
        self,
        hidden_states: torch.Tensor,
        position_embeddings: tuple[torch.Tensor, torch.Tensor] | None = None,
        attention_mask: torch.Tensor | None = None,
        cache: Cache | None = None,
        **kwargs: Unpack[TransformersKwargs],
    ) -> tuple[torch.Tensor, torch.Tensor]:
        input_shape = hidden_states.shape[:-1]
        hidden_shape = (*input_shape, -1, self.head_dim)

        query_states = self.q_proj(hidden_states).view(hidden_shape).transpose(1, 2)
        key_states = self.k_proj(hidden_states).view(hidden_shape).transpose(1, 2)
        value_states = self.v_proj(hidden_states).view(hidden_shape).transpose(1, 2)

        if position_embeddings is not None:  # None with learned absolute positions
            cos, sin = position_embeddings
            query_states, key_states = apply_rotary_pos_emb(query_states, key_states, cos, sin)

        if cache is not None:
            key_states, value_states = cache.update(key_states, value_states, self.layer_idx, kwargs=kwargs)

        attention_interface: Callable = ALL_ATTENTION_FUNCTIONS.get_interface(
            self.config._attn_implementation, eager_attention_forward
        )
        attn_output, attn_weights = attention_interface(
            self,
            query_states,
            key_states,
            value_states,
            attention_mask,
            dropout=0.0 if not self.training else self.attention_dropout,
            scaling=self.scaling,
            **kwargs,
        )
        attn_output = attn_output.reshape(*input_shape, -1).contiguous()
        return self.o_proj(attn_output), attn_weights


class GatoDecoderLayer(GradientCheckpointingLayer):
    """Pre-norm block: ``x + Attn(LN(x))``, then ``x + MLP(LN(x))`` (dropout on both branches)."""

    def __init__(self, config: GatoConfig, layer_idx: int):
        super().__init__()
        self.hidden_size = config.hidden_size
        self.self_attn = GatoAttention(config=config, layer_idx=layer_idx)
        self.mlp = GatoMLP(config)
        self.input_layernorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.post_attention_layernorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout)

    @deprecate_kwarg("past_key_values", "5.40.0", new_name="cache")
    def forward(
        self,
        hidden_states: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.LongTensor | None = None,
        cache: Cache | None = None,
        use_cache: bool | None = False,
        position_embeddings: tuple[torch.Tensor, torch.Tensor] | None = None,
        **kwargs: Unpack[TransformersKwargs],
    ) -> torch.Tensor:
        residual = hidden_states
        hidden_states = self.input_layernorm(hidden_states)
        hidden_states, _ = self.self_attn(
            hidden_states=hidden_states,
            attention_mask=attention_mask,
            position_ids=position_ids,
            cache=cache,
            use_cache=use_cache,
            position_embeddings=position_embeddings,
            **kwargs,
        )
        hidden_states = residual + self.dropout(hidden_states)

        residual = hidden_states
        hidden_states = self.mlp(self.post_attention_layernorm(hidden_states))
        return residual + self.dropout(hidden_states)


class GatoPreTrainedModel(PreTrainedModel):
    config: GatoConfig
    config_class = GatoConfig
    base_model_prefix = "model"
    main_input_name = "input_ids"
    supports_gradient_checkpointing = True
    _no_split_modules = ["GatoDecoderLayer"]
    _supports_flash_attn = True
    _supports_sdpa = True
    _supports_flex_attn = True
    # Text-only forwards (no patches, no loss) compile as one graph, e.g. `generate(cache_implementation="static")`;
    # the patch scatter and the loss gather have data-dependent shapes and need dynamo's dynamic-output options
    # (module docstring).
    _can_compile_fullgraph = True
    _supports_attention_backend = True
    _can_record_outputs = {
        "hidden_states": GatoDecoderLayer,
        "attentions": GatoAttention,
    }

    def save_pretrained(self, save_directory: str | os.PathLike, *args, **kwargs) -> None:
        """``PreTrainedModel.save_pretrained`` (safetensors), plus the code ``trust_remote_code=True`` needs.

        Writes ``configuration_gato.py``, ``modeling_gato.py``, ``acting.py``, ``loss_gato.py``, ``pipeline_gato.py`` and
        ``token_layout.py`` beside the weights, and an ``auto_map`` and the caption ``custom_pipelines`` in
        ``config.json``; with ``gato`` installed the Auto classes and pipelines still pick the registered local
        classes (no ``trust_remote_code`` needed).
        """
        if kwargs.get("safe_serialization") is False:
            raise ValueError("safe_serialization=False is not supported: gato folders hold safetensors only")
        self.config.auto_map = dict(REMOTE_AUTO_MAP)
        super().save_pretrained(save_directory, *args, **kwargs)
        write_remote_code(save_directory)


REMOTE_AUTO_MAP = {
    "AutoConfig": "configuration_gato.GatoConfig",
    "AutoModel": "modeling_gato.GatoModel",
    "AutoModelForCausalLM": "modeling_gato.GatoForCausalLM",
    # transformers' own image-text-to-text pipeline loads the model through this class (where gato is not installed).
    "AutoModelForImageTextToText": "modeling_gato.GatoForCausalLM",
}
# A top-level (unindented) import of gato: remote code may import gato only inside `try: ... except ImportError:`.
_TOP_LEVEL_GATO_IMPORT = re.compile(r"^(from\s+gato[\s.]|import\s+gato\b)", flags=re.MULTILINE)


def write_remote_code(save_directory: str | os.PathLike) -> list[Path]:
    """Copy the model's source files into ``save_directory`` so the folder loads with ``trust_remote_code``.

    The files are copied unchanged from wherever the classes were loaded (the installed package, or an earlier
    remote copy): each imports the constants from ``gato`` where it is installed and from the ``token_layout.py``
    copied beside it otherwise.

    Raises:
        RuntimeError: a source file imports ``gato`` outside ``try: ... except ImportError:`` (it would not load
            where gato is not installed).
    """
    from . import acting, configuration_gato, loss_gato, pipeline_gato

    constants_file = Path(inspect.getfile(configuration_gato.layout_vocab_size))
    folder = Path(save_directory)
    written = []
    modules = (configuration_gato, sys.modules[__name__], acting, loss_gato, pipeline_gato)
    for source_file in (Path(inspect.getfile(module)) for module in modules):
        source = source_file.read_text(encoding="utf-8")
        if _TOP_LEVEL_GATO_IMPORT.search(source):
            raise RuntimeError(
                f"{source_file}: imports gato outside `try: ... except ImportError:`; remote code must also load where "
                "gato is not installed"
            )
        target = folder / source_file.name
        target.write_text(source, encoding="utf-8")
        written.append(target)
    target = folder / "token_layout.py"
    target.write_text(constants_file.read_text(encoding="utf-8"), encoding="utf-8")
    written.append(target)
    # The config written by `save_pretrained` already has the auto_map; make sure of it if it was saved before. The
    # caption pipeline is named for both task names in the file only: a loaded config drops it where gato is
    # installed (`GatoConfig.__post_init__`), since gato registers that pipeline itself.
    config_file = folder / "config.json"
    if config_file.exists():
        config = json.loads(config_file.read_text(encoding="utf-8"))
        if config.get("auto_map") != REMOTE_AUTO_MAP or config.get("custom_pipelines") != REMOTE_CUSTOM_PIPELINES:
            config.update(auto_map=dict(REMOTE_AUTO_MAP), custom_pipelines=REMOTE_CUSTOM_PIPELINES)
            config_file.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return written


class GatoModel(GatoPreTrainedModel):
    """The Gato decoder: processor tensors → final hidden states ``(batch, seq, hidden_size)``."""

    def __init__(self, config: GatoConfig):
        super().__init__(config)
        self.vocab_size = config.vocab_size
        # No padding_idx: id 0 is the pad id *and* discrete value 0 in the paper's layout, so it must train.
        self.embed_tokens = nn.Embedding(config.vocab_size, config.hidden_size)
        self.embed_patches = GatoPatchEmbedding(config)
        # Rows [0, max_local_positions) are observation indices; the last row is the one shared action embedding.
        self.embed_local_positions = nn.Embedding(config.max_local_positions + 1, config.hidden_size)
        if config.position_embedding_type == "learned":
            self.embed_positions = nn.Embedding(config.max_position_embeddings, config.hidden_size)
            self.rotary_emb = None
        else:
            self.embed_positions = None
            self.rotary_emb = GatoRotaryEmbedding(config=config)
        self.embed_dropout = nn.Dropout(config.hidden_dropout)
        self.layers = nn.ModuleList(
            [GatoDecoderLayer(config, layer_idx) for layer_idx in range(config.num_hidden_layers)]
        )
        self.norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.gradient_checkpointing = False
        self.post_init()

    def get_input_embeddings(self) -> nn.Embedding:
        return self.embed_tokens

    def set_input_embeddings(self, value: nn.Embedding) -> None:
        self.embed_tokens = value

    def embed_local_positions_of(self, local_positions: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        """``local_positions`` ``(batch, seq)`` → ``(batch, seq, hidden_size)``; zeros where it is ``LOCAL_POSITION_NONE``."""
        max_local = self.config.max_local_positions
        index = torch.where(
            local_positions == LOCAL_POSITION_ACTION,
            torch.full_like(local_positions, max_local),
            local_positions.clamp(0, max_local - 1),  # later observation tokens share the last index
        )
        has_embedding = (local_positions != LOCAL_POSITION_NONE).unsqueeze(-1)
        return self.embed_local_positions(index).to(dtype) * has_embedding.to(dtype)

    def place_patches(
        self,
        inputs_embeds: torch.Tensor,
        patch_mask: torch.Tensor,
        patch_pixels: torch.Tensor,
        patch_rows: torch.Tensor,
        patch_cols: torch.Tensor,
        patch_valid: torch.Tensor | None,
    ) -> torch.Tensor:
        """Replace the embeddings at ``patch_mask`` positions ``(batch, seq)`` by the embeddings of the valid patches.

        One masked scatter: the k-th True of ``patch_mask[b]`` takes the k-th valid patch of ``patch_pixels[b]``
        ``(batch, patches, C, ps, ps)``; only valid patches go through the ResNet block.
        """
        patch_mask = patch_mask.bool()
        if patch_valid is None:
            patch_valid = torch.ones(patch_pixels.shape[:2], dtype=torch.bool, device=patch_pixels.device)
        patch_valid = patch_valid.bool()
        if values_are_checkable(patch_mask) and not torch.equal(patch_mask.sum(1), patch_valid.sum(1)):
            raise ValueError(
                "patch_mask and patch_valid must count the same patches per row, got "
                f"{patch_mask.sum(1).tolist()} and {patch_valid.sum(1).tolist()}"
            )
        pixels = patch_pixels.to(inputs_embeds.dtype)
        if torch.compiler.is_compiling():
            # Under torch.compile the convolutions need a static batch (their fake kernels reject a data-dependent
            # one): embed every patch slot, then keep the valid ones.
            patch_embeds = self.embed_patches(pixels.flatten(0, 1), patch_rows.flatten(0, 1), patch_cols.flatten(0, 1))
            patch_embeds = patch_embeds.view(*patch_valid.shape, -1)[patch_valid]
        else:  # eager: only real patches go through the ResNet block (batches mixing text and images pad a lot)
            patch_embeds = self.embed_patches(pixels[patch_valid], patch_rows[patch_valid], patch_cols[patch_valid])
        return inputs_embeds.masked_scatter(patch_mask.unsqueeze(-1), patch_embeds.to(inputs_embeds.dtype))

    def embed_inputs(
        self,
        input_ids: torch.LongTensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        local_positions: torch.LongTensor | None = None,
        patch_mask: torch.Tensor | None = None,
        patch_pixels: torch.Tensor | None = None,
        patch_rows: torch.LongTensor | None = None,
        patch_cols: torch.LongTensor | None = None,
        patch_valid: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """The input embeddings ``(batch, seq, hidden_size)``: token table (or ``inputs_embeds``), image patches at
        ``patch_mask``, local observation positions (arguments as in :meth:`forward`). The action API's static
        path calls it on its own so that a compiled decoder trunk sees only fixed shapes."""
        check_token_inputs(
            self.config,
            input_ids,
            inputs_embeds,
            local_positions,
            patch_mask,
            patch_pixels,
            patch_rows,
            patch_cols,
            patch_valid,
        )
        if inputs_embeds is None:
            inputs_embeds = self.embed_tokens(input_ids)
        # Every parameter takes part in every training step, images or not: data-parallel training (DDP, DeepSpeed)
        # reduces gradients in buckets and stops, or goes out of step between ranks, when one rank's batch has no
        # image and leaves the patch embedding out of the graph. An unused embedding runs its own forward on an
        # empty input at the place a used one runs (0 rows: zero gradients, no position sampled, so no random number
        # drawn): DeepSpeed ZeRO-3 gathers partitioned parameters in module hooks and checks that every rank calls
        # the same modules in the same order.
        training = self.training and torch.is_grad_enabled()
        if patch_pixels is not None:
            inputs_embeds = self.place_patches(
                inputs_embeds, patch_mask, patch_pixels, patch_rows, patch_cols, patch_valid
            )
        elif training:
            config = self.config
            no_pixels = inputs_embeds.new_zeros(0, config.num_channels, config.patch_size, config.patch_size)
            no_intervals = torch.zeros(0, 2, dtype=torch.long, device=inputs_embeds.device)
            inputs_embeds = inputs_embeds + self.embed_patches(no_pixels, no_intervals, no_intervals).sum() * 0.0
        if local_positions is not None:
            inputs_embeds = inputs_embeds + self.embed_local_positions_of(local_positions, inputs_embeds.dtype)
        elif training:
            no_positions = torch.zeros(0, dtype=torch.long, device=inputs_embeds.device)
            inputs_embeds = (
                inputs_embeds + self.embed_local_positions(no_positions).sum().to(inputs_embeds.dtype) * 0.0
            )
        return inputs_embeds

    @deprecate_kwarg("past_key_values", "5.40.0", new_name="cache")
    @merge_with_config_defaults
    @capture_outputs
    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.LongTensor | None = None,
        cache: Cache | None = None,
        inputs_embeds: torch.Tensor | None = None,
        use_cache: bool | None = None,
        local_positions: torch.LongTensor | None = None,
        patch_mask: torch.Tensor | None = None,
        patch_pixels: torch.Tensor | None = None,
        patch_rows: torch.LongTensor | None = None,
        patch_cols: torch.LongTensor | None = None,
        patch_valid: torch.Tensor | None = None,
        **kwargs: Unpack[TransformersKwargs],
    ) -> BaseModelOutputWithPast:
        r"""Run the decoder over a (chunk of a) token stream.

        Args:
            input_ids: ``(batch, seq)`` token ids (``PATCH_PLACEHOLDER_ID`` at image-patch positions).
            attention_mask: ``(batch, seq_so_far)`` 1 on real tokens, 0 on padding (or a prepared 4D mask).
            position_ids: ``(batch, seq)`` global positions; default ``arange`` after the cached length.
            cache: past keys/values (a ``Cache``); created as a ``DynamicCache`` when ``use_cache`` and none given.
            inputs_embeds: ``(batch, seq, hidden_size)`` instead of ``input_ids`` (token embeddings; patch and
                local-position embeddings are still added).
            local_positions: ``(batch, seq)`` observation index within the time step, ``LOCAL_POSITION_ACTION``
                on action tokens, ``LOCAL_POSITION_NONE`` (no embedding) elsewhere; ``None`` = all NONE.
            patch_mask: ``(batch, seq)`` bool, True at image-patch positions.
            patch_pixels: ``(batch, patches, channels, patch_size, patch_size)`` float, pixels in [-1, 1] / 4.
            patch_rows / patch_cols: ``(batch, patches, 2)`` long ``[lo, hi)`` position-bin intervals.
            patch_valid: ``(batch, patches)`` bool, True on real (non-padding) patches; ``None`` = all real.
        """
        inputs_embeds = self.embed_inputs(
            input_ids, inputs_embeds, local_positions, patch_mask, patch_pixels, patch_rows, patch_cols, patch_valid
        )
        check_attention_inputs(attention_mask, position_ids, cache, tuple(inputs_embeds.shape[:2]))

        if use_cache and cache is None:
            cache = DynamicCache(config=self.config)

        if position_ids is None:
            past_seen_tokens = cache.get_seq_length() if cache is not None else 0
            position_ids = torch.arange(inputs_embeds.shape[1], device=inputs_embeds.device) + past_seen_tokens
            position_ids = position_ids.unsqueeze(0)

        causal_mask = create_causal_mask(
            config=self.config,
            inputs_embeds=inputs_embeds,
            attention_mask=attention_mask,
            cache=cache,
            position_ids=position_ids,
        )

        if self.embed_positions is not None:
            inputs_embeds = inputs_embeds + self.embed_positions(position_ids)
            position_embeddings = None
        else:
            position_embeddings = self.rotary_emb(inputs_embeds, position_ids=position_ids)
        hidden_states = self.embed_dropout(inputs_embeds)

        for decoder_layer in self.layers[: self.config.num_hidden_layers]:
            hidden_states = decoder_layer(
                hidden_states,
                attention_mask=causal_mask,
                position_embeddings=position_embeddings,
                position_ids=position_ids,
                cache=cache,
                use_cache=use_cache,
                **kwargs,
            )

        hidden_states = self.norm(hidden_states)
        return BaseModelOutputWithPast(last_hidden_state=hidden_states, cache=cache)


def target_mask(
    labels: torch.Tensor, loss_mask: torch.Tensor | None = None, attention_mask: torch.Tensor | None = None
) -> torch.Tensor:
    """Which next-token targets the loss counts: ``(batch, seq - 1)`` bool, column ``l`` for ``labels[:, l + 1]``.

    A target has a label (not ``IGNORE_INDEX``), ``loss_mask`` 1 and (a 2D) ``attention_mask`` 1 — the one rule that
    the loss, the training loop's token count and evaluation's per-target metrics share.
    """
    is_target = labels[:, 1:] != IGNORE_INDEX
    if loss_mask is not None:
        is_target = is_target & loss_mask[:, 1:].bool()
    if attention_mask is not None and attention_mask.ndim == 2:
        # The mask covers cached positions too; its last seq - 1 columns belong to the targets.
        is_target = is_target & attention_mask[:, attention_mask.shape[1] - is_target.shape[1] :].bool()
    return is_target


def masked_next_token_loss(
    lm_head: nn.Module,
    hidden_states: torch.Tensor,
    labels: torch.Tensor | None = None,
    loss_mask: torch.Tensor | None = None,
    attention_mask: torch.Tensor | None = None,
    shift_labels: torch.Tensor | None = None,
    num_items_in_batch: int | torch.Tensor | None = None,
    skip_logits: bool = False,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Gato's training loss (GATO_SPEC.md §3): next-token cross-entropy over the targets only.

    Targets are the positions ``l`` where ``labels[:, l]`` is not ``IGNORE_INDEX``, ``loss_mask[:, l]`` is 1 and (a
    2D) ``attention_mask``'s column for ``l`` is 1; each is predicted from position ``l - 1``. Given pre-shifted
    ``shift_labels`` ``(batch, seq)`` instead (position ``l`` predicts ``shift_labels[:, l]``, as transformers'
    losses take them under sequence/context parallelism, where a rank holds a slice of the sequence and cannot
    shift), the targets are where ``shift_labels`` is not ``IGNORE_INDEX``; ``labels`` is then not read.

    The vocabulary-sized output layer runs only at the ``N`` predicting positions (gather first, then project).

    Returns:
        ``(loss, logits)``: the sum over targets divided by ``num_items_in_batch`` when given (Trainer, gradient
        accumulation), else the mean over this batch's targets; ``logits`` ``(N, vocab)`` in row-major (batch,
        position) order of the targets; ``None`` with ``skip_logits``, where the output layer and the cross-entropy
        run chunk by chunk and never hold the ``(N, vocab)`` logits (``loss_gato.linear_cross_entropy``; same loss
        and gradients).
    """
    if shift_labels is not None:
        predicting, targets = hidden_states, shift_labels
        is_target = targets != IGNORE_INDEX
    else:
        predicting, targets = hidden_states[:, :-1], labels[:, 1:]
        is_target = target_mask(labels, loss_mask, attention_mask)
    if skip_logits:
        logits = None
        token_losses = linear_cross_entropy(predicting[is_target], lm_head.weight, targets[is_target])
    else:
        logits = lm_head(predicting[is_target])
        token_losses = F.cross_entropy(logits.float(), targets[is_target], reduction="sum")
    denominator = num_items_in_batch if num_items_in_batch is not None else is_target.sum().clamp(min=1)
    if torch.is_tensor(denominator):
        denominator = denominator.to(token_losses.device)
    return token_losses / denominator, logits


class GatoForCausalLM(GatoPreTrainedModel, GenerationMixin, GatoActingMixin):
    """Gato with its output layer: next-token logits, the masked training loss, ``generate()`` and ``act()``."""

    _tied_weights_keys = {"lm_head.weight": "model.embed_tokens.weight"}

    def __init__(self, config: GatoConfig):
        super().__init__(config)
        self.model = GatoModel(config)
        self.vocab_size = config.vocab_size
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        self.post_init()

    @deprecate_kwarg("past_key_values", "5.40.0", new_name="cache")
    @can_return_tuple
    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.LongTensor | None = None,
        cache: Cache | None = None,
        inputs_embeds: torch.Tensor | None = None,
        labels: torch.LongTensor | None = None,
        loss_mask: torch.Tensor | None = None,
        shift_labels: torch.LongTensor | None = None,
        use_cache: bool | None = None,
        logits_to_keep: int | torch.Tensor = 0,
        local_positions: torch.LongTensor | None = None,
        patch_mask: torch.Tensor | None = None,
        patch_pixels: torch.Tensor | None = None,
        patch_rows: torch.LongTensor | None = None,
        patch_cols: torch.LongTensor | None = None,
        patch_valid: torch.Tensor | None = None,
        **kwargs: Unpack[TransformersKwargs],
    ) -> CausalLMOutputWithPast:
        r"""Logits and, given ``labels``, ``loss_mask`` or ``shift_labels``, the masked next-token cross-entropy
        (GATO_SPEC.md §3, :func:`masked_next_token_loss`).

        Takes the processor's batch as keywords (``model(**batch)``); see :meth:`GatoModel.forward` for the inputs.

        Args:
            labels: ``(batch, seq)`` targets in transformers' convention (the model shifts: position ``l - 1``
                predicts ``labels[:, l]``); ``IGNORE_INDEX`` where nothing is predicted. Defaults to
                ``input_ids`` when only ``loss_mask`` is given.
            loss_mask: ``(batch, seq)`` 1 where the token at that position is a target (text and action
                tokens). Targets are where ``loss_mask`` is 1 *and* the label is not ``IGNORE_INDEX`` *and*
                (if given) the 2D ``attention_mask`` is 1, so observation tokens never count, whatever their label.
            shift_labels: ``(batch, seq)`` pre-shifted targets (position ``l`` predicts ``shift_labels[:, l]``;
                ``IGNORE_INDEX`` where nothing is predicted), as sequence/context parallelism passes them; used
                instead of ``labels``. Fold a loss mask into it: ``loss_mask`` is refused beside it.
            logits_to_keep: without a loss, keep logits for the last ``n`` positions only (0 = all), as llama.
            num_items_in_batch (keyword): if given (Trainer, gradient accumulation), the loss is the sum over
                targets divided by it instead of the mean over this batch's targets.
            skip_logits (keyword): with a loss, compute it without the logits (``logits`` is then ``None``)
                through the chunked output layer + cross-entropy of ``loss_gato.py``. Default: in training mode
                with gradients on (as Liger's kernels do), else not.

        Returns:
            ``CausalLMOutputWithPast``. Without a loss, ``logits`` is ``(batch, kept_positions, vocab)``. With a
            loss, the output layer runs only at the ``N`` predicting positions and ``logits`` is ``(N, vocab)``:
            row ``i`` is the prediction for the ``i``-th target in row-major (batch, position) order (``None``
            when ``skip_logits``: training computes the loss chunk by chunk without them, ``loss_gato.py``).

        Raises:
            ValueError: naming the argument, when an input's shape does not fit ``input_ids`` (or
                ``inputs_embeds``) or, on CPU, its values are out of range (ids outside the vocabulary).
        """
        num_items_in_batch = kwargs.pop("num_items_in_batch", None)
        skip_logits = kwargs.pop("skip_logits", None)
        if shift_labels is not None and loss_mask is not None:
            raise ValueError(
                "loss_mask: not taken with shift_labels (pre-shifted targets); put IGNORE_INDEX into shift_labels where "
                "there is no target instead"
            )
        if labels is None and shift_labels is None and loss_mask is not None:
            if input_ids is None:
                raise ValueError("loss_mask without labels needs input_ids (the targets)")
            labels = input_ids
        token_source = input_ids if input_ids is not None else inputs_embeds
        if token_source is not None:  # (neither of them is GatoModel's error)
            reference = f"(batch, seq) of {'input_ids' if input_ids is not None else 'inputs_embeds'}"
            for name, value in (("labels", labels), ("loss_mask", loss_mask), ("shift_labels", shift_labels)):
                check_shape(name, value, tuple(token_source.shape[:2]), reference)
            for name, value in (("labels", labels), ("shift_labels", shift_labels)):
                check_values_in_range(name, value, 0, self.config.vocab_size, also=(IGNORE_INDEX,))
        outputs: BaseModelOutputWithPast = self.model(
            input_ids=input_ids,
            attention_mask=attention_mask,
            position_ids=position_ids,
            cache=cache,
            inputs_embeds=inputs_embeds,
            use_cache=use_cache,
            local_positions=local_positions,
            patch_mask=patch_mask,
            patch_pixels=patch_pixels,
            patch_rows=patch_rows,
            patch_cols=patch_cols,
            patch_valid=patch_valid,
            **kwargs,
        )
        hidden_states = outputs.last_hidden_state

        loss = None
        if labels is not None or shift_labels is not None:
            loss, logits = masked_next_token_loss(
                self.lm_head,
                hidden_states,
                labels=labels,
                loss_mask=loss_mask,
                attention_mask=attention_mask,
                shift_labels=shift_labels,
                num_items_in_batch=num_items_in_batch,
                skip_logits=fused_loss_applies(self.training, self.lm_head.weight)
                if skip_logits is None
                else skip_logits,
            )
        else:
            logits = self.lm_head(slice_logits_to_keep(hidden_states, logits_to_keep))

        return CausalLMOutputWithPast(
            loss=loss,
            logits=logits,
            cache=outputs.cache,
            hidden_states=outputs.hidden_states,
            attentions=outputs.attentions,
        )

    def prepare_inputs_for_generation(
        self,
        input_ids: torch.LongTensor,
        next_sequence_length: int | None = None,
        cache: Cache | None = None,
        attention_mask: torch.LongTensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        is_first_iteration: bool | None = False,
        **kwargs,
    ):
        """As ``GenerationMixin``'s, plus Gato's per-token inputs cut or extended to the tokens fed this step.

        - Training-only inputs (``labels``, ``loss_mask``, ``shift_labels``) are never passed on.
        - Image-patch inputs and local positions describe the prompt (e.g. the image of a caption prompt): after the
          prefill they are dropped, the tokens generated after the prompt being text.
        - ``local_positions`` and ``patch_mask`` describe the sequence from its first token on: the prompt's, or the
          prompt's and the generated tokens' (as ``attention_mask``). Tokens past their end are generated text (no local
          position, no patch). Each step gets the columns of the tokens it feeds: continuing from a returned cache,
          the uncached tokens only (the patches of the cached positions are then marked invalid); without a cache,
          the whole sequence.
        """
        for name in TRAINING_ONLY_INPUTS:
            kwargs.pop(name, None)
        # The explicit signature (as GenerationMixin's) tells `generate` that prompts may come as `inputs_embeds`.
        model_inputs = super().prepare_inputs_for_generation(
            input_ids,
            next_sequence_length=next_sequence_length,
            cache=cache,
            attention_mask=attention_mask,
            inputs_embeds=inputs_embeds,
            is_first_iteration=is_first_iteration,
            **kwargs,
        )
        if not is_first_iteration and model_inputs.get("cache") is not None:
            for name in PREFILL_ONLY_INPUTS:
                model_inputs.pop(name, None)
            return model_inputs
        if model_inputs.get("inputs_embeds") is not None:  # a prompt given as embeddings (first step only)
            fed, sequence, sequence_name = model_inputs["inputs_embeds"], inputs_embeds, "inputs_embeds"
        else:
            fed, sequence, sequence_name = model_inputs.get("input_ids"), input_ids, "input_ids"
        if fed is None:
            return model_inputs
        # The fed tokens are the last `length` of the sequence so far; the ones before them are in the cache.
        length = fed.shape[1]
        start = max(sequence.shape[1], length) - length
        for name in ("local_positions", "patch_mask"):
            value = model_inputs.get(name)
            if value is not None and value.shape[1] > start + length:
                raise ValueError(
                    f"{name}: expected at most one column per token of the sequence ({sequence_name} has "
                    f"{start + length}), got shape {tuple(value.shape)}"
                )
        patch_mask = model_inputs.get("patch_mask")
        if patch_mask is not None and start > 0:
            self._drop_cached_patches(model_inputs, patch_mask[:, :start])
        for name, fill in (("local_positions", LOCAL_POSITION_NONE), ("patch_mask", False)):
            value = model_inputs.get(name)
            if value is None:
                continue
            value = value[:, start:]  # the fed tokens' columns; none when they all come after the prompt
            if value.shape[1] < length:  # tokens past the end: generated text
                tail = value.new_full((value.shape[0], length - value.shape[1]), fill)
                value = torch.cat([value, tail], dim=1)
            model_inputs[name] = value
        return model_inputs

    @staticmethod
    def _drop_cached_patches(model_inputs: dict, cached_patch_mask: torch.Tensor) -> None:
        """Mark invalid the patches at cached positions (the first ``cached_patch_mask.sum(1)`` valid ones of each row);
        without any patch left among the fed tokens, drop the image inputs."""
        if not bool(model_inputs["patch_mask"][:, cached_patch_mask.shape[1] :].any()):
            for name in ("patch_mask", "patch_pixels", "patch_rows", "patch_cols", "patch_valid"):
                model_inputs.pop(name, None)
            return
        pixels = model_inputs["patch_pixels"]
        valid = model_inputs.get("patch_valid")
        if valid is None:
            valid = torch.ones(pixels.shape[:2], dtype=torch.bool, device=pixels.device)
        valid = valid.bool()
        cached = cached_patch_mask.bool().sum(1, keepdim=True)
        model_inputs["patch_valid"] = valid & (valid.long().cumsum(1) > cached)


__all__ = ["GatoPreTrainedModel", "GatoModel", "GatoForCausalLM", "masked_next_token_loss", "write_remote_code"]
