"""The published EAT forward, transcribed step by step: the oracle and the baseline.

This is a deliberately literal, unoptimised rendering of the computation the
published code performs (docs: EAT-MODEL.md), kept apart from
:mod:`eat_curate.model.eat` so that each checks the other:

- tests load one state dict into both and compare outputs;
- ``eat-curate bench model`` times it as the baseline that our network must beat.

It keeps the published behaviour on purpose: feature maps in (B, C, H, W)
with a layout change around every norm and MLP, interest points averaged
over the batch, and the steering weights computed on the host with NumPy.
Its state dict uses the published key names, derived buffers included.
It is never used to score images.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from eat_curate.model.presets import EATPreset, get_preset


class _NormProxy(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, H, W)
        return self.norm(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


class _MLP(nn.Module):
    def __init__(self, dim: int, ratio: int) -> None:
        super().__init__()
        self.chunk = nn.Sequential()
        self.chunk.add_module("linear1", nn.Linear(dim, dim * ratio))
        self.chunk.add_module("act", nn.GELU())
        self.chunk.add_module("linear2", nn.Linear(dim * ratio, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, C, H, W = x.shape
        tokens = x.flatten(2).transpose(1, 2)
        return self.chunk(tokens).transpose(1, 2).reshape(B, C, H, W)


class _Local(nn.Module):
    def __init__(self, dim: int, heads: int, window: int, size: int, shift: int) -> None:
        super().__init__()
        self.heads, self.window, self.shift = heads, window, shift
        self.proj_qkv = nn.Linear(dim, 3 * dim)
        self.proj_out = nn.Linear(dim, dim)
        self.relative_position_bias_table = nn.Parameter(torch.zeros((2 * window - 1) ** 2, heads))
        ys, xs = torch.meshgrid(torch.arange(window), torch.arange(window), indexing="ij")
        flat = torch.stack([ys.flatten(), xs.flatten()])  # 2, N
        rel = (flat[:, :, None] - flat[:, None, :]).permute(1, 2, 0) + (window - 1)
        self.register_buffer("relative_position_index", rel[..., 0] * (2 * window - 1) + rel[..., 1])
        if shift:
            label = torch.zeros(size, size)
            cuts = (slice(0, -window), slice(-window, -shift), slice(-shift, None))
            n = 0
            for a in cuts:
                for b in cuts:
                    label[a, b] = n
                    n += 1
            r = size // window
            win = label.view(r, window, r, window).permute(0, 2, 1, 3).reshape(r * r, window * window)
            diff = win.unsqueeze(1) - win.unsqueeze(2)
            self.register_buffer("attn_mask", diff.masked_fill(diff != 0, -100.0).masked_fill(diff == 0, 0.0))
        else:
            self.attn_mask = None

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, None, None]:
        if self.shift:
            x = torch.roll(x, (-self.shift, -self.shift), (2, 3))
        B, C, H, W = x.shape
        w, h = self.window, self.heads
        r1, r2 = H // w, W // w
        t = x.view(B, C, r1, w, r2, w).permute(0, 2, 4, 3, 5, 1).reshape(B * r1 * r2, w * w, C)
        q, k, v = self.proj_qkv(t).chunk(3, dim=2)
        q = q * (C // h) ** -0.5
        q, k, v = (z.reshape(z.shape[0], w * w, h, C // h).transpose(1, 2) for z in (q, k, v))
        attn = torch.einsum("bhmc,bhnc->bhmn", q, k)
        bias = self.relative_position_bias_table[self.relative_position_index.view(-1)]
        attn = attn + bias.view(w * w, w * w, h).permute(2, 0, 1).unsqueeze(0)
        if self.attn_mask is not None:
            nw = self.attn_mask.shape[0]
            attn = (attn.view(B, nw, h, w * w, w * w) + self.attn_mask.view(1, nw, 1, w * w, w * w)).view_as(attn)
        out = torch.einsum("bhmn,bhnc->bhmc", attn.softmax(dim=3), v).transpose(1, 2).reshape(-1, w * w, C)
        out = self.proj_out(out)
        out = out.view(B, r1, r2, w, w, C).permute(0, 5, 1, 3, 2, 4).reshape(B, C, H, W)
        if self.shift:
            out = torch.roll(out, (self.shift, self.shift), (2, 3))
        return out, None, None


class _Deformable(nn.Module):
    def __init__(self, dim: int, heads: int, groups: int, size: int, kernel: int, factor: float) -> None:
        super().__init__()
        self.heads, self.groups, self.factor = heads, groups, factor
        cg = dim // groups
        self.conv_offset = nn.Sequential(
            nn.Conv2d(cg, cg, kernel, 1, kernel // 2, groups=cg), _NormProxy(cg), nn.GELU(), nn.Conv2d(cg, 2, 1, bias=False)
        )
        self.proj_q = nn.Conv2d(dim, dim, 1)
        self.proj_k = nn.Conv2d(dim, dim, 1)
        self.proj_v = nn.Conv2d(dim, dim, 1)
        self.proj_out = nn.Conv2d(dim, dim, 1)
        self.ref_point14 = nn.Conv2d(dim, 2, 1)
        self.rpe_table = nn.Parameter(torch.zeros(heads, 2 * size - 1, 2 * size - 1))
        self.toward, self.away = 1.0, 0.25

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        B, C, H, W = x.shape
        g, h = self.groups, self.heads
        cg, hc = C // g, C // h
        q = self.proj_q(x)
        offset = self.conv_offset(q.reshape(B * g, cg, H, W))
        offset = offset.tanh() * torch.tensor([1.0 / H, 1.0 / W]).view(1, 2, 1, 1).to(x) * self.factor
        offset = offset.permute(0, 2, 3, 1)  # (B*g, H, W, 2)
        # Published quirk: interest points averaged over the whole batch.
        ref = self.ref_point14(x).mean(dim=0, keepdim=True).permute(0, 2, 3, 1).tanh()
        ref = ref.expand(B * g, -1, -1, -1)
        # Published quirk: steering weights computed on the host with NumPy.
        o, r = offset.detach().cpu().numpy(), ref.detach().cpu().numpy()
        same = (o[..., 0] * r[..., 0] > 0) & (o[..., 1] * r[..., 1] > 0)
        weight = np.where(same, self.toward, self.away)[..., None].astype(np.float32)
        offset = offset * torch.from_numpy(np.concatenate([weight, weight], axis=3)).to(x.device)
        pos = offset + ref
        sampled = F.grid_sample(x.reshape(B * g, cg, H, W), pos[..., (1, 0)], mode="bilinear", align_corners=True)
        sampled = sampled.reshape(B, C, 1, H * W)
        qh = q.reshape(B * h, hc, H * W)
        k = self.proj_k(sampled).reshape(B * h, hc, H * W)
        v = self.proj_v(sampled).reshape(B * h, hc, H * W)
        attn = torch.einsum("bcm,bcn->bmn", qh, k) * hc**-0.5
        ys = (torch.arange(H, dtype=x.dtype) + 0.5) / H * 2 - 1
        xs = (torch.arange(W, dtype=x.dtype) + 0.5) / W * 2 - 1
        grid = torch.stack(torch.meshgrid(ys, xs, indexing="ij"), -1).to(x.device)
        grid = grid.reshape(1, H * W, 1, 2).expand(B * g, -1, -1, -1)
        disp = (grid - pos.reshape(B * g, 1, H * W, 2)) * 0.5
        table = self.rpe_table[None].expand(B, -1, -1, -1).reshape(B * g, h // g, 2 * H - 1, 2 * W - 1)
        bias = F.grid_sample(table, disp[..., (1, 0)], mode="bilinear", align_corners=True)
        attn = (attn + bias.reshape(B * h, H * W, H * W)).softmax(dim=2)
        out = torch.einsum("bmn,bcn->bcm", attn, v).reshape(B, C, H, W)
        return self.proj_out(out), pos.reshape(B, g, H, W, 2), ref.reshape(B, g, H, W, 2)


class _Stage(nn.Module):
    def __init__(self, p: EATPreset, i: int) -> None:
        super().__init__()
        dim, size, spec = p.dims[i], p.feature_sizes[i], p.stage_specs[i]
        self.layer_norms = nn.ModuleList(_NormProxy(dim) for _ in range(2 * len(spec)))
        self.mlps = nn.ModuleList(_MLP(dim, p.mlp_ratio) for _ in spec)
        self.attns = nn.ModuleList()
        for kind in spec:
            if kind == "D":
                self.attns.append(
                    _Deformable(dim, p.heads[i], p.groups[i], size, p.offset_kernel_sizes[i], p.offset_range_factor)
                )
            else:
                shift = math.ceil(p.window_size / 2) if kind == "S" else 0
                self.attns.append(_Local(dim, p.heads[i], p.window_size, size, shift))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for j in range(len(self.attns)):
            x = x + self.attns[j](self.layer_norms[2 * j](x))[0]
            x = x + self.mlps[j](self.layer_norms[2 * j + 1](x))
        return x


class PublishedEAT(nn.Module):
    """The published network's forward (inference only), returning the raw head outputs."""

    def __init__(self, preset: EATPreset | str = "tiny") -> None:
        super().__init__()
        p = get_preset(preset) if isinstance(preset, str) else preset
        self.patch_proj = nn.Sequential(nn.Conv2d(3, p.dims[0], p.patch_size, p.patch_size), _NormProxy(p.dims[0]))
        self.stages = nn.ModuleList(_Stage(p, i) for i in range(4))
        self.down_projs = nn.ModuleList(
            nn.Sequential(nn.Conv2d(p.dims[i], p.dims[i + 1], 2, 2, bias=False), _NormProxy(p.dims[i + 1]))
            for i in range(3)
        )
        self.cls_norm = _NormProxy(p.dims[3])
        self.cls_head = nn.Linear(p.dims[3], p.num_bins)

    def set_steering(self, toward: float, away: float) -> None:
        for m in self.modules():
            if isinstance(m, _Deformable):
                m.toward, m.away = toward, away

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.patch_proj(x)
        for i in range(4):
            x = self.stages[i](x)
            if i < 3:
                x = self.down_projs[i](x)
        x = F.adaptive_avg_pool2d(self.cls_norm(x), 1).flatten(1)
        return self.cls_head(x)
