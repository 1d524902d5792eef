"""EAT: a Deformable Attention Transformer with interest points and offset steering.

Module names follow the published checkpoints (``patch_proj``, ``stages.N.
attns.M.ref_point14``, ``down_projs``, ``cls_norm``, ``cls_head``), so their
state dicts load by name; ``checkpoint_filter_fn`` converts them. Unlike the
published code, the network works on channels-last token maps (B, H, W, C)
from the patch embedding to the head, which removes the per-block layout
shuffles, computes interest points per image (an image's score never depends
on its batch-mates) and steers offsets on the device.

This file knows nothing about files, folders or the command line.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from timm.layers import DropPath, trunc_normal_
from timm.models import register_model
from torch import nn

from eat_curate.model.modes import HEAD_MODES
from eat_curate.model.presets import PRESETS, EATPreset, get_preset
from eat_curate.model.steering import NO_STEERING, SteeringRule, apply_steering


def _onednn_linear_available() -> bool:
    return torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, "_linear_pointwise")


_ONEDNN_LINEAR = _onednn_linear_available()
# oneDNN has no bf16 inner product on CPUs without AVX512 (it refuses to build one); autocast's own
# bf16 matmul still runs there, emulated.
_ONEDNN_BF16_LINEAR = _ONEDNN_LINEAR and torch.ops.mkldnn._is_mkldnn_bf16_supported()


def linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, gelu: bool = False) -> torch.Tensor:
    """``F.linear`` (optionally followed by exact GELU), through oneDNN for CPU inference.

    PyTorch sends fp32 CPU matmuls to MKL, which runs at about half of
    oneDNN's speed on AMD CPUs, and runs GELU as a separate pass; oneDNN's
    linear fuses it. Under CPU bf16 autocast the same op runs in bf16 (what
    autocast would do, plus the fusion). The op has no autograd, so training
    takes the plain path. Results agree with ``F.linear`` to float rounding.
    """
    if _ONEDNN_LINEAR and x.device.type == "cpu" and not torch.is_grad_enabled():
        bf16 = torch.is_autocast_enabled("cpu") and torch.get_autocast_dtype("cpu") == torch.bfloat16
        onednn = _ONEDNN_BF16_LINEAR or not bf16  # else the plain path below, which autocast runs in bf16
        if bf16 and onednn:
            low = torch.bfloat16
            x, weight = x.to(low), weight.to(low)
            bias = bias.to(low) if bias is not None else None
        if onednn and x.dtype == weight.dtype and x.dtype in (torch.float32, torch.bfloat16):
            return torch.ops.mkldnn._linear_pointwise(
                x, weight, bias, "gelu" if gelu else "none", [], "none" if gelu else ""
            )
    y = F.linear(x, weight, bias)
    return F.gelu(y) if gelu else y


@dataclass
class DeformablePoints:
    """Where one deformable block looked, for every image of a batch.

    ``interest`` and ``positions`` are (B, groups, H, W, 2) in normalised
    [-1, 1] coordinates, component 0 = y, component 1 = x.
    """

    stage: int
    block: int
    interest: torch.Tensor
    positions: torch.Tensor


class ChannelLayerNorm(nn.Module):
    """LayerNorm over the channels of a (B, H, W, C) map.

    A wrapper only so the checkpoint keys read ``<name>.norm.weight`` as in
    the published code.
    """

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(x)


class TokenMLP(nn.Module):
    def __init__(self, dim: int, ratio: int) -> None:
        super().__init__()
        self.chunk = nn.Sequential(
            OrderedDict(
                linear1=nn.Linear(dim, dim * ratio),
                act=nn.GELU(),
                linear2=nn.Linear(dim * ratio, dim),
            )
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        first, second = self.chunk.linear1, self.chunk.linear2
        return linear(linear(x, first.weight, first.bias, gelu=True), second.weight, second.bias)


def relative_position_index(window: int) -> torch.Tensor:
    """Swin-style index into a ((2w-1)^2, heads) bias table, (w*w, w*w)."""
    coords = torch.stack(torch.meshgrid(torch.arange(window), torch.arange(window), indexing="ij")).flatten(1)
    delta = coords[:, :, None] - coords[:, None, :]
    return (delta[0] + window - 1) * (2 * window - 1) + (delta[1] + window - 1)


def _partition_windows(x: torch.Tensor, window: int) -> torch.Tensor:
    """(B, H, W, C) -> (B, windows, window*window, C), windows in row-major order."""
    B, H, W, C = x.shape
    x = x.view(B, H // window, window, W // window, window, C).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(B, (H // window) * (W // window), window * window, C)


def _merge_windows(x: torch.Tensor, window: int, height: int, width: int) -> torch.Tensor:
    B, _, _, C = x.shape
    x = x.view(B, height // window, width // window, window, window, C).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(B, height, width, C)


def shifted_window_mask(size: int, window: int, shift: int) -> torch.Tensor:
    """(windows, w*w, w*w) additive mask: -100 between tokens from different regions of the rolled map."""
    regions = torch.zeros(size, size)
    bounds = (slice(0, -window), slice(-window, -shift), slice(-shift, None))
    label = 0
    for rows in bounds:
        for cols in bounds:
            regions[rows, cols] = label
            label += 1
    labels = _partition_windows(regions.view(1, size, size, 1), window).squeeze(-1).squeeze(0)
    different = labels[:, None, :] != labels[:, :, None]
    return torch.zeros(different.shape).masked_fill(different, -100.0)


class WindowAttention(nn.Module):
    """Local attention in non-overlapping windows (L), optionally on a shifted map (S)."""

    def __init__(self, dim: int, heads: int, window: int, feature_size: int, shifted: bool) -> None:
        super().__init__()
        self.heads = heads
        self.window = window
        self.shift = math.ceil(window / 2) if shifted else 0
        self.proj_qkv = nn.Linear(dim, 3 * dim)
        self.proj_out = nn.Linear(dim, dim)
        self.relative_position_bias_table = nn.Parameter(torch.zeros((2 * window - 1) ** 2, heads))
        trunc_normal_(self.relative_position_bias_table, std=0.01)
        # Derived, not learned: kept out of our checkpoints, checked on import.
        self.register_buffer("relative_position_index", relative_position_index(window), persistent=False)
        if self.shift:
            mask = shifted_window_mask(feature_size, window, self.shift)
            self.register_buffer("attn_mask", mask, persistent=False)
        else:
            self.attn_mask = None

    def _attention_bias(self, windows: int) -> torch.Tensor:
        """(1, windows * heads, N, N): position bias, plus the region mask when shifted.

        4-D on purpose: PyTorch's fused CPU attention kernel takes only a 4-D
        mask; a 3-D one silently falls back to the ~2.5x slower math path.
        """
        n = self.window * self.window
        bias = self.relative_position_bias_table[self.relative_position_index.view(-1)]
        bias = bias.view(n, n, self.heads).permute(2, 0, 1)
        if self.attn_mask is None:
            bias = bias.unsqueeze(0).expand(windows, -1, -1, -1)
        else:
            bias = bias.unsqueeze(0) + self.attn_mask.unsqueeze(1)
        return bias.reshape(1, windows * self.heads, n, n)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, None]:
        B, H, W, C = x.shape
        if self.shift:
            x = torch.roll(x, shifts=(-self.shift, -self.shift), dims=(1, 2))
        windows = _partition_windows(x, self.window)
        nw, n = windows.shape[1], windows.shape[2]
        head_dim = C // self.heads
        # Windows and heads share one batch axis so a single (windows*heads, N, N)
        # bias broadcasts over the images of the batch.
        qkv = linear(windows, self.proj_qkv.weight, self.proj_qkv.bias).view(B, nw, n, 3, self.heads, head_dim)
        q, k, v = qkv.permute(3, 0, 1, 4, 2, 5).reshape(3, B, nw * self.heads, n, head_dim).unbind(0)
        bias = self._attention_bias(nw).to(q.dtype)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias)
        out = out.view(B, nw, self.heads, n, head_dim).transpose(2, 3).reshape(B, nw, n, C)
        x = _merge_windows(linear(out, self.proj_out.weight, self.proj_out.bias), self.window, H, W)
        if self.shift:
            x = torch.roll(x, shifts=(self.shift, self.shift), dims=(1, 2))
        return x, None


def _conv1x1(x: torch.Tensor, conv: nn.Conv2d) -> torch.Tensor:
    """A 1x1 convolution applied to channels-last tokens (a linear layer on the last axis)."""
    return linear(x, conv.weight.flatten(1), conv.bias)


def _pixel_centres(height: int, width: int, device: torch.device) -> torch.Tensor:
    """(H, W, 2) normalised (y, x) coordinates of pixel centres."""
    ys = (torch.arange(height, device=device, dtype=torch.float32) + 0.5) / height * 2 - 1
    xs = (torch.arange(width, device=device, dtype=torch.float32) + 0.5) / width * 2 - 1
    return torch.stack(torch.meshgrid(ys, xs, indexing="ij"), dim=-1)


class DeformableAttention(nn.Module):
    """Deformable attention whose reference points are learned interest points (EAT).

    Sampling positions are ``interest + steer(offset)``; keys and values are
    sampled bilinearly there, and a relative position bias table is sampled at
    each query-to-sample displacement.
    """

    def __init__(
        self,
        dim: int,
        heads: int,
        groups: int,
        feature_size: int,
        offset_kernel: int,
        offset_range_factor: float,
    ) -> None:
        super().__init__()
        if dim % heads or dim % groups or heads % groups:
            raise ValueError(f"dim {dim}, heads {heads} and groups {groups} do not divide evenly")
        self.heads = heads
        self.groups = groups
        self.group_channels = dim // groups
        self.offset_range_factor = offset_range_factor
        self.steering: SteeringRule = NO_STEERING
        cg = self.group_channels
        self.conv_offset = nn.Sequential(
            nn.Conv2d(cg, cg, offset_kernel, 1, offset_kernel // 2, groups=cg),
            ChannelLayerNorm(cg),
            nn.GELU(),
            nn.Conv2d(cg, 2, 1, bias=False),
        )
        self.proj_q = nn.Conv2d(dim, dim, 1)
        self.proj_k = nn.Conv2d(dim, dim, 1)
        self.proj_v = nn.Conv2d(dim, dim, 1)
        self.proj_out = nn.Conv2d(dim, dim, 1)
        self.ref_point14 = nn.Conv2d(dim, 2, 1)
        self.rpe_table = nn.Parameter(torch.zeros(heads, 2 * feature_size - 1, 2 * feature_size - 1))
        trunc_normal_(self.rpe_table, std=0.01)

    def _to_groups(self, x: torch.Tensor) -> torch.Tensor:
        """(B, H, W, C) -> (B*groups, C/groups, H, W), the layout of grid_sample and the offset conv."""
        B, H, W, _ = x.shape
        x = x.view(B, H, W, self.groups, self.group_channels).permute(0, 3, 4, 1, 2)
        return x.reshape(B * self.groups, self.group_channels, H, W)

    def _sampling_positions(self, x: torch.Tensor, q: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Interest points and sampling positions, both (B*groups, H, W, 2), in fp32.

        Geometry stays in fp32 even under autocast: positions feed two bilinear
        samplings, where bf16 rounding would move them by a visible fraction
        of a pixel.
        """
        B, H, W, _ = x.shape
        with torch.autocast(device_type=x.device.type, enabled=False):
            offset_net = self.conv_offset
            offset = offset_net[0](self._to_groups(q.float())).permute(0, 2, 3, 1)
            offset = F.gelu(offset_net[1](offset))
            offset = F.linear(offset, offset_net[3].weight.flatten(1).float())
            # Bounded to range_factor pixels of this map: y by 1/H, x by 1/W (scalars, so no host-to-device copy).
            offset = offset.tanh()
            factor = self.offset_range_factor
            offset = torch.stack((offset[..., 0] * (factor / H), offset[..., 1] * (factor / W)), dim=-1)

            interest = _conv1x1(x.float(), self.ref_point14).tanh()  # one field per image
            interest = interest.unsqueeze(1).expand(B, self.groups, H, W, 2).reshape(B * self.groups, H, W, 2)
            offset = apply_steering(offset, interest, self.steering)
        return interest, offset + interest

    def _position_bias(self, positions: torch.Tensor, batch: int) -> torch.Tensor:
        """(B, heads, H*W queries, H*W samples) bias sampled from ``rpe_table``."""
        bg, H, W, _ = positions.shape
        queries = _pixel_centres(H, W, positions.device).view(1, H * W, 1, 2)
        displacement = (queries - positions.view(bg, 1, H * W, 2)) * 0.5
        table = self.rpe_table.float().view(1, self.groups, self.heads // self.groups, 2 * H - 1, 2 * W - 1)
        table = table.expand(batch, -1, -1, -1, -1).reshape(bg, self.heads // self.groups, 2 * H - 1, 2 * W - 1)
        bias = F.grid_sample(table, displacement.flip(-1), mode="bilinear", align_corners=True)
        return bias.view(batch, self.heads, H * W, H * W)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        B, H, W, C = x.shape
        head_dim = C // self.heads
        q = _conv1x1(x, self.proj_q)
        interest, positions = self._sampling_positions(x, q)

        with torch.autocast(device_type=x.device.type, enabled=False):
            sampled = F.grid_sample(
                self._to_groups(x.float()), positions.flip(-1), mode="bilinear", align_corners=True
            )
            bias = self._position_bias(positions, B)
        sampled = sampled.view(B, C, H * W).transpose(1, 2)
        k = _conv1x1(sampled, self.proj_k)
        v = _conv1x1(sampled, self.proj_v)

        def by_head(t: torch.Tensor) -> torch.Tensor:
            return t.reshape(B, -1, self.heads, head_dim).transpose(1, 2)

        q, k, v = by_head(q), by_head(k), by_head(v)
        out = F.scaled_dot_product_attention(q, k.to(q.dtype), v.to(q.dtype), attn_mask=bias.to(q.dtype))
        out = _conv1x1(out.transpose(1, 2).reshape(B, H, W, C), self.proj_out)
        shape = (B, self.groups, H, W, 2)
        return out, (interest.view(shape), positions.view(shape))


class EATStage(nn.Module):
    def __init__(self, preset: EATPreset, index: int, drop_path_rates: list[float]) -> None:
        super().__init__()
        dim, heads = preset.dims[index], preset.heads[index]
        feature_size = preset.feature_sizes[index]
        spec = preset.stage_specs[index]
        self.layer_norms = nn.ModuleList(ChannelLayerNorm(dim) for _ in range(2 * len(spec)))
        self.mlps = nn.ModuleList(TokenMLP(dim, preset.mlp_ratio) for _ in spec)
        self.attns = nn.ModuleList()
        for kind in spec:
            if kind in ("L", "S"):
                block = WindowAttention(dim, heads, preset.window_size, feature_size, shifted=kind == "S")
            elif kind == "D":
                block = DeformableAttention(
                    dim,
                    heads,
                    preset.groups[index],
                    feature_size,
                    preset.offset_kernel_sizes[index],
                    preset.offset_range_factor,
                )
            else:
                raise ValueError(f"unknown block kind {kind!r} in stage {index}")
            self.attns.append(block)
        self.drop_path = nn.ModuleList(DropPath(rate) if rate > 0 else nn.Identity() for rate in drop_path_rates)

    def forward(self, x: torch.Tensor, points: list[tuple[int, torch.Tensor, torch.Tensor]] | None) -> torch.Tensor:
        for j, (attn, mlp, drop) in enumerate(zip(self.attns, self.mlps, self.drop_path)):
            y, block_points = attn(self.layer_norms[2 * j](x))
            x = x + drop(y)
            x = x + drop(mlp(self.layer_norms[2 * j + 1](x)))
            if points is not None and block_points is not None:
                points.append((j, *block_points))
        return x


class EAT(nn.Module):
    """EAT for aesthetics: image batch (B, 3, S, S) -> 10 score logits.

    ``head_mode="softmax"`` (our models): :meth:`distribution` is the softmax
    of the logits. ``head_mode="published"``: the published AVA checkpoints
    were trained on the raw linear outputs, so the "distribution" is the raw
    output and the score is their weighted sum.
    """

    def __init__(
        self,
        preset: EATPreset | str = "tiny",
        head_mode: str = "softmax",
        drop_path_rate: float | None = None,
    ) -> None:
        super().__init__()
        if isinstance(preset, str):
            preset = get_preset(preset)
        if head_mode not in HEAD_MODES:
            raise ValueError(f"unknown head mode {head_mode!r}; expected one of {', '.join(HEAD_MODES)}")
        self.preset = preset
        self.head_mode = head_mode
        self.num_classes = preset.num_bins  # timm convention
        dims = preset.dims
        rate = preset.drop_path_rate if drop_path_rate is None else drop_path_rate
        rates = torch.linspace(0, rate, sum(preset.depths), device="cpu").tolist()  # on the CPU: a meta skeleton too

        self.patch_proj = nn.Sequential(
            nn.Conv2d(3, dims[0], preset.patch_size, preset.patch_size), ChannelLayerNorm(dims[0])
        )
        self.stages = nn.ModuleList()
        for i in range(4):
            start = sum(preset.depths[:i])
            self.stages.append(EATStage(preset, i, rates[start : start + preset.depths[i]]))
        self.down_projs = nn.ModuleList(
            nn.Sequential(nn.Conv2d(dims[i], dims[i + 1], 2, 2, bias=False), ChannelLayerNorm(dims[i + 1]))
            for i in range(3)
        )
        self.cls_norm = ChannelLayerNorm(dims[3])
        self.cls_head = nn.Linear(dims[3], preset.num_bins)
        self.apply(self._init_weights)

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, nn.Linear):
            trunc_normal_(module.weight, std=0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)

    def set_steering(self, rule: SteeringRule) -> None:
        for block in self.deformable_blocks():
            block.steering = rule

    def deformable_blocks(self) -> list[DeformableAttention]:
        return [m for m in self.modules() if isinstance(m, DeformableAttention)]

    @staticmethod
    def _downsample(x: torch.Tensor, down: nn.Sequential) -> torch.Tensor:
        """The 2x2 stride-2 convolution as one linear map over 2x2 patches of channels-last tokens."""
        B, H, W, C = x.shape
        conv, norm = down[0], down[1]
        patches = x.view(B, H // 2, 2, W // 2, 2, C).permute(0, 1, 3, 2, 4, 5).reshape(B, H // 2, W // 2, 4 * C)
        weight = conv.weight.permute(0, 2, 3, 1).reshape(conv.out_channels, 4 * C)
        return norm(linear(patches, weight, None))

    def forward_features(
        self, images: torch.Tensor, points: list[DeformablePoints] | None = None
    ) -> torch.Tensor:
        """(B, 3, S, S) images -> (B, H, W, C) final feature map; fills ``points`` when given."""
        x = self.patch_proj[0](images).permute(0, 2, 3, 1)
        x = self.patch_proj[1](x)
        for i, stage in enumerate(self.stages):
            stage_points: list | None = [] if points is not None else None
            x = stage(x, stage_points)
            if points is not None:
                points.extend(DeformablePoints(i, j, r, p) for j, r, p in stage_points)
            if i < 3:
                x = self._downsample(x, self.down_projs[i])
        return x

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        pooled = self.cls_norm(features).mean(dim=(1, 2))
        return linear(pooled, self.cls_head.weight, self.cls_head.bias)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(images))

    def forward_with_points(self, images: torch.Tensor) -> tuple[torch.Tensor, list[DeformablePoints]]:
        """Logits plus, per deformable block, its interest points and sampling positions."""
        points: list[DeformablePoints] = []
        logits = self.forward_head(self.forward_features(images, points))
        return logits, points

    def distribution(self, logits: torch.Tensor) -> torch.Tensor:
        """The 10-bin score distribution for the head mode (see class docstring)."""
        return logits.float().softmax(dim=-1) if self.head_mode == "softmax" else logits.float()


def score_moments(distribution: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean score sum(i * p_i) over bins 1..10 and its spread sqrt(sum(p_i (i - mean)^2))."""
    bins = torch.arange(1, distribution.shape[-1] + 1, device=distribution.device, dtype=distribution.dtype)
    mean = (distribution * bins).sum(dim=-1)
    variance = (distribution * (bins - mean.unsqueeze(-1)) ** 2).sum(dim=-1)
    # Raw outputs of a published head are not a true distribution; never take sqrt of < 0.
    return mean, variance.clamp_min(0).sqrt()


# --- published weights -------------------------------------------------------------

_DERIVED_BUFFERS = ("relative_position_index", "attn_mask")


def _resize_table(table: torch.Tensor, target_shape: torch.Size) -> torch.Tensor:
    """Bicubic resize of a relative position table to another window / feature size."""
    if table.dim() == 2:  # ((2w-1)^2, heads): window bias table
        side, heads = int(math.isqrt(table.shape[0])), table.shape[1]
        target_side = int(math.isqrt(target_shape[0]))
        grid = table.T.reshape(1, heads, side, side)
        grid = F.interpolate(grid, size=(target_side, target_side), mode="bicubic", align_corners=False)
        return grid.reshape(heads, -1).T.contiguous()
    grid = F.interpolate(table.unsqueeze(0), size=tuple(target_shape[1:]), mode="bicubic", align_corners=False)
    return grid.squeeze(0)


def checkpoint_filter_fn(state_dict: dict[str, torch.Tensor], model: EAT) -> dict[str, torch.Tensor]:
    """Convert a published EAT / DAT state dict into ``model``'s own state dict.

    - derived buffers (``relative_position_index``, ``attn_mask``) are checked
      against the model's and dropped: a mismatch means another architecture;
    - relative position tables whose size differs (another resolution) are
      resized bicubically;
    - every other key must exist in the model with the same shape.
    Missing keys are left for the caller to report.
    """
    own = model.state_dict()
    buffers = dict(model.named_buffers())
    converted: dict[str, torch.Tensor] = {}
    for key, value in state_dict.items():
        if key.rsplit(".", 1)[-1] in _DERIVED_BUFFERS and key in buffers:
            mine = buffers[key]
            # Another resolution legitimately changes their shape; the same shape
            # with other contents means another block layout.
            if mine.shape == value.shape and not torch.equal(mine, value.to(mine.dtype)):
                raise ValueError(f"checkpoint buffer {key} differs from this architecture's")
            continue
        if key in own and own[key].shape != value.shape:
            if key.endswith(("relative_position_bias_table", "rpe_table")):
                value = _resize_table(value.float(), own[key].shape)
            else:
                raise ValueError(
                    f"checkpoint tensor {key} has shape {tuple(value.shape)}, "
                    f"the model expects {tuple(own[key].shape)} (wrong --preset?)"
                )
        converted[key] = value
    return converted


# --- timm registry -----------------------------------------------------------------


def _create(preset: str, pretrained: bool = False, **kwargs) -> EAT:
    if pretrained:
        raise ValueError(
            "eat-curate ships no downloadable weights; create the model, then load a checkpoint "
            "with eat_curate.model.load_model or `eat-curate models import`"
        )
    for timm_key in ("pretrained_cfg", "pretrained_cfg_overlay", "cache_dir"):
        kwargs.pop(timm_key, None)  # timm's bookkeeping for hub weights; none exist for EAT
    if kwargs.pop("num_classes", 10) != 10:
        raise ValueError("EAT predicts a distribution over the 10 score bins; num_classes must be 10")
    return EAT(preset, **kwargs)


@register_model
def eat_nano(pretrained: bool = False, **kwargs) -> EAT:
    return _create("nano", pretrained, **kwargs)


@register_model
def eat_tiny(pretrained: bool = False, **kwargs) -> EAT:
    return _create("tiny", pretrained, **kwargs)


@register_model
def eat_small(pretrained: bool = False, **kwargs) -> EAT:
    return _create("small", pretrained, **kwargs)


@register_model
def eat_base(pretrained: bool = False, **kwargs) -> EAT:
    return _create("base", pretrained, **kwargs)


@register_model
def eat_base_384(pretrained: bool = False, **kwargs) -> EAT:
    return _create("base-384", pretrained, **kwargs)


TIMM_NAMES = {name: "eat_" + name.replace("-", "_") for name in PRESETS}
