#!/usr/bin/env python3
"""PyTorch baseline for bench/morph.ts: the same morph maths on the same device with autograd.

ICT-sized: vertices = template + basis^T c with a float16 [K, 3V] basis (K = 157, V = 26,719), then
dL/dc = basis g through autograd (forward + backward). FLAME-sized: 5,023 vertices, 400 modes, 5 joints,
pose correctives, Rodrigues, kinematic chain, LBS and a global rigid transform with scale.

Times with CUDA events over many iterations after warm-up. Prints one JSON object (microseconds):
  python3 bench/morph_torch.py [--iters 200] [--flush-l2]
"""
import argparse
import json
import sys

import torch


def timed(fn, iters, warmup, flush=None):
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    if flush is None:
        s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        s.record()
        for _ in range(iters):
            fn()
        e.record()
        torch.cuda.synchronize()
        return s.elapsed_time(e) * 1e3 / iters
    total = 0.0
    for _ in range(iters):
        flush.zero_()
        s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        s.record()
        fn()
        e.record()
        torch.cuda.synchronize()
        total += s.elapsed_time(e) * 1e3
    return total / iters


def rodrigues(r):
    """r: [J,3] axis-angles -> [J,3,3] (the usual batch_rodrigues with an epsilon)."""
    angle = torch.norm(r + 1e-8, dim=1, keepdim=True)
    axis = r / angle
    c, s = torch.cos(angle)[:, :, None], torch.sin(angle)[:, :, None]
    x, y, z = axis[:, 0], axis[:, 1], axis[:, 2]
    zeros = torch.zeros_like(x)
    K = torch.stack([zeros, -z, y, z, zeros, -x, -y, x, zeros], dim=1).view(-1, 3, 3)
    eye = torch.eye(3, device=r.device, dtype=r.dtype)[None]
    return eye + s * K + (1 - c) * torch.bmm(K, K)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--iters', type=int, default=200)
    ap.add_argument('--warmup', type=int, default=20)
    ap.add_argument('--flush-l2', action='store_true')
    a = ap.parse_args()
    if not torch.cuda.is_available():
        print(json.dumps({'error': 'no CUDA device for PyTorch'}))
        return 0
    dev = torch.device('cuda')
    torch.manual_seed(0)
    flush = torch.empty(256 << 20, dtype=torch.uint8, device=dev) if a.flush_l2 else None
    out = {'device': torch.cuda.get_device_name(0), 'torch': torch.__version__}

    # ---------------- ICT-sized blendshapes
    V, K = 26719, 157
    N = 3 * V
    basis = (torch.randn(K, N, device=dev) * 0.5).half()
    templ = torch.randn(N, device=dev)
    c = torch.randn(K, device=dev, requires_grad=True)
    g = torch.randn(N, device=dev)

    def ict_fwd():
        return templ + (c.half() @ basis).float()

    def ict_fwd_bwd():
        v = ict_fwd()
        (gc,) = torch.autograd.grad(v, c, g)
        return gc

    with torch.no_grad():
        out['ict_forward_us'] = timed(ict_fwd, a.iters, a.warmup, flush)
    out['ict_fwd_bwd_us'] = timed(ict_fwd_bwd, a.iters, a.warmup, flush)
    # float32-accumulation variant without fp16 matmul output rounding: the basis converted per call
    def ict_fwd_bwd_f32():
        v = templ + basis.float().t() @ c
        (gc,) = torch.autograd.grad(v, c, g)
        return gc
    out['ict_fwd_bwd_f32_us'] = timed(ict_fwd_bwd_f32, max(20, a.iters // 4), 5, flush)

    # ---------------- FLAME-sized skinned model
    V, Ki, Ke, J = 5023, 300, 100, 5
    N, K, P = 3 * V, Ki + Ke, 9 * (J - 1)
    parents = [-1, 0, 1, 1, 1]
    shapedirs = (torch.randn(K, N, device=dev) * 0.01).half()
    posedirs = (torch.randn(P, N, device=dev) * 0.01).half()
    templ = torch.randn(N, device=dev) * 0.1
    w = torch.rand(V, J, device=dev)
    w = w / w.sum(1, keepdim=True)
    jreg = torch.zeros(J, V, device=dev)
    for j in range(J):
        jreg[j, j::50] = 1.0 / len(range(j, V, 50))
    coeffs = (torch.randn(K, device=dev) * 0.5).requires_grad_(True)
    pose = (torch.randn(J, 3, device=dev) * 0.3).requires_grad_(True)
    rot = torch.tensor([0.1, -0.2, 0.05], device=dev, requires_grad=True)
    trans = torch.tensor([0.3, -1.0, 2.0], device=dev, requires_grad=True)
    scale = torch.tensor([1.1], device=dev, requires_grad=True)
    gv = torch.randn(V, 3, device=dev)
    eye = torch.eye(3, device=dev)
    bottom = torch.tensor([[0.0, 0, 0, 1]], device=dev)  # built once: no host->device copy per call
    par_idx = torch.tensor(parents[1:], device=dev)

    def flame_fwd():
        v_shaped = (templ + (coeffs.half() @ shapedirs).float()).view(V, 3)
        Jr = jreg @ v_shaped
        R = rodrigues(pose)
        pf = (R[1:] - eye).reshape(-1)
        v_posed = v_shaped + (pf.half() @ posedirs).float().view(V, 3)
        rel = torch.cat([Jr[:1], Jr[1:] - Jr[par_idx]], 0)
        G = []
        for j in range(J):
            Tj = torch.cat([torch.cat([R[j], rel[j][:, None]], 1), bottom], 0)
            G.append(Tj if parents[j] < 0 else G[parents[j]] @ Tj)
        G = torch.stack(G)
        A = torch.cat([G[:, :3, :3], (G[:, :3, 3] - torch.einsum('jab,jb->ja', G[:, :3, :3], Jr))[:, :, None]], 2)  # [J,3,4]
        Tv = (w @ A.view(J, 12)).view(V, 3, 4)
        u = torch.einsum('vab,vb->va', Tv[:, :, :3], v_posed) + Tv[:, :, 3]
        Rg = rodrigues(rot[None])[0]
        return scale * (u @ Rg.t()) + trans

    def flame_fwd_bwd():
        v = flame_fwd()
        return torch.autograd.grad(v, [coeffs, pose, rot, trans, scale], gv)

    with torch.no_grad():
        out['flame_forward_us'] = timed(flame_fwd, a.iters, a.warmup, flush)
    out['flame_fwd_bwd_us'] = timed(flame_fwd_bwd, a.iters, a.warmup, flush)
    print(json.dumps(out))
    return 0


if __name__ == '__main__':
    sys.exit(main())
