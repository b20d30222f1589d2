"""PyTorch CPU reference for sampling throughput: DPM-Solver++(2M), 10 steps, with the MLP
score network of mlp_dsm.py (2 -> 256 -> 256 -> 256 -> 2, SiLU, 64-wide sinusoidal time
embedding), epsilon prediction under the VP-linear process, log-SNR-uniform grid from t = 1 to
t = 1e-3, batch 16384 by default. Mirrors the `sampling` group of `distill bench`.

Weights are PyTorch's default initialization: throughput does not depend on them.
"""
import argparse
import json
import math
import statistics
import time

import torch
from torch import nn

BETA0, BETA1 = 0.1, 20.0


def log_alpha(t):
    return -0.25 * t * t * (BETA1 - BETA0) - 0.5 * t * BETA0


def alpha_sigma_lambda(t):
    la = log_alpha(t)
    a = math.exp(la)
    s = math.sqrt(-math.expm1(2 * la))
    return a, s, math.log(a) - math.log(s)


def time_for_lambda(lam):
    c = 0.5 * math.log1p(math.exp(-2 * lam))
    qa, qb = 0.25 * (BETA1 - BETA0), 0.5 * BETA0
    return (-qb + math.sqrt(qb * qb + 4 * qa * c)) / (2 * qa)


class MLPScore(nn.Module):
    def __init__(self):
        super().__init__()
        k = torch.arange(32, dtype=torch.float32)
        self.register_buffer("freqs", 1000.0 * torch.exp(-math.log(10000.0) * k / 32))
        self.net = nn.Sequential(nn.Linear(66, 256), nn.SiLU(), nn.Linear(256, 256), nn.SiLU(),
                                 nn.Linear(256, 256), nn.SiLU(), nn.Linear(256, 2))

    def forward(self, x, t):
        a = t[:, None] * self.freqs[None, :]
        return self.net(torch.cat([x, torch.sin(a), torch.cos(a)], dim=1))


@torch.no_grad()
def sample(model, x, steps):
    la, lb = alpha_sigma_lambda(1.0)[2], alpha_sigma_lambda(1e-3)[2]
    times = [1.0] + [time_for_lambda(la + (lb - la) * i / steps) for i in range(1, steps)] + [1e-3]
    prev = None
    for i in range(steps):
        t, tn = times[i], times[i + 1]
        a, s, lam = alpha_sigma_lambda(t)
        an, sn, lamn = alpha_sigma_lambda(tn)
        eps = model(x, torch.full((x.shape[0],), t))
        d = (x - s * eps) / a
        h = lamn - lam
        phi = math.expm1(-h)
        if prev is None or i == steps - 1:
            x = (sn / s) * x - an * phi * d
        else:
            r = (lam - prev[0]) / h
            x = (sn / s) * x - an * phi * ((1 + 1 / (2 * r)) * d - (1 / (2 * r)) * prev[1])
        prev = (lam, d)
    return x


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--batch", type=int, default=16384)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--iters", type=int, default=10)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.set_num_interop_threads(1)
    torch.manual_seed(0)
    model = MLPScore().eval()
    x = torch.randn(args.batch, 2) * alpha_sigma_lambda(1.0)[1]
    for _ in range(args.warmup):
        sample(model, x, args.steps)
    times = []
    for _ in range(args.iters):
        t0 = time.perf_counter()
        sample(model, x, args.steps)
        times.append(time.perf_counter() - t0)
    med = statistics.median(times)
    out = {"name": "pytorch_mlp_dpmpp2m_sampling", "batch": args.batch, "steps": args.steps, "threads": args.threads,
           "median_ms": med * 1e3, "samples_per_second": args.batch / med, "iters": args.iters,
           "torch_version": torch.__version__}
    print(json.dumps(out) if args.json else f"{args.batch / med:.0f} samples/s ({med * 1e3:.2f} ms per batch)")


if __name__ == "__main__":
    main()
