#!/usr/bin/env python3
"""PyTorch CPU reference timing for one U-Net denoising-score-matching training step.

What is measured
----------------
The wall-clock time and the memory of one complete training step of an ADM-style
diffusion U-Net (Ho et al. 2020; Dhariwal & Nichol 2021) on a batch of images, under the
VP-linear noise schedule. Each timed step contains:

  1. sampling t ~ U(1e-3, 1) with shape (B,) and eps ~ N(0, I) of the images' shape;
  2. the schedule alpha = exp(-0.25 t^2 (beta1 - beta0) - 0.5 t beta0),
     sigma = sqrt(1 - alpha^2), beta0 = 0.1, beta1 = 20;
  3. xt = alpha * x0 + sigma * eps, pred = unet(xt, t), loss = mean((pred - eps)^2);
  4. zero_grad(set_to_none=True), loss.backward(), and an AdamW step (lr 1e-3, weight
     decay 0.01; the fused kernel when this torch offers it on CPU).

The architecture (identical to Distill's `UNet` with `UNet.Configuration` below; the
parameter count is reported so the two can be compared):

  configuration  image  base  multipliers  blocks/level  attention at  heads  groups
  mnist          28x28  32    [1, 2, 2]    2             7x7 + middle  4      8     (1,742,881 parameters)
  digits         8x8    32    [1, 2]       2             4x4 + middle  4      8     (1,080,161 parameters)

  - time features: sinusoidal, width = base, [sin(1000 t f_k), cos(1000 t f_k)],
    f_k = 10000^(-k/(base/2)); then Linear(base, E) + SiLU, Linear(E, E), E = 4 base;
    every residual block receives SiLU(emb);
  - input: Conv 3x3 (pad 1), 1 -> base channels;
  - ResBlock(cin -> cout): h = Conv3x3(SiLU(GN(x))); (s, b) = Linear(E, 2 cout)(SiLU(emb));
    h = Conv3x3(SiLU(GN(h) * (1 + s) + b)) [this conv zero-initialised];
    out = h + (x if cin == cout else Conv1x1(x));
  - AttentionBlock(C): qkv = Conv1x1(GN(x)) (C -> 3C), channels split [q | k | v], each
    [head 0 | head 1 | ...]; scaled dot-product attention over the H*W tokens with
    scale 1/sqrt(C/heads); out = x + Conv1x1(o) [zero-initialised];
  - down path: per level, `blocks` x [ResBlock -> base*mult, AttentionBlock if the level's
    resolution is listed], then (not after the last level) Downsample = Conv 3x3 stride 2
    pad 1; every block output (and the input conv's) is kept as a skip;
  - middle: ResBlock, AttentionBlock, ResBlock;
  - up path: per level from the last, (blocks + 1) x [concat(h, skip) on channels,
    ResBlock -> base*mult, AttentionBlock if listed], then (not at level 0) Upsample =
    nearest 2x + Conv 3x3;
  - output: GN + SiLU, Conv 3x3 (pad 1) base -> 1 channel, zero-initialised.
  GroupNorm eps 1e-5; PyTorch's default initialisation elsewhere.

The data batch x0 is drawn once before timing (uniform in [-1, 1]); its content does not
affect the timing. Each step is timed on its own with time.perf_counter after a warm-up;
the script reports the median and the 10th/90th percentiles in milliseconds.

Memory (two figures, both over the warm-up and the timed steps, relative to the state
right before the first step, when the model, the data batch and nothing else exist):
  - peak_tensor_bytes: the peak of the bytes held by live tensor storages (activations
    saved for backward, gradients, optimizer state, temporaries), tracked exactly with a
    TorchDispatchMode that records every storage an operator creates and drops it when it
    is freed; measured in separate untimed steps (the tracking slows the step down);
    this is the same quantity as Distill's `Runtime.peakTensorBytes` minus the live bytes
    before the step.
  - peak_rss_delta_bytes: the process's peak resident set size (VmHWM, reset through
    /proc/self/clear_refs just before the first step) minus its resident size at that
    moment: what the step really cost the process, allocator caches and thread stacks
    included (measured over the timed run, without the tracking mode).

Usage:
    python3 unet_step.py --config mnist --batch 64 --threads 2
    python3 unet_step.py --config digits --batch 64 --threads 2 --json
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

BETA0 = 0.1
BETA1 = 20.0
T_MIN = 1e-3

CONFIGS = {
    "mnist": dict(image=28, base=32, mults=[1, 2, 2], blocks=2, attention=[7], heads=4, groups=8),
    "digits": dict(image=8, base=32, mults=[1, 2], blocks=2, attention=[4], heads=4, groups=8),
}


class SinusoidalEmbedding(nn.Module):
    """t (B,) -> [sin(s t f), cos(s t f)] with f_k = 10000^(-k/h), h = dim/2, s = 1000."""

    def __init__(self, dim: int, scale: float = 1000.0) -> None:
        super().__init__()
        h = dim // 2
        k = torch.arange(h, dtype=torch.float64)
        freqs = (scale * torch.exp(-math.log(10000.0) * k / h)).float()
        self.register_buffer("freqs", freqs, persistent=False)

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        a = t[:, None] * self.freqs[None, :]
        return torch.cat([torch.sin(a), torch.cos(a)], dim=1)


def zero(m: nn.Module) -> nn.Module:
    for p in m.parameters():
        nn.init.zeros_(p)
    return m


class ResBlock(nn.Module):
    def __init__(self, cin: int, cout: int, emb: int, groups: int) -> None:
        super().__init__()
        self.norm1 = nn.GroupNorm(groups, cin)
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.emb = nn.Linear(emb, 2 * cout)
        self.norm2 = nn.GroupNorm(groups, cout)
        self.conv2 = zero(nn.Conv2d(cout, cout, 3, padding=1))
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else None

    def forward(self, x: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        scale, shift = self.emb(e)[:, :, None, None].chunk(2, dim=1)
        h = self.conv2(F.silu(self.norm2(h) * (1 + scale) + shift))
        return (x if self.skip is None else self.skip(x)) + h


class AttentionBlock(nn.Module):
    def __init__(self, channels: int, heads: int, groups: int) -> None:
        super().__init__()
        self.norm = nn.GroupNorm(groups, channels)
        self.qkv = nn.Conv2d(channels, 3 * channels, 1)
        self.proj = zero(nn.Conv2d(channels, channels, 1))
        self.heads = heads

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        d = c // self.heads
        qkv = self.qkv(self.norm(x)).reshape(n, 3, self.heads, d, h * w).permute(1, 0, 2, 4, 3)
        o = F.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2])   # scale 1/sqrt(d)
        return x + self.proj(o.permute(0, 1, 3, 2).reshape(n, c, h, w))


class UNet(nn.Module):
    def __init__(self, image: int, base: int, mults: list[int], blocks: int, attention: list[int], heads: int,
                 groups: int) -> None:
        super().__init__()
        e = 4 * base
        self.time = SinusoidalEmbedding(base)
        self.time_mlp = nn.Sequential(nn.Linear(base, e), nn.SiLU(), nn.Linear(e, e))
        self.input = nn.Conv2d(1, base, 3, padding=1)
        res = [image >> i for i in range(len(mults))]
        skips, ch = [base], base
        self.down = nn.ModuleList()
        for level, m in enumerate(mults):
            for _ in range(blocks):
                block = nn.ModuleList([ResBlock(ch, base * m, e, groups)])
                ch = base * m
                if res[level] in attention:
                    block.append(AttentionBlock(ch, heads, groups))
                self.down.append(block)
                skips.append(ch)
            if level != len(mults) - 1:
                self.down.append(nn.ModuleList([nn.Conv2d(ch, ch, 3, stride=2, padding=1)]))
                skips.append(ch)
        self.mid1 = ResBlock(ch, ch, e, groups)
        self.mid_attn = AttentionBlock(ch, heads, groups)
        self.mid2 = ResBlock(ch, ch, e, groups)
        self.up = nn.ModuleList()
        for level, m in reversed(list(enumerate(mults))):
            for i in range(blocks + 1):
                block = nn.ModuleList([ResBlock(ch + skips.pop(), base * m, e, groups)])
                ch = base * m
                if res[level] in attention:
                    block.append(AttentionBlock(ch, heads, groups))
                if level > 0 and i == blocks:
                    block.append(nn.Conv2d(ch, ch, 3, padding=1))   # the upsampler's conv
                self.up.append(block)
        self.out_norm = nn.GroupNorm(groups, ch)
        self.out = zero(nn.Conv2d(ch, 1, 3, padding=1))

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        e = F.silu(self.time_mlp(self.time(t)))
        h = self.input(x)
        hs = [h]
        for block in self.down:
            if isinstance(block[0], ResBlock):
                h = block[0](h, e)
                if len(block) > 1:
                    h = block[1](h)
            else:
                h = block[0](h)
            hs.append(h)
        h = self.mid2(self.mid_attn(self.mid1(h, e)), e)
        for block in self.up:
            h = block[0](torch.cat([h, hs.pop()], dim=1), e)
            for layer in block[1:]:
                if isinstance(layer, AttentionBlock):
                    h = layer(h)
                else:
                    h = layer(F.interpolate(h, scale_factor=2, mode="nearest"))
        return self.out(F.silu(self.out_norm(h)))


def make_adamw(params) -> tuple[torch.optim.Optimizer, bool]:
    """AdamW(lr=1e-3, wd=0.01), fused if this torch supports fused AdamW on CPU."""
    params = list(params)
    try:
        probe = nn.Parameter(torch.zeros(4))
        probe.grad = torch.ones(4)
        torch.optim.AdamW([probe], lr=1e-3, weight_decay=0.01, fused=True).step()
        return torch.optim.AdamW(params, lr=1e-3, weight_decay=0.01, fused=True), True
    except (RuntimeError, TypeError, ValueError, NotImplementedError):
        return torch.optim.AdamW(params, lr=1e-3, weight_decay=0.01), False


def train_step(model: nn.Module, opt: torch.optim.Optimizer, x0: torch.Tensor) -> torch.Tensor:
    batch = x0.shape[0]
    t = torch.rand(batch) * (1.0 - T_MIN) + T_MIN
    eps = torch.randn_like(x0)
    log_alpha = -0.25 * t * t * (BETA1 - BETA0) - 0.5 * t * BETA0
    alpha = torch.exp(log_alpha)
    sigma = torch.sqrt(1.0 - alpha * alpha)
    xt = alpha[:, None, None, None] * x0 + sigma[:, None, None, None] * eps
    loss = torch.mean((model(xt, t) - eps) ** 2)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return loss


class TensorMemoryTracker:
    """Peak bytes of live tensor storages, through a dispatch mode that sees every operator
    (forward, autograd's backward on this thread, the optimizer)."""

    def __init__(self) -> None:
        from torch.multiprocessing.reductions import StorageWeakRef
        from torch.utils._python_dispatch import TorchDispatchMode

        tracker = self
        self.live: dict[int, tuple[object, int]] = {}
        self.current = 0
        self.peak = 0

        def sweep() -> None:
            dead = [k for k, (ref, _) in tracker.live.items() if ref.expired()]
            for k in dead:
                tracker.current -= tracker.live.pop(k)[1]

        def note(t) -> None:
            if isinstance(t, torch.Tensor):
                s = t.untyped_storage()
                key = s.data_ptr()
                if key and key not in tracker.live:
                    tracker.live[key] = (StorageWeakRef(s), s.nbytes())
                    tracker.current += s.nbytes()
                    tracker.peak = max(tracker.peak, tracker.current)

        class Mode(TorchDispatchMode):
            def __torch_dispatch__(self, func, types, args=(), kwargs=None):
                sweep()
                out = func(*args, **(kwargs or {}))
                for t in (out if isinstance(out, (tuple, list)) else [out]):
                    note(t)
                return out

        self.mode = Mode()
        self.note = note
        self.sweep = sweep

    def baseline(self, tensors) -> None:
        for t in tensors:
            self.note(t)
        self.peak = self.current


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096


def hwm_bytes() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return 0


def reset_hwm() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--config", choices=sorted(CONFIGS), default="mnist", help="architecture (default mnist)")
    p.add_argument("--batch", type=int, default=64, help="batch size B (default 64)")
    p.add_argument("--threads", type=int, default=2, help="intra-op threads (default 2)")
    p.add_argument("--warmup", type=int, default=3, help="untimed warm-up steps (default 3)")
    p.add_argument("--iters", type=int, default=10, help="timed steps (default 10)")
    p.add_argument("--memory-steps", type=int, default=2, help="steps under the tensor-memory tracker (default 2; 0 skips)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--json", action="store_true", help="print one JSON object on one line")
    args = p.parse_args(argv)
    if args.batch < 1 or args.threads < 1 or args.iters < 1 or args.warmup < 0 or args.memory_steps < 0:
        p.error("--batch, --threads and --iters must be >= 1; --warmup and --memory-steps must be >= 0")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    torch.set_num_interop_threads(1)
    torch.set_num_threads(args.threads)
    cfg = CONFIGS[args.config]

    def build():
        torch.manual_seed(args.seed)
        model = UNet(**cfg)
        model.train()
        opt, fused = make_adamw(model.parameters())
        gen = torch.Generator().manual_seed(args.seed + 1)
        x0 = torch.rand(args.batch, 1, cfg["image"], cfg["image"], generator=gen) * 2 - 1
        return model, opt, fused, x0

    model, opt, fused, x0 = build()
    params = sum(p.numel() for p in model.parameters())
    # Peak RSS over the warm-up and timed steps, from the state right before the first step.
    rss0 = rss_bytes()
    hwm_ok = reset_hwm()
    for _ in range(args.warmup):
        train_step(model, opt, x0)
    times_ms = np.empty(args.iters, dtype=np.float64)
    loss = None
    for i in range(args.iters):
        start = time.perf_counter()
        loss = train_step(model, opt, x0)
        times_ms[i] = (time.perf_counter() - start) * 1e3
    rss_delta = hwm_bytes() - rss0 if hwm_ok else None
    final_loss = loss.item()
    del model, opt, x0

    # Exact tensor memory, afterwards (so the RSS figure starts from a fresh heap), in its own
    # model instance and untimed steps.
    peak_tensor = None
    if args.memory_steps > 0:
        model, opt, _, x0 = build()
        tracker = TensorMemoryTracker()
        tracker.baseline(list(model.parameters()) + list(model.buffers()) + [x0])
        before = tracker.current
        with tracker.mode:
            for _ in range(args.memory_steps):
                train_step(model, opt, x0)
        peak_tensor = tracker.peak - before
        del model, opt, x0, tracker


    result = {
        "name": "pytorch_unet_step",
        "config": args.config,
        "batch": args.batch,
        "threads": torch.get_num_threads(),
        "parameters": params,
        "median_ms": float(np.median(times_ms)),
        "p10_ms": float(np.percentile(times_ms, 10)),
        "p90_ms": float(np.percentile(times_ms, 90)),
        "iters": args.iters,
        "peak_tensor_bytes": peak_tensor,
        "peak_rss_delta_bytes": rss_delta,
        "torch_version": torch.__version__,
        "adamw_fused": fused,
    }
    if args.json:
        sys.stdout.write(json.dumps(result) + "\n")
    else:
        mb = lambda b: "n/a" if b is None else f"{b / 2**20:.1f} MiB"
        print(f"pytorch_unet_step config={args.config} batch={args.batch} threads={result['threads']} "
              f"params={params} median={result['median_ms']:.2f} ms p10={result['p10_ms']:.2f} ms "
              f"p90={result['p90_ms']:.2f} ms peak tensors={mb(peak_tensor)} peak RSS delta={mb(rss_delta)} "
              f"torch={result['torch_version']} adamw_fused={fused} final_loss={final_loss:.4f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
