"""nvdiffrast baseline for bench/raster.ts (same mesh, cameras, texture and workload).

Usage: python3 bench/raster_nvdiffrast.py WORKDIR CAMS.json ITERS [mip]   (WORKDIR written by bench/raster.ts)
Prints one JSON line: {"forwardUs": ..., "forwardBackwardUs": ...}.
Workload per iteration: world->clip transform, rasterize, interpolate UVs, bilinear texture, antialias;
the backward pass propagates a fixed color gradient to positions and the texture. With "mip": trilinear
mip-mapped texture lookups (filter_mode linear-mipmap-linear, UV derivatives from the rasteriser), the mip stack
rebuilt every iteration (the texture is a trained parameter).
"""
import json
import os
import sys

import numpy as np
import torch
import nvdiffrast.torch as dr


def load(work, name, dtype, shape):
    return torch.from_numpy(np.fromfile(os.path.join(work, name), dtype=dtype).reshape(shape)).cuda()


def main():
    work, cams_file, iters = sys.argv[1], sys.argv[2], int(sys.argv[3])
    mip = len(sys.argv) > 4 and sys.argv[4] == "mip"
    cams = json.load(open(os.path.join(work, cams_file)))
    V, S, near, far = cams["views"], cams["size"], cams["near"], cams["far"]
    pos = load(work, "positions.f32", np.float32, (-1, 3))
    tri = load(work, "tri.i32", np.int32, (-1, 3))
    uvs = load(work, "uvs.f32", np.float32, (-1, 2))
    uv_tri = load(work, "uvTri.i32", np.int32, (-1, 3))
    ts = cams.get("texSize", 1024)
    tex = load(work, "texture.f32", np.float32, (1, ts, ts, 3)).contiguous()
    K = np.array(cams["intrinsics"], dtype=np.float64).reshape(V, 4)
    E = np.array(cams["extrinsics"], dtype=np.float64).reshape(V, 3, 4)
    # OpenCV pinhole (pixels) -> OpenGL-style clip space (w = camera z)
    mats = []
    for v in range(V):
        fx, fy, cx, cy = K[v]
        proj = np.array([
            [2 * fx / S, 0, 2 * cx / S - 1, 0],
            [0, 2 * fy / S, 2 * cy / S - 1, 0],
            [0, 0, (far + near) / (far - near), -2 * far * near / (far - near)],
            [0, 0, 1, 0],
        ])
        ext = np.vstack([E[v], [0, 0, 0, 1]])
        mats.append(proj @ ext)
    mvp = torch.tensor(np.stack(mats), dtype=torch.float32, device="cuda")
    glctx = dr.RasterizeCudaContext()
    pos_p = pos.clone().requires_grad_(True)
    tex_p = tex.clone().requires_grad_(True)
    gen = torch.Generator(device="cuda").manual_seed(0)
    dcolor = torch.rand((V, S, S, 3), device="cuda", generator=gen) - 0.5
    ones = torch.ones((pos.shape[0], 1), device="cuda")

    def forward():
        ph = torch.cat([pos_p, ones], 1)
        clip = torch.einsum("vij,pj->vpi", mvp, ph).contiguous()
        rast, rast_db = dr.rasterize(glctx, clip, tri, resolution=[S, S])
        if mip:
            uv, uv_da = dr.interpolate(uvs[None], rast, uv_tri, rast_db=rast_db, diff_attrs="all")
            color = dr.texture(tex_p, uv, uv_da, filter_mode="linear-mipmap-linear")
        else:
            uv, _ = dr.interpolate(uvs[None], rast, uv_tri)
            color = dr.texture(tex_p, uv.expand(V, -1, -1, -1) if uv.shape[0] != V else uv, filter_mode="linear")
        return dr.antialias(color, rast, clip, tri)

    def fwd_only():
        with torch.no_grad():
            forward()

    def fwd_bwd():
        pos_p.grad = None
        tex_p.grad = None
        color = forward()
        color.backward(dcolor)

    def timeit(fn):
        for _ in range(20):
            fn()
        torch.cuda.synchronize()
        a = torch.cuda.Event(enable_timing=True)
        b = torch.cuda.Event(enable_timing=True)
        a.record()
        for _ in range(iters):
            fn()
        b.record()
        torch.cuda.synchronize()
        return a.elapsed_time(b) * 1000.0 / iters

    print(json.dumps({"forwardUs": timeit(fwd_only), "forwardBackwardUs": timeit(fwd_bwd)}))


if __name__ == "__main__":
    main()
