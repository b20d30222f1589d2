#!/usr/bin/env python3
"""PyTorch CPU reference timing for one denoising-score-matching (DSM) training step.

What is measured
----------------
The wall-clock time of a single, complete training step of a small MLP score
network on 2-D data, under a VP-linear noise schedule. Each timed step contains:

  1. sampling t ~ U(1e-3, 1) with shape (B,) and eps ~ N(0, I) with shape (B, 2);
  2. the schedule: alpha = exp(-0.25 t^2 (beta1 - beta0) - 0.5 t beta0),
     sigma = sqrt(1 - alpha^2), beta0 = 0.1, beta1 = 20;
  3. the noisy input xt = alpha * x0 + sigma * eps;
  4. the forward pass pred = model(xt, t) and loss = mean((pred - eps)^2);
  5. zero_grad(set_to_none=True), loss.backward() and an AdamW step
     (lr 1e-3, weight decay 0.01; fused kernel when this torch offers it on CPU).

The model: a 64-wide sinusoidal time embedding (frequencies 1000 * 10000^(-k/32),
k = 0..31, a fixed buffer; sin half then cos half) concatenated after x, giving 66
features, followed by Linear(66,256)+SiLU, Linear(256,256)+SiLU,
Linear(256,256)+SiLU, Linear(256,2), all with PyTorch's default initialisation.

The data batch x0 (B, 2) is drawn once, before timing: 8 Gaussians (std 0.05)
centred on a circle of radius 2. Its content does not affect the timing.

Each step is timed on its own with time.perf_counter after a warm-up; the script
reports the median and the 10th/90th percentiles in milliseconds.

This mirrors the MLP DSM benchmark of the Swift `distill bench` command, which
implements the same model, schedule, loss and optimiser, so the two numbers can
be compared directly (same batch size, same thread count).

Usage:
    python3 mlp_dsm.py --batch 4096 --threads 2
    python3 mlp_dsm.py --batch 256 --threads 2 --json
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time

import numpy as np
import torch
from torch import nn

BETA0 = 0.1
BETA1 = 20.0
T_MIN = 1e-3
EMB_DIM = 64
HIDDEN = 256


class SinusoidalTimeEmbedding(nn.Module):
    """t (B,) -> [sin(t f), cos(t f)] (B, 64) with f_k = 1000 * 10000^(-k/32)."""

    def __init__(self, dim: int = EMB_DIM) -> None:
        super().__init__()
        half = dim // 2
        k = torch.arange(half, dtype=torch.float32)
        freqs = 1000.0 * torch.pow(torch.tensor(10000.0), -k / half)
        self.register_buffer("freqs", freqs, persistent=False)

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        angles = t[:, None] * self.freqs[None, :]
        return torch.cat([torch.sin(angles), torch.cos(angles)], dim=1)


class MLPScoreNet(nn.Module):
    """x (B, 2), t (B,) -> predicted noise (B, 2)."""

    def __init__(self, data_dim: int = 2, hidden: int = HIDDEN) -> None:
        super().__init__()
        self.embed = SinusoidalTimeEmbedding(EMB_DIM)
        self.net = nn.Sequential(
            nn.Linear(data_dim + EMB_DIM, hidden),
            nn.SiLU(),
            nn.Linear(hidden, hidden),
            nn.SiLU(),
            nn.Linear(hidden, hidden),
            nn.SiLU(),
            nn.Linear(hidden, data_dim),
        )

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        h0 = torch.cat([x, self.embed(t)], dim=1)
        return self.net(h0)


def eight_gaussians(batch: int, generator: torch.Generator) -> torch.Tensor:
    """Fixed data batch: 8 Gaussian blobs (std 0.05) on a circle of radius 2."""
    angles = torch.arange(8, dtype=torch.float32) * (2.0 * math.pi / 8.0)
    centres = 2.0 * torch.stack([torch.cos(angles), torch.sin(angles)], dim=1)
    which = torch.randint(0, 8, (batch,), generator=generator)
    noise = torch.randn(batch, 2, generator=generator)
    return centres[which] + 0.05 * noise


def make_adamw(params) -> tuple[torch.optim.Optimizer, bool]:
    """AdamW(lr=1e-3, wd=0.01), fused if this torch supports fused AdamW on CPU.

    Support is probed on a throw-away parameter (construction and one step), so a
    build that accepts the flag but fails at step time also falls back cleanly.
    """
    params = list(params)
    try:
        probe = nn.Parameter(torch.zeros(4))
        probe.grad = torch.ones(4)
        probe_opt = torch.optim.AdamW([probe], lr=1e-3, weight_decay=0.01, fused=True)
        probe_opt.step()
        return torch.optim.AdamW(params, lr=1e-3, weight_decay=0.01, fused=True), True
    except (RuntimeError, TypeError, ValueError, NotImplementedError):
        return torch.optim.AdamW(params, lr=1e-3, weight_decay=0.01), False


def vp_linear(t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    log_alpha = -0.25 * t * t * (BETA1 - BETA0) - 0.5 * t * BETA0
    alpha = torch.exp(log_alpha)
    sigma = torch.sqrt(1.0 - alpha * alpha)
    return alpha, sigma


def train_step(model: nn.Module, opt: torch.optim.Optimizer, x0: torch.Tensor) -> torch.Tensor:
    batch = x0.shape[0]
    t = torch.rand(batch) * (1.0 - T_MIN) + T_MIN
    eps = torch.randn(batch, 2)
    alpha, sigma = vp_linear(t)
    xt = alpha[:, None] * x0 + sigma[:, None] * eps
    pred = model(xt, t)
    loss = torch.mean((pred - eps) ** 2)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return loss


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--batch", type=int, default=4096, help="batch size B (default 4096)")
    p.add_argument("--threads", type=int, default=2, help="intra-op threads (default 2)")
    p.add_argument("--warmup", type=int, default=20, help="untimed warm-up steps (default 20)")
    p.add_argument("--iters", type=int, default=50, help="timed steps (default 50)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--json", action="store_true", help="print one JSON object on one line")
    args = p.parse_args(argv)
    if args.batch < 1 or args.threads < 1 or args.iters < 1 or args.warmup < 0:
        p.error("--batch, --threads and --iters must be >= 1; --warmup must be >= 0")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)

    # Inter-op threads must be set before any parallel work starts.
    torch.set_num_interop_threads(1)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)

    data_gen = torch.Generator().manual_seed(args.seed + 1)
    x0 = eight_gaussians(args.batch, data_gen)

    model = MLPScoreNet()
    model.train()
    opt, fused = make_adamw(model.parameters())

    for _ in range(args.warmup):
        train_step(model, opt, x0)

    times_ms = np.empty(args.iters, dtype=np.float64)
    loss = None
    for i in range(args.iters):
        start = time.perf_counter()
        loss = train_step(model, opt, x0)
        times_ms[i] = (time.perf_counter() - start) * 1e3

    result = {
        "name": "pytorch_mlp_dsm_step",
        "batch": args.batch,
        "threads": torch.get_num_threads(),
        "median_ms": float(np.median(times_ms)),
        "p10_ms": float(np.percentile(times_ms, 10)),
        "p90_ms": float(np.percentile(times_ms, 90)),
        "iters": args.iters,
        "torch_version": torch.__version__,
        "adamw_fused": fused,
    }

    if args.json:
        sys.stdout.write(json.dumps(result) + "\n")
    else:
        print(
            f"pytorch_mlp_dsm_step batch={result['batch']} threads={result['threads']} "
            f"median={result['median_ms']:.3f} ms p10={result['p10_ms']:.3f} ms "
            f"p90={result['p90_ms']:.3f} ms iters={result['iters']} "
            f"torch={result['torch_version']} adamw_fused={fused} "
            f"final_loss={loss.item():.4f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
