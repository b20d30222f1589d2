#!/usr/bin/env python3
"""Write tiny, randomly initialized diffusers pipeline folders and the outputs diffusers
computes for them: the fixtures of Tests/DistillTests/DiffusersUNetTests.swift.

    python3 scripts/diffusers-fixtures.py [--out Tests/DistillTests/Fixtures/diffusers]

Every folder is what `DiffusionPipeline.save_pretrained` writes (model_index.json,
unet/config.json, unet/diffusion_pytorch_model.safetensors, scheduler/scheduler_config.json)
plus `reference.safetensors`, which holds (all float32):

    sample        (2, C, 8, 8)    the network input, drawn once per fixture
    timesteps     (K, 2)          per row of the batch, for each of the K evaluations
    class_labels  (2,)            only for class-conditional fixtures (integers stored as floats)
    output        (K, 2, C, 8, 8) UNet2DModel(sample, timesteps[k], class_labels).sample

The weights are PyTorch's default initialization (seeded) with every GroupNorm scale and
every bias moved away from its 1 / 0 default, so a loader that swaps or drops any of them
fails. Folders whose weights are stored in float16 or bfloat16 carry outputs computed in
float32 from the rounded weights, so the comparison measures the network, not the rounding.

Requirements: torch (CPU) and diffusers (written with diffusers 0.42.1, torch 2.13.0).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil

import torch
from diffusers import DDIMPipeline, DDIMScheduler, DDPMPipeline, DDPMScheduler, UNet2DModel
from safetensors.torch import save_file

# Each evaluation gives both rows one timestep, except the last (a different one per row).
# 123.5 checks that fractional timesteps go through the sinusoidal embedding unrounded.
TIMESTEPS = [[999.0, 999.0], [500.0, 500.0], [10.0, 10.0], [123.5, 123.5], [999.0, 0.0]]

COMMON = dict(sample_size=8, attention_head_dim=4)

# name -> (seed, UNet2DModel arguments, scheduler kind, stored dtype)
FIXTURES = {
    # (a) residual blocks only, 3 channels, two layers per block, input centering.
    "plain": (1, dict(in_channels=3, out_channels=3, block_out_channels=(4, 8), norm_num_groups=2, layers_per_block=2,
                      down_block_types=("DownBlock2D", "DownBlock2D"), up_block_types=("UpBlock2D", "UpBlock2D"),
                      add_attention=False, center_input_sample=True), "ddpm", torch.float32),
    # (b) attention blocks at the two lower levels and in the middle; the middle attention's
    # GroupNorm has its own group count; a mid-block scale factor and a custom embedding width.
    "attention": (2, dict(in_channels=1, out_channels=1, block_out_channels=(4, 8, 8), norm_num_groups=2, layers_per_block=1,
                          down_block_types=("DownBlock2D", "AttnDownBlock2D", "AttnDownBlock2D"),
                          up_block_types=("AttnUpBlock2D", "AttnUpBlock2D", "UpBlock2D"),
                          attn_norm_num_groups=4, mid_block_scale_factor=1.5, time_embedding_dim=12), "ddpm", torch.float32),
    # (c) class-conditional: an embedding table of 10 classes added to the time embedding.
    "classcond": (3, dict(in_channels=1, out_channels=1, block_out_channels=(8, 16), norm_num_groups=4, layers_per_block=1,
                          down_block_types=("DownBlock2D", "AttnDownBlock2D"), up_block_types=("AttnUpBlock2D", "UpBlock2D"),
                          num_class_embeds=10), "ddpm", torch.float32),
    # (d) the other timestep-embedding conventions ([sin, cos], frequency shift 1) with
    # scale-shift residual blocks (whose middle attention has no GroupNorm); DDIM, v-prediction.
    "vpred": (4, dict(in_channels=3, out_channels=3, block_out_channels=(4, 8, 8), norm_num_groups=2, layers_per_block=1,
                      down_block_types=("DownBlock2D", "DownBlock2D", "AttnDownBlock2D"),
                      up_block_types=("AttnUpBlock2D", "UpBlock2D", "UpBlock2D"),
                      flip_sin_to_cos=False, freq_shift=1, resnet_time_scale_shift="scale_shift"), "ddim", torch.float32),
    # The attention fixture's architecture with half-precision weights.
    "attention-f16": (5, None, "ddpm", torch.float16),
    "attention-bf16": (6, None, "ddpm", torch.bfloat16),
}


def perturb(unet: UNet2DModel, generator: torch.Generator) -> None:
    """Moves GroupNorm scales off 1 and biases off their initial values."""
    with torch.no_grad():
        for name, p in unet.named_parameters():
            noise = torch.randn(p.shape, generator=generator)
            if "norm" in name and name.endswith(".weight"):
                p.copy_(1 + 0.25 * noise)
            elif name.endswith(".bias"):
                p.add_(0.1 * noise)


def build(name: str, out_root: str) -> dict:
    seed, args, scheduler_kind, dtype = FIXTURES[name]
    if args is None:
        args = FIXTURES["attention"][1]
    torch.manual_seed(seed)
    unet = UNet2DModel(**COMMON, **args).eval()
    generator = torch.Generator().manual_seed(seed + 100)
    perturb(unet, generator)
    # The reference runs in float32 on the weights as they will be stored.
    unet = unet.to(dtype).to(torch.float32)

    channels = unet.config.in_channels
    sample = torch.randn((2, channels, 8, 8), generator=generator)
    timesteps = torch.tensor(TIMESTEPS, dtype=torch.float32)
    labels = torch.tensor([3, 7]) if unet.config.num_class_embeds else None
    with torch.no_grad():
        outputs = torch.stack([unet(sample, t, class_labels=labels).sample for t in timesteps])
    rms = outputs.pow(2).mean().sqrt().item()
    assert 0.05 < rms < 50, f"{name}: output RMS {rms} is not a useful reference"

    folder = os.path.join(out_root, name)
    shutil.rmtree(folder, ignore_errors=True)
    if scheduler_kind == "ddim":
        pipeline = DDIMPipeline(unet=unet.to(dtype), scheduler=DDIMScheduler(prediction_type="v_prediction"))
    else:
        pipeline = DDPMPipeline(unet=unet.to(dtype), scheduler=DDPMScheduler())
    pipeline.save_pretrained(folder, safe_serialization=True)
    reference = {"sample": sample, "timesteps": timesteps, "output": outputs.contiguous()}
    if labels is not None:
        reference["class_labels"] = labels.to(torch.float32)
    save_file(reference, os.path.join(folder, "reference.safetensors"))
    size = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(folder) for f in fs)
    return {"name": name, "dtype": str(dtype), "output_rms": round(rms, 4), "bytes": size,
            "parameters": sum(p.numel() for p in unet.parameters())}


def main() -> None:
    here = os.path.dirname(os.path.abspath(__file__))
    default_out = os.path.join(here, "..", "Tests", "DistillTests", "Fixtures", "diffusers")
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=default_out)
    options = parser.parse_args()
    os.makedirs(options.out, exist_ok=True)
    torch.set_num_threads(1)
    for name in FIXTURES:
        print(json.dumps(build(name, options.out)))


if __name__ == "__main__":
    main()
