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
    ddim_noise    (2, C, 8, 8)    the initial state of a DDIM run, drawn after `sample`
    ddim_timesteps (5,)           the timesteps of that run (set_timesteps(5) of the fixture's
                                  scheduler config)
    ddim_sample   (2, C, 8, 8)    the state after the 5 DDIM steps (eta 0), labels as above

The DDIM reference uses `DDIMScheduler.from_config(<the saved scheduler config>,
clip_sample=False)`: this library's samplers never clip the predicted x0, and with clipping on
(both schedulers' default) the two would differ wherever the random networks' x0 leaves
[-1, 1], which measures the clip, not the sampler. The scheduler configs differ per fixture so
that every beta_schedule, both prediction types in use, steps_offset and set_alpha_to_one
false are covered.

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

# Scheduler settings (saved in scheduler/scheduler_config.json).
LINEAR = dict()
SCALED = dict(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012)
COSINE = dict(beta_schedule="squaredcos_cap_v2")
DDIM_STEPS = 5

# name -> (seed, UNet2DModel arguments, (scheduler kind, scheduler settings), stored dtype)
FIXTURES = {
    # (a) residual blocks only, 3 channels, two layers per block, input centering.
    "plain": (1, dict(in_channels=3, out_channels=3, block_out_channels=(4, 8), norm_num_groups=2, layers_per_block=2,
                      down_block_types=("DownBlock2D", "DownBlock2D"), up_block_types=("UpBlock2D", "UpBlock2D"),
                      add_attention=False, center_input_sample=True), ("ddpm", SCALED), torch.float32),
    # (b) attention blocks at the two lower levels and in the middle; the middle attention's
    # GroupNorm has its own group count; a mid-block scale factor and a custom embedding width.
    "attention": (2, dict(in_channels=1, out_channels=1, block_out_channels=(4, 8, 8), norm_num_groups=2, layers_per_block=1,
                          down_block_types=("DownBlock2D", "AttnDownBlock2D", "AttnDownBlock2D"),
                          up_block_types=("AttnUpBlock2D", "AttnUpBlock2D", "UpBlock2D"),
                          attn_norm_num_groups=4, mid_block_scale_factor=1.5, time_embedding_dim=12), ("ddpm", COSINE), torch.float32),
    # (c) class-conditional: an embedding table of 10 classes added to the time embedding.
    "classcond": (3, dict(in_channels=1, out_channels=1, block_out_channels=(8, 16), norm_num_groups=4, layers_per_block=1,
                          down_block_types=("DownBlock2D", "AttnDownBlock2D"), up_block_types=("AttnUpBlock2D", "UpBlock2D"),
                          num_class_embeds=10), ("ddpm", LINEAR), torch.float32),
    # (d) the other timestep-embedding conventions ([sin, cos], frequency shift 1) with
    # scale-shift residual blocks (whose middle attention has no GroupNorm); DDIM, v-prediction.
    "vpred": (4, dict(in_channels=3, out_channels=3, block_out_channels=(4, 8, 8), norm_num_groups=2, layers_per_block=1,
                      down_block_types=("DownBlock2D", "DownBlock2D", "AttnDownBlock2D"),
                      up_block_types=("AttnUpBlock2D", "UpBlock2D", "UpBlock2D"),
                      flip_sin_to_cos=False, freq_shift=1, resnet_time_scale_shift="scale_shift"),
              ("ddim", dict(prediction_type="v_prediction")), torch.float32),
    # The attention fixture's architecture with half-precision weights; DDIM schedulers whose
    # timesteps are shifted by steps_offset 1, the second ending at alpha_cumprod[0], not 1.
    "attention-f16": (5, None, ("ddim", dict(steps_offset=1)), torch.float16),
    "attention-bf16": (6, None, ("ddim", dict(steps_offset=1, set_alpha_to_one=False, **SCALED)), torch.bfloat16),
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
    seed, args, (scheduler_kind, scheduler_args), dtype = FIXTURES[name]
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
        scheduler = DDIMScheduler(**scheduler_args)
    else:
        scheduler = DDPMScheduler(**scheduler_args)

    # A DDIM run from fixed noise (drawn after `sample`, so the network outputs above keep
    # their inputs), with the fixture's schedule and clipping off (see the module docstring).
    ddim = DDIMScheduler.from_config(scheduler.config, clip_sample=False)
    ddim.set_timesteps(DDIM_STEPS)
    noise = torch.randn((2, channels, 8, 8), generator=generator)
    x = noise * ddim.init_noise_sigma
    with torch.no_grad():
        for t in ddim.timesteps:
            x = ddim.step(unet(x, t, class_labels=labels).sample, t, x, eta=0.0).prev_sample
    sample_rms = x.pow(2).mean().sqrt().item()
    assert 0.05 < sample_rms < 50, f"{name}: DDIM sample RMS {sample_rms} is not a useful reference"

    pipeline_type = DDIMPipeline if scheduler_kind == "ddim" else DDPMPipeline
    pipeline = pipeline_type(unet=unet.to(dtype), scheduler=scheduler)
    pipeline.save_pretrained(folder, safe_serialization=True)
    reference = {"sample": sample, "timesteps": timesteps, "output": outputs.contiguous(), "ddim_noise": noise,
                 "ddim_timesteps": ddim.timesteps.to(torch.float32), "ddim_sample": x.contiguous()}
    if labels is not None:
        reference["class_labels"] = labels.to(torch.float32)
    save_file(reference, os.path.join(folder, "reference.safetensors"))
    size = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(folder) for f in fs)
    return {"name": name, "dtype": str(dtype), "output_rms": round(rms, 4), "ddim_sample_rms": round(sample_rms, 4),
            "ddim_timesteps": ddim.timesteps.tolist(), "bytes": size,
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
