#!/usr/bin/env python3
"""PyTorch + nvdiffrast baseline for bench/pipeline.ts: the same non-network work per iteration of each FaceG2E
phase, on the same head, cameras, sizes and settings, with the same target denoiser standing in for the network.

Usage: python3 bench/pipeline_torch.py WORKDIR   (WORKDIR and its settings.json written by bench/pipeline.ts)
Prints one JSON line on stdout:
  {"torch": ..., "nvdiffrast": ..., "device": ..., "vertices": V, "triangles": T,
   "phases": {"geometry": {"msPerIter", "denoiseMs", "iterations", "kernelsPerIter"}, "texture/latent": ..., "texture/rgb": ...}}
msPerIter includes the target denoiser; denoiseMs is its own cost per iteration (timed alone, same shapes, same
number of calls), to subtract like bench/pipeline.ts subtracts ours (`pipeline/denoise`).

What one iteration does (native/pipeline/pipeline.cpp does the same with its own kernels):
  geometry        target head render (no grad) + encode -> morph (fp16 blendshapes, rigid to metres, centred) ->
                  vertex normals -> grey (SH irradiance of the interpolated normal, antialiased with its coverage,
                  over the background) or camera-space normal render, alternating -> pooling encode -> SDS noise ->
                  target denoiser (CFG batch) -> w(eps_hat - eps) -> autograd back through encode, nvdiffrast
                  (antialias, interpolate, rasterize), normals and blendshapes -> (L2) -> Adan step.
  texture/latent  target RGB render at 8x the latent size + encode -> rasterize + interpolate UVs + bilinear
                  sample of the [Ls,Ls,4] latent texture + background + antialias at the latent render size ->
                  latent SDS -> texture prior SDS on the latent UV map -> autograd to the texture -> AdamW (fused).
  texture/rgb     render of the [S,S,3] texture at R (+ depth image for the ControlNet) -> target render + encode
                  -> encode -> noise -> denoiser -> x0_hat -> decode -> 2w(x - sg(decoded)) -> prior on the UV map
                  (encode -> ... -> decode) -> autograd to the texture -> AdamW (fused) -> clamp to [0, 1].
Both sides also accumulate two loss sums per iteration on the device and read them back every iterations/20
iterations (ours: the progress read-back).
"""
import json
import math
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F
import nvdiffrast.torch as dr

DEV = torch.device("cuda")
POOL = 8
# the pooling codec's channel map (native/engines/target.cpp poolingMaps): latent = M . mean_8x8(rgb)
POOL_M = np.array([[0.299, 0.587, 0.114], [0.5, -0.4187, -0.0813], [-0.1687, -0.3313, 0.5], [0.25, 0.25, 0.25]], dtype=np.float64)
NEAR, FAR = 0.01, 10.0


# ------------------------------------------------------------------------------------------------ inputs
def load(work, name, dtype, shape):
    a = np.fromfile(os.path.join(work, name), dtype=dtype)
    return a.reshape(shape)


def alphas_cumprod(d):
    """sds::schedulerTables (diffusers' scaled_linear / linear betas), float64, rounded to float32 when used."""
    n = int(d["numTrainTimesteps"])
    if d["betaSchedule"] == "linear":
        betas = np.linspace(d["betaStart"], d["betaEnd"], n, dtype=np.float64)
    else:
        betas = np.linspace(math.sqrt(d["betaStart"]), math.sqrt(d["betaEnd"]), n, dtype=np.float64) ** 2
    return np.cumprod(1.0 - betas)


def weight_value(kind, a):
    if kind in ("one-minus-alphabar", "1-alpha"):
        return 1.0 - a
    if kind == "uniform":
        return 1.0
    if kind == "fantasia3d":
        return math.sqrt(a) * (1.0 - a)
    raise ValueError(f"diffusion.weighting: unknown '{kind}'")


def timestep(ts, n_train, total, i):
    """sds::sampleTimestep, linear schedule without jitter (the benchmark's setting)."""
    lo = min(max(int(math.floor(n_train * ts["min"])), 0), n_train - 1)
    hi = min(max(int(math.floor(n_train * ts["max"])), lo), n_train - 1)
    frac = ts["max"] if total <= 1 else ts["max"] + (ts["min"] - ts["max"]) * (min(i, total - 1) / (total - 1))
    return min(max(int(math.floor(frac * n_train + 0.5)), lo), hi)


def sds_coefficients(cfg, ts, total):
    """Host-side per-iteration (sqrt(abar), sqrt(1 - abar), w(t)): python floats, no device sync per iteration."""
    d = cfg["diffusion"]
    sc = d["scheduler"]
    if sc.get("predictionType", "epsilon") != "epsilon":
        raise ValueError("diffusion.scheduler.predictionType: the baseline implements 'epsilon' only")
    ac = alphas_cumprod(sc)
    out = []
    for i in range(total):
        a = float(np.float32(ac[timestep(ts, int(sc["numTrainTimesteps"]), total, i)]))
        out.append((math.sqrt(a), math.sqrt(1.0 - a), weight_value(d["weighting"], a) * d["gradScale"]))
    return out


def lr_at(o, i):
    """sds::lrAt + the minFactor floor (lib/pipeline-native.ts lrDecay)."""
    base, dec = o["learningRate"], o["lrDecay"]
    kind = dec.get("type", "none")
    if kind in ("none", "constant"):
        lr = base
    elif kind == "step":
        lr = base * dec.get("gamma", 1.0) ** (i // int(dec.get("stepEvery", 100)))
    elif kind == "cosine":
        total = int(dec.get("totalSteps", 1000))
        lo = base * dec.get("minFactor", 0.0)
        lr = lo + (base - lo) * 0.5 * (1.0 + math.cos(math.pi * min(i, total) / total))
    else:
        raise ValueError(f"lrDecay.type: unknown '{kind}'")
    return max(lr, base * dec.get("minFactor", 0.0))


def clip_matrix(pose, fov_deg):
    """pipe::pinholeView (native/pipeline/camera.hpp) as an nvdiffrast clip matrix: OpenCV camera (x right, y down,
    z forward), clip.y = +(2fy/H) Yc so that image row 0 is the top row like ours; OpenGL depth in [NEAR, FAR].
    Returns (mvp 4x4, world -> OpenGL camera rotation 3x3 for normal renders)."""
    el, az, dist = math.radians(pose[0]), math.radians(pose[1]), pose[2]
    eye = np.array([dist * math.cos(el) * math.sin(az), dist * math.sin(el), dist * math.cos(el) * math.cos(az)])
    fwd = -eye / dist
    right = np.cross(fwd, np.array([0.0, 1.0, 0.0]))
    rl = np.linalg.norm(right)
    right = np.array([1.0, 0.0, 0.0]) if rl < 1e-9 else right / rl
    down = np.cross(fwd, right)
    R = np.stack([right, down, fwd])
    t = -R @ eye
    k = 1.0 / math.tan(0.5 * math.radians(fov_deg))  # 2 fx / W with fx = H / (2 tan(fov/2)), W = H, cx = W/2
    proj = np.array([[k, 0, 0, 0], [0, k, 0, 0],
                     [0, 0, (FAR + NEAR) / (FAR - NEAR), -2 * FAR * NEAR / (FAR - NEAR)], [0, 0, 1, 0]])
    ext = np.eye(4)
    ext[:3, :3], ext[:3, 3] = R, t
    rot_gl = np.stack([right, -down, -fwd])
    return proj @ ext, rot_gl


class Common:
    """Mesh, blendshapes, codec, denoiser: what every phase shares."""

    def __init__(self, work, cfg):
        m = cfg["model"]
        V, T, U, Ki = int(m["V"]), int(m["T"]), int(m["U"]), int(m["Ki"])
        self.V, self.T, self.Ki = V, T, Ki
        templ = load(work, "template.f32", np.float32, (V, 3))
        self.templ = torch.from_numpy(templ.reshape(-1).copy()).to(DEV)
        self.tri = torch.from_numpy(load(work, "tri.i32", np.int32, (T, 3)).copy()).to(DEV).contiguous()
        uv = load(work, "uv.f32", np.float32, (U, 2)).copy()
        uv[:, 1] = 1.0 - uv[:, 1]  # OBJ v = 0 at the bottom; our textures (and nvdiffrast's) have row 0 at v = 1
        self.uv = torch.from_numpy(uv).to(DEV).contiguous()
        self.uv_tri = torch.from_numpy(load(work, "uvTri.i32", np.int32, (T, 3)).copy()).to(DEV).contiguous()
        # fp16 identity basis [Ki, 3V], as stored (morph_torch.py's approach: fp16 GEMV, float32 result)
        self.basis = torch.from_numpy(load(work, "identity.f16", np.float16, (Ki, 3 * V)).copy()).to(DEV)
        # rigid transform of the pipeline: metres, centred on the template's bounding-box centre
        lo, hi = templ.min(0).astype(np.float64), templ.max(0).astype(np.float64)
        centre = 0.5 * (lo + hi)
        mpu = float(m["metresPerUnit"])
        self.scale = float(np.float32(mpu))
        self.trans = torch.tensor(-centre * self.scale, dtype=torch.float32, device=DEV)
        self.head_radius = max(1e-3, float(np.sqrt((((templ - centre) * mpu) ** 2).sum(1).max())))
        self.ones = torch.ones(V, 1, device=DEV)
        tl = self.tri.long()
        self.tri_all = torch.cat([tl[:, 0], tl[:, 1], tl[:, 2]])
        self.tri_l = tl
        self.glctx = dr.RasterizeCudaContext(device=DEV)
        self.topo = dr.antialias_construct_topology_hash(self.tri)
        scale = float(cfg["diffusion"].get("poolingScale", 1.0))
        Mq = POOL_M * scale
        self.M = torch.tensor(Mq, dtype=torch.float32, device=DEV)[:, :, None, None]  # [4,3,1,1]
        self.P = torch.tensor(np.linalg.pinv(Mq), dtype=torch.float32, device=DEV)[:, :, None, None]  # [3,4,1,1]
        self.Mnp = Mq
        self.gen = torch.Generator(device=DEV)
        self.gen.manual_seed(int(cfg["seed"]))
        tc = np.zeros(Ki, dtype=np.float32)
        tcs = np.asarray(cfg["target"]["coefficients"], dtype=np.float32)[:Ki]
        tc[: tcs.shape[0]] = tcs
        self.target_coeffs = torch.from_numpy(tc).to(DEV)
        S = int(cfg["target"]["textureSize"])
        self.target_tex = torch.from_numpy(load(work, "target_texture.f32", np.float32, (1, S, S, 3)).copy()).to(DEV).contiguous()

    # ---- model
    def morph(self, c):
        d = (c.half() @ self.basis).float()
        return (self.templ + d).view(self.V, 3) * self.scale + self.trans

    def vertex_normals(self, v):
        t = self.tri_l
        fn = torch.cross(v[t[:, 1]] - v[t[:, 0]], v[t[:, 2]] - v[t[:, 0]], dim=1)  # area-weighted face normals
        vn = torch.zeros_like(v).index_add(0, self.tri_all, fn.repeat(3, 1))
        return F.normalize(vn, dim=1, eps=1e-20)

    def homogeneous(self, v):
        return torch.cat([v, self.ones], 1)

    @staticmethod
    def clip(vh, mvp):  # [V,4] x [n,4,4] -> [n,V,4]
        return torch.matmul(vh[None], mvp.transpose(1, 2)).contiguous()

    # ---- codec (pooling: 4 channels, 8x8) and the target denoiser
    def encode(self, img):  # [n,3,H,W] -> [n,4,H/8,W/8]
        return F.conv2d(F.avg_pool2d(img, POOL), self.M)

    def decode(self, z):  # nearest upsampling, like ours
        return F.interpolate(F.conv2d(z, self.P), scale_factor=POOL, mode="nearest")

    @staticmethod
    def denoise(xt, target, sa, s1a, guidance):
        """The stand-in for the UNet: CFG batch (uncond, cond), eps_hat = (x_t - sqrt(abar) target)/sqrt(1 - abar)
        for both halves, then the guidance combination."""
        x_in = torch.cat([xt, xt], 0)
        cond = torch.cat([target, target], 0)
        e = (x_in - sa * cond) / s1a
        eu, ec = e.chunk(2)
        return eu + guidance * (ec - eu)

    def randn(self, shape):
        return torch.randn(shape, device=DEV, generator=self.gen)

    def uv_interp(self, rast, n):
        uv, _ = dr.interpolate(self.uv[None], rast, self.uv_tri)
        return uv if uv.shape[0] == n else uv.expand(n, -1, -1, -1).contiguous()


def camera_tables(poses, fov, count, views):
    mvp = np.zeros((count, views, 4, 4), dtype=np.float32)
    rot = np.zeros((count, views, 3, 3), dtype=np.float32)
    for i in range(count):
        for v in range(views):
            a, b = clip_matrix(poses[i * views + v], fov)
            mvp[i, v], rot[i, v] = a, b
    return torch.from_numpy(mvp).to(DEV), torch.from_numpy(rot).to(DEV)


class Adan:
    """Adan (Xie et al. 2022) as in the reference sail-sg/Adan (betas 0.98/0.92/0.99 convention, prox weight decay,
    optional global grad-norm clip, pre_grad = grad at step 1), on the device without host syncs."""

    def __init__(self, p, o):
        self.p = p
        self.b1, self.b2, self.b3 = o["beta1"], o["beta2"], o["beta3"]
        self.eps, self.wd, self.max_norm = o["eps"], o["weightDecay"], o["maxGradNorm"]
        self.m, self.d, self.n, self.prev = (torch.zeros_like(p) for _ in range(4))

    @torch.no_grad()
    def step(self, k, lr):
        g = self.p.grad
        if self.max_norm > 0:
            g = g * (self.max_norm / (g.norm() + 1e-6)).clamp(max=1.0)
        if k == 1:
            self.prev.copy_(g)
        diff = g - self.prev
        b1, b2, b3 = self.b1, self.b2, self.b3
        self.m.mul_(b1).add_(g, alpha=1 - b1)
        self.d.mul_(b2).add_(diff, alpha=1 - b2)
        u = torch.add(g, diff, alpha=b2)
        self.n.mul_(b3).addcmul_(u, u, value=1 - b3)
        denom = (self.n.sqrt() / math.sqrt(1 - b3 ** k)).add_(self.eps)
        upd = (self.m / (1 - b1 ** k)).add_(self.d, alpha=b2 / (1 - b2 ** k)).div_(denom)
        self.p.add_(upd, alpha=-lr)
        if self.wd:
            self.p.div_(1 + lr * self.wd)
        self.prev.copy_(g)


def adamw(p, o):
    kw = dict(lr=o["learningRate"], betas=(o["optimizer"]["beta1"], o["optimizer"]["beta2"]), eps=o["optimizer"]["eps"],
              weight_decay=o["optimizer"]["weightDecay"])
    try:
        return torch.optim.AdamW([p], fused=True, **kw)
    except (TypeError, RuntimeError):
        return torch.optim.AdamW([p], foreach=True, **kw)


# ------------------------------------------------------------------------------------------------ phases
class Geometry:
    def __init__(self, c, cfg, iters):
        g = cfg["geometry"]
        self.c, self.iters = c, iters
        self.n, self.H = int(g["views"]), int(g["renderSize"])
        self.inputs = g["inputs"]
        self.albedo = float(g["albedo"])
        self.bg = torch.tensor(g["background"], dtype=torch.float32, device=DEV)
        self.aa = bool(g["antialias"])
        self.guidance = float(g["guidanceScale"])
        self.reg = float(g["regularization"]["identity"])
        self.o = g
        poses = g["poses"]
        assert len(poses) >= iters * self.n, "settings.json: geometry.poses has fewer than iterations x views poses"
        self.mvp, self.rot = camera_tables(poses, g["camera"]["fovDegrees"], iters, self.n)
        sh = np.asarray(cfg["shPresets"], dtype=np.float32)
        self.sh = torch.from_numpy(sh[np.asarray(g["lights"][: iters * self.n], dtype=np.int64)].reshape(iters, self.n, 9).copy()).to(DEV)
        self.co = sds_coefficients(cfg, g["timestep"], iters)
        self.lrs = [lr_at(g, i) for i in range(iters)]
        self.coeffs = torch.zeros(c.Ki, device=DEV, requires_grad=True)
        self.opt = Adan(self.coeffs, g["optimizer"])
        with torch.no_grad():
            tv = c.morph(c.target_coeffs)
            self.t_vh, self.t_vn = c.homogeneous(tv), c.vertex_normals(tv)
        self.curve = torch.zeros(iters, 2, device=DEV)
        h = self.H // POOL
        self.denoise_shapes = [(self.n, 4, h, h, self.guidance)]

    def render(self, vh, vn, mode, i):
        c, n, H = self.c, self.n, self.H
        clip = c.clip(vh, self.mvp[i])
        rast, _ = dr.rasterize(c.glctx, clip, c.tri, resolution=[H, H], grad_db=False)
        cov = rast[..., 3:] > 0
        nrm, _ = dr.interpolate(vn[None], rast, c.tri)
        nrm = F.normalize(nrm, dim=-1)
        if mode == "grey":
            x, y, z = nrm.unbind(-1)
            basis = torch.stack([torch.full_like(x, 0.282095), 0.488603 * y, 0.488603 * z, 0.488603 * x, 1.092548 * x * y,
                                 1.092548 * y * z, 0.315392 * (3 * z * z - 1), 1.092548 * x * z, 0.546274 * (x * x - y * y)], -1)
            E = (basis * self.sh[i][:, None, None, :]).sum(-1, keepdim=True)
            covf = cov.float()
            gm = torch.cat([E * covf, covf], -1)  # grey and mask, antialiased together (ours: both in the raster)
            if self.aa:
                gm = dr.antialias(gm, rast, clip, c.tri, topology_hash=c.topo)
            img = self.albedo * gm[..., :1] + (1 - gm[..., 1:]) * self.bg
        else:
            cam = torch.einsum("nij,nhwj->nhwi", self.rot[i], nrm)
            img = torch.where(cov, cam * 0.5 + 0.5, self.bg)
        return img.permute(0, 3, 1, 2)  # NCHW view

    def iteration(self, i):
        c = self.c
        mode = self.inputs[i % len(self.inputs)]
        sa, s1a, w = self.co[i]
        with torch.no_grad():
            t_img = self.render(self.t_vh, self.t_vn, mode, i)
            zt = c.encode(t_img)
        v = c.morph(self.coeffs)
        img = self.render(c.homogeneous(v), c.vertex_normals(v), mode, i)
        z = c.encode(img)
        with torch.no_grad():
            eps = c.randn(z.shape)
            xt = sa * z + s1a * eps
            eh = c.denoise(xt, zt, sa, s1a, self.guidance)
            grad = w * (eh - eps)
            self.curve[i, 0] = grad.square().sum()
            self.curve[i, 1] = (img - t_img).square().sum()
        self.coeffs.grad = None
        z.backward(grad)
        if self.reg > 0:
            self.coeffs.grad.add_(self.coeffs.detach(), alpha=2 * self.reg)
        self.opt.step(i + 1, self.lrs[i])


class TextureBase:
    def __init__(self, c, cfg, iters):
        t = cfg["texture"]
        self.c, self.iters, self.t = c, iters, t
        self.n = int(t["views"])
        self.aa = bool(t["antialias"])
        self.guidance = float(t["guidanceScale"])
        self.prior = bool(t["prior"]["enabled"]) and float(t["prior"]["weight"]) > 0
        self.prior_w = float(t["prior"]["weight"])
        self.prior_g = float(t["prior"]["guidanceScale"])
        poses = t["poses"]
        assert len(poses) >= iters * self.n, "settings.json: texture.poses has fewer than iterations x views poses"
        self.mvp, _ = camera_tables(poses, t["cameras"]["fovDegrees"], iters, self.n)
        self.depth_range = torch.tensor([[max(1e-3, p[2] - c.head_radius), p[2] + c.head_radius] for p in poses[: iters * self.n]],
                                        dtype=torch.float32, device=DEV).view(iters, self.n, 1, 1, 2)
        self.co = sds_coefficients(cfg, t["timestep"], iters)
        self.lrs = [lr_at(t, i) for i in range(iters)]
        self.bg_rgb = torch.tensor(t["background"], dtype=torch.float32, device=DEV)
        with torch.no_grad():  # the geometry of the phase (zeros: the geometry phase is off in the benchmark) and the target head
            self.vh = c.homogeneous(c.morph(torch.zeros(c.Ki, device=DEV)))
            self.t_vh = c.homogeneous(c.morph(c.target_coeffs))
        self.curve = torch.zeros(iters, 2, device=DEV)

    def raster(self, vh, i, size):
        clip = self.c.clip(vh, self.mvp[i])
        rast, _ = dr.rasterize(self.c.glctx, clip, self.c.tri, resolution=[size, size], grad_db=False)
        return clip, rast

    def textured(self, clip, rast, tex, bg):
        c = self.c
        col = dr.texture(tex, c.uv_interp(rast, self.n), filter_mode="linear", boundary_mode="clamp")
        col = torch.where(rast[..., 3:] > 0, col, bg)
        if self.aa:
            col = dr.antialias(col, rast, clip, c.tri, topology_hash=c.topo)
        return col  # [n,H,W,C]

    @torch.no_grad()
    def target_render(self, i, size):
        """The target head with the target texture at `size` (NCHW view) and its encoding: the denoiser's target."""
        clip, rast = self.raster(self.t_vh, i, size)
        img = self.textured(clip, rast, self.c.target_tex, self.bg_rgb).permute(0, 3, 1, 2)
        return img, self.c.encode(img)

    @torch.no_grad()
    def encoded_target_uv(self, size):
        """The prior's target: the target UV texture resampled to size x size (NCHW), encoded (setup only)."""
        tex = self.c.target_tex.permute(0, 3, 1, 2)
        if tex.shape[-1] != size:
            tex = F.interpolate(tex, size=(size, size), mode="bilinear", align_corners=False)
        return self.c.encode(tex.contiguous())


class TextureLatent(TextureBase):
    def __init__(self, c, cfg, iters):
        super().__init__(c, cfg, iters)
        lt = self.t["latent"]
        self.Ls, self.Rl = int(lt["textureSize"]), int(lt["renderSize"])
        self.latent = torch.zeros(1, self.Ls, self.Ls, 4, device=DEV, requires_grad=True)
        self.opt = adamw(self.latent, self.t)
        self.bg_lat = torch.tensor(c.Mnp @ np.asarray(self.t["background"], dtype=np.float64), dtype=torch.float32, device=DEV)
        self.prior_target = self.encoded_target_uv(self.Ls * POOL)
        self.denoise_shapes = [(self.n, 4, self.Rl, self.Rl, self.guidance)] + ([(1, 4, self.Ls, self.Ls, self.prior_g)] if self.prior else [])

    def iteration(self, i):
        c = self.c
        sa, s1a, w = self.co[i]
        _, zt = self.target_render(i, self.Rl * POOL)
        clip, rast = self.raster(self.vh, i, self.Rl)
        z = self.textured(clip, rast, self.latent, self.bg_lat).permute(0, 3, 1, 2)
        with torch.no_grad():
            eps = c.randn(z.shape)
            xt = sa * z + s1a * eps
            grad = w * (c.denoise(xt, zt, sa, s1a, self.guidance) - eps)
            self.curve[i, 0] = grad.square().sum()
            self.curve[i, 1] = (z - zt).square().sum()
        self.opt.zero_grad(set_to_none=True)
        z.backward(grad)
        if self.prior:
            with torch.no_grad():
                zp = self.latent.permute(0, 3, 1, 2)
                ep = c.randn(zp.shape)
                xp = sa * zp + s1a * ep
                gp = (w * self.prior_w) * (c.denoise(xp, self.prior_target, sa, s1a, self.prior_g) - ep)
                self.latent.grad.add_(gp.permute(0, 2, 3, 1))
        for pg in self.opt.param_groups:
            pg["lr"] = self.lrs[i]
        self.opt.step()


class TextureRgb(TextureBase):
    def __init__(self, c, cfg, iters):
        super().__init__(c, cfg, iters)
        r = self.t["rgb"]
        self.S, self.R = int(r["textureSize"]), int(r["renderSize"])
        self.control = bool(self.t["controlNet"]["enabled"])
        self.clamp = bool(self.t["clamp"])
        # ours enters the RGB stage by decoding the (zero) latent texture: the same start here
        lt = self.t["latent"]
        with torch.no_grad():
            Ls = int(lt["textureSize"])
            dec = c.decode(torch.zeros(1, 4, Ls, Ls, device=DEV))
            if dec.shape[-1] != self.S:
                dec = F.interpolate(dec, size=(self.S, self.S), mode="bilinear", align_corners=False)
            init = dec.clamp(0, 1).permute(0, 2, 3, 1).contiguous()
        self.rgb = init.clone().requires_grad_(True)
        self.opt = adamw(self.rgb, self.t)
        self.prior_target = self.encoded_target_uv(self.S)
        self.ctrl = None
        h, hs = self.R // POOL, self.S // POOL
        self.denoise_shapes = [(self.n, 4, h, h, self.guidance)] + ([(1, 4, hs, hs, self.prior_g)] if self.prior else [])

    def iteration(self, i):
        c = self.c
        sa, s1a, w = self.co[i]
        clip, rast = self.raster(self.vh, i, self.R)
        img = self.textured(clip, rast, self.rgb, self.bg_rgb).permute(0, 3, 1, 2)
        with torch.no_grad():
            if self.control:  # the depth ControlNet's input (the target denoiser ignores it, as ours does)
                zc, _ = dr.interpolate(clip[..., 3:4].contiguous(), rast, c.tri)
                dr_ = self.depth_range[i]
                depth = ((dr_[..., 1:2] - zc) / (dr_[..., 1:2] - dr_[..., 0:1])).clamp(0, 1) * (rast[..., 3:] > 0)
                self.ctrl = depth.permute(0, 3, 1, 2).expand(-1, 3, -1, -1).contiguous()
            t_img, zt = self.target_render(i, self.R)
            z = c.encode(img)
            eps = c.randn(z.shape)
            xt = sa * z + s1a * eps
            eh = c.denoise(xt, zt, sa, s1a, self.guidance)
            x0 = (xt - s1a * eh) / sa
            g_img = (2 * w) * (img - c.decode(x0))
            self.curve[i, 0] = g_img.square().sum()
            self.curve[i, 1] = (img - t_img).square().sum()
        self.opt.zero_grad(set_to_none=True)
        img.backward(g_img)
        if self.prior:
            with torch.no_grad():
                tex = self.rgb.permute(0, 3, 1, 2)
                zp = c.encode(tex)
                ep = c.randn(zp.shape)
                xp = sa * zp + s1a * ep
                x0p = (xp - s1a * c.denoise(xp, self.prior_target, sa, s1a, self.prior_g)) / sa
                gp = (2 * w * self.prior_w) * (tex - c.decode(x0p))
                self.rgb.grad.add_(gp.permute(0, 2, 3, 1))
        for pg in self.opt.param_groups:
            pg["lr"] = self.lrs[i]
        self.opt.step()
        if self.clamp:
            with torch.no_grad():
                self.rgb.clamp_(0, 1)


# ------------------------------------------------------------------------------------------------ timing
def events():
    return torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)


def time_phase(ph, iters, warmup):
    every = max(1, iters // 20)  # ours: progressEvery = total / 20, a read-back (sync) each time
    for k in range(warmup):
        ph.iteration(k % iters)
    torch.cuda.synchronize()
    a, b = events()
    a.record()
    for i in range(iters):
        ph.iteration(i)
        if (i + 1) % every == 0 or i + 1 == iters:
            cd = ph.curve[: i + 1].cpu()
            if not bool(torch.isfinite(cd[i]).all()):
                raise RuntimeError(f"{type(ph).__name__}: the SDS gradient became NaN/Inf at iteration {i}")
    b.record()
    torch.cuda.synchronize()
    return a.elapsed_time(b) / iters


def count_kernels(ph, iters):
    try:
        from torch.profiler import profile, ProfilerActivity
        with profile(activities=[ProfilerActivity.CUDA]) as prof:
            for i in range(5):
                ph.iteration(i % iters)
            torch.cuda.synchronize()
        return sum(1 for e in prof.events() if e.device_type == torch.autograd.DeviceType.CUDA) / 5.0
    except Exception:  # profiler unavailable: leave the count out
        return None


def time_denoiser(c, shapes, iters):
    """ms per iteration of the stand-in alone: the same calls (shapes, guidance) an iteration makes."""
    args = []
    for (n, ch, h, w, g) in shapes:
        args.append((torch.randn(n, ch, h, w, device=DEV), torch.randn(n, ch, h, w, device=DEV), g))
    sa, s1a = 0.7, math.sqrt(1 - 0.49)
    run = lambda: [c.denoise(x, t, sa, s1a, g) for (x, t, g) in args]
    with torch.no_grad():
        for _ in range(20):
            run()
        torch.cuda.synchronize()
        a, b = events()
        a.record()
        for _ in range(iters):
            run()
        b.record()
        torch.cuda.synchronize()
    return a.elapsed_time(b) / iters


def main():
    if len(sys.argv) < 2:
        print("usage: pipeline_torch.py WORKDIR (written by bench/pipeline.ts)", file=sys.stderr)
        return 2
    work = sys.argv[1]
    with open(os.path.join(work, "settings.json")) as f:
        cfg = json.load(f)
    if not torch.cuda.is_available():
        print(json.dumps({"error": "no CUDA device for PyTorch"}))
        return 1
    iters, warmup = int(cfg["iterations"]), int(cfg.get("warmup", 20))
    torch.backends.cuda.matmul.allow_tf32 = False
    c = Common(work, cfg)
    out = {"torch": torch.__version__, "nvdiffrast": getattr(dr, "__version__", None) or getattr(sys.modules.get("nvdiffrast"), "__version__", "?"),
           "device": torch.cuda.get_device_name(0), "vertices": c.V, "triangles": c.T, "phases": {}}
    kinds = {"geometry": Geometry, "texture/latent": TextureLatent, "texture/rgb": TextureRgb}
    for name in cfg["phases"]:
        ph = kinds[name](c, cfg, iters)
        ms = time_phase(ph, iters, warmup)
        out["phases"][name] = {"msPerIter": ms, "denoiseMs": time_denoiser(c, ph.denoise_shapes, max(iters, 200)), "iterations": iters,
                               "kernelsPerIter": count_kernels(ph, iters) if cfg.get("countKernels", True) else None}
        del ph
        torch.cuda.empty_cache()
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
