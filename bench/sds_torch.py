#!/usr/bin/env python3
"""PyTorch baseline for bench/sds.ts: the per-iteration SDS + optimiser maths of the texture phase
(latents 1x4x64x64 -> CFG batch 2x4x64x64, texture 512x512x3 with Adam), written the usual way
(threestudio-style), timed with CUDA events around many iterations. Prints one JSON line.

  python3 bench/sds_torch.py --iterations 1000 [--fused-adam] [--normalize]
"""
import argparse
import json
import math

import torch


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--iterations", type=int, default=1000)
    ap.add_argument("--warmup", type=int, default=50)
    ap.add_argument("--fused-adam", action="store_true", help="torch.optim.Adam(fused=True): the strongest stock baseline")
    ap.add_argument("--normalize", action="store_true")
    ap.add_argument("--guidance", type=float, default=100.0)
    a = ap.parse_args()
    dev = torch.device("cuda")
    g = torch.Generator(device=dev)
    g.manual_seed(1234)

    # scheduler table (scaled_linear 0.00085 -> 0.012), as in diffusers
    betas = torch.linspace(0.00085 ** 0.5, 0.012 ** 0.5, 1000, dtype=torch.float64) ** 2
    alphas_cumprod = torch.cumprod(1 - betas, 0).float()
    ac_host = alphas_cumprod.tolist()

    x0 = torch.randn(1, 4, 64, 64, device=dev)
    model_out = torch.randn(2, 4, 64, 64, device=dev)  # the denoiser's output (out of scope)
    texture = torch.nn.Parameter(torch.rand(512, 512, 3, device=dev))
    texture_grad = torch.randn(512, 512, 3, device=dev)  # what the rasteriser backward would give
    opt = torch.optim.Adam([texture], lr=1e-2, fused=True) if a.fused_adam else torch.optim.Adam([texture], lr=1e-2)
    total = a.warmup + a.iterations
    flag = torch.zeros((), dtype=torch.bool, device=dev)

    def iteration(it):
        nonlocal flag
        frac = 0.98 + (0.02 - 0.98) * it / max(total - 1, 1)
        t = int(math.floor(frac * 1000 + 0.5))
        abar = ac_host[t]
        sa, s1a, w = math.sqrt(abar), math.sqrt(1 - abar), 1 - abar
        noise = torch.randn(x0.shape, device=dev, generator=g)
        xt = sa * x0 + s1a * noise
        cfg_in = torch.cat([xt, xt])  # the denoiser input
        eu, ec = model_out.chunk(2)
        eps_hat = eu + a.guidance * (ec - eu)
        grad = w * (eps_hat - noise)
        if a.normalize:
            grad = grad / grad.norm().clamp_min(1e-12)
        flag = flag | ~torch.isfinite(grad).all()
        x0_grad = grad  # would go to the renderer / latent
        for pg in opt.param_groups:
            pg["lr"] = 1e-2 * 0.5 * (1 + math.cos(math.pi * it / total))
        texture.grad = texture_grad
        opt.step()
        return cfg_in, x0_grad

    for i in range(a.warmup):
        iteration(i)
    torch.cuda.synchronize()

    kernels = None
    try:
        from torch.profiler import profile, ProfilerActivity
        with profile(activities=[ProfilerActivity.CUDA]) as prof:
            for i in range(10):
                iteration(a.warmup + i)
            torch.cuda.synchronize()
        kernels = sum(1 for e in prof.events() if e.device_type == torch.autograd.DeviceType.CUDA) / 10.0
    except Exception:  # profiler unavailable: leave the count out
        kernels = None

    e0 = torch.cuda.Event(enable_timing=True)
    e1 = torch.cuda.Event(enable_timing=True)
    e0.record()
    for i in range(a.iterations):
        iteration(a.warmup + i)
    e1.record()
    torch.cuda.synchronize()
    us = e0.elapsed_time(e1) * 1000.0 / a.iterations
    print(json.dumps({"usPerIter": us, "kernelsPerIter": kernels, "nonFinite": bool(flag.item()),
                      "torch": torch.__version__, "device": torch.cuda.get_device_name(), "fusedAdam": a.fused_adam}))


if __name__ == "__main__":
    main()
