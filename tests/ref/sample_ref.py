#!/usr/bin/python3
"""PyTorch/numpy reference of the OFFICIAL DiT diffusion sampling (facebookresearch/DiT `diffusion/`)
for the ditc sampler tests.

Implements /work/shared/docs/dit-reference.md section 3 (cited below as "ref X.Y"): the float64 linear
schedule (3.2), timestep respacing incl. Python's round-half-to-even and "ddimN" (3.3), the
learned-range / fixed-large variance (3.4), ancestral sampling (3.5) and DDIM (3.6), plus the
classifier-free guidance recipe of sample.py (1.13, 4.1). The DiT model itself is NOT re-implemented:
it is dit_ref.py (same folder), imported as a module.

Run it with Debian's PyTorch (1.13, CPU):  /usr/bin/python3 tests/ref/sample_ref.py SUBCOMMAND ...

Subcommands
  tables   SPEC --out T.json
           SPEC is a respacing string exactly as create_diffusion() takes it: "250", "25",
           "10,20,30", "ddim50", or "" (all 1000 steps). Writes the float64 arrays of the respaced
           GaussianDiffusion (repr-exact JSON floats) and the int timestep_map.
  noise    CONFIG --batch N --steps-count K --seed S --out-dir DIR
           z.npy float32 [N,C,H,W], step_noise.npy float32 [K,N,C,H,W] (standard normal) and
           labels.npy int64 [N] in [0, num_classes), drawn in this order from one
           numpy Generator(PCG64(S)).
  sample   CONFIG --weights CKPT --noise Z.npy --step-noise S.npy --labels Y.npy -o OUT.npy
           [--sampler ddpm|ddim] [--steps SPEC (250)] [--eta 0.0] [--cfg-scale 4.0]
           [--trajectory TRAJ.npy] [--threads 1]
           The official sampler with injected noise; OUT.npy float32 [N,C,H,W] = the final latents.
           --trajectory also writes the state after every step, float32 [K,N,C,H,W].
  selftest table checks against ref 3.3 and tiny end-to-end runs; exit status 1 on failure.

CONFIG is the compiler's `ditc SPEC --info --json` output saved to a file, or a .dit path (as in
dit_ref.py). CKPT is any checkpoint form dit_ref.py loads (bare .pt, train.pt -> "ema",
official or diffusers safetensors, f16/bf16 widened exactly).

Sampling semantics (mirroring sample.py / sample_ddp.py + gaussian_diffusion.py):
  * Float32 tensors throughout; every schedule coefficient is gathered from its float64 array at the
    respaced index k and cast to float32 per use (_extract_into_tensor, ref 3.2 / 7.9).
  * The model (dit_ref.DiT, eval, float32) receives the ORIGINAL timestep timestep_map[k] (int64),
    never k (ref 3.3, 7.10).
  * Step i = 0, 1, ..., K-1 runs at respaced index k = K-1-i; step i consumes noise slice S[i]
    (every step, including the last one, ref 3.5 / 7.16), but noise is only ADDED when k != 0
    (ddpm), or multiplied by sigma, which is 0 for eta = 0 (ddim).
  * cfg-scale > 1 (sample.py recipe, ref 4.1): state = cat([z, z]), y = cat([labels, null * N]) with
    null = num_classes, model = forward_with_cfg(x, t, y, cfg_scale) (only the config's
    guided_channels are guided, ref 1.13); the first N rows are returned.
    Per-step noise under CFG: the official code draws fresh randn for all 2N rows. Here the 2N-row
    noise is cat([S[i], S[i]]), i.e. the kept rows' noise is reused for the discarded half. This is
    exactly equivalent for the kept rows: row r < N of the next state depends only on rows < N of
    the state, model output and noise (forward_with_cfg rebuilds both halves from x[:N], and the
    diffusion arithmetic is row-wise), so the C runtime, which tracks only the N kept rows, can
    reproduce it. selftest checks that other second-half noise gives bit-identical results.
  * cfg-scale <= 1: plain forward with batch N, no doubling (sample_ddp.py).
  * ddpm = p_sample_loop(clip_denoised=False): learn_sigma (out_channels == 2 * in_channels) ->
    LEARNED_RANGE variance, else FIXED_LARGE (ref 3.4). ddim = ddim_sample_loop(clip_denoised=False,
    eta), eps re-derived from x0_hat (ref 3.6).

Everything is deterministic (torch runs with --threads threads, default 1).
"""

import argparse
import json
import math
import os
import sys
import tempfile

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dit_ref  # noqa: E402  (the model reference, same folder)

NUM_TRAIN_STEPS = 1000          # diffusion_steps (ref 3.1)

# =================================================================================================
# ref 3.2: base schedule (numpy float64)
# =================================================================================================


def linear_betas(num_steps=NUM_TRAIN_STEPS):
    """ref 3.2: the "linear" named schedule, scaled for num_steps (scale = 1 for 1000 steps):
    np.linspace in float64, so beta_i = start + i * step and the last element is exactly the end."""
    scale = 1000 / num_steps
    return np.linspace(scale * 0.0001, scale * 0.02, num_steps, dtype=np.float64)


class Schedule:
    """ref 3.2: all float64 arrays GaussianDiffusion derives from its betas, each computed with the
    same numpy expression (and therefore the same rounding) as the official constructor."""

    def __init__(self, betas, timestep_map):
        betas = np.array(betas, dtype=np.float64)
        assert betas.ndim == 1 and (betas > 0).all() and (betas <= 1).all(), "betas must be in (0, 1]"
        self.num_steps = len(betas)
        self.timestep_map = list(timestep_map)
        assert len(self.timestep_map) == self.num_steps
        self.betas = betas
        alphas = 1.0 - betas
        self.alphas_cumprod = np.cumprod(alphas, axis=0)
        self.alphas_cumprod_prev = np.append(1.0, self.alphas_cumprod[:-1])
        self.alphas_cumprod_next = np.append(self.alphas_cumprod[1:], 0.0)
        self.sqrt_alphas_cumprod = np.sqrt(self.alphas_cumprod)
        self.sqrt_one_minus_alphas_cumprod = np.sqrt(1.0 - self.alphas_cumprod)
        self.log_one_minus_alphas_cumprod = np.log(1.0 - self.alphas_cumprod)
        self.sqrt_recip_alphas_cumprod = np.sqrt(1.0 / self.alphas_cumprod)
        self.sqrt_recipm1_alphas_cumprod = np.sqrt(1.0 / self.alphas_cumprod - 1)
        # posterior q(x_{k-1} | x_k, x_0); its variance is 0 at k = 0, so the log is "clipped" by
        # repeating entry 1 at entry 0 (empty for a 1-step process, as upstream)
        self.posterior_variance = betas * (1.0 - self.alphas_cumprod_prev) / (1.0 - self.alphas_cumprod)
        if self.num_steps > 1:
            self.posterior_log_variance_clipped = np.log(
                np.append(self.posterior_variance[1], self.posterior_variance[1:]))
            # ref 3.4 FIXED_LARGE: [post_var_1, beta_1, beta_2, ...] and its log
            self.fixed_large_variance = np.append(self.posterior_variance[1], self.betas[1:])
            self.fixed_large_log_variance = np.log(self.fixed_large_variance)
        else:
            self.posterior_log_variance_clipped = np.array([])
            self.fixed_large_variance = self.fixed_large_log_variance = None
        self.posterior_mean_coef1 = betas * np.sqrt(self.alphas_cumprod_prev) / (1.0 - self.alphas_cumprod)
        self.posterior_mean_coef2 = ((1.0 - self.alphas_cumprod_prev) * np.sqrt(alphas)
                                     / (1.0 - self.alphas_cumprod))
        # p_mean_variance's max_log for LEARNED_RANGE (np.log(self.betas), recomputed upstream per
        # call; identical values)
        self.log_betas = np.log(self.betas)

    ARRAYS = ("betas", "alphas_cumprod", "alphas_cumprod_prev", "alphas_cumprod_next",
              "sqrt_alphas_cumprod", "sqrt_one_minus_alphas_cumprod", "log_one_minus_alphas_cumprod",
              "sqrt_recip_alphas_cumprod", "sqrt_recipm1_alphas_cumprod", "posterior_variance",
              "posterior_log_variance_clipped", "posterior_mean_coef1", "posterior_mean_coef2",
              "log_betas", "fixed_large_variance", "fixed_large_log_variance")

    def to_json_dict(self):
        """Python ints / floats (json writes floats with repr: round-trip exact)."""
        d = {"num_steps": self.num_steps, "timestep_map": [int(v) for v in self.timestep_map]}
        for name in self.ARRAYS:
            arr = getattr(self, name)
            d[name] = None if arr is None else [float(v) for v in arr]
        return d


# =================================================================================================
# ref 3.3: timestep respacing
# =================================================================================================


def space_timesteps(num_steps, spec):
    """ref 3.3: the kept original timesteps (sorted list) for a respacing string.

    "" / None -> all num_steps (create_diffusion passes [diffusion_steps]).
    "ddimN"   -> range(0, num_steps, s) for the smallest integer stride s giving exactly N steps.
    "a,b,..." -> num_steps split into len() near-equal sections (the first num_steps % len get one
                 more step); in a section of `size` steps with `count` picks, a float accumulator
                 starts at 0.0 and grows by (size-1)/(count-1) (1 if count <= 1) after each pick;
                 pick = section_start + round(acc), Python's round = half-to-EVEN on the double."""
    if spec is None or spec == "":
        counts = [num_steps]
    else:
        if spec.startswith("ddim"):
            want = int(spec[len("ddim"):])
            for stride in range(1, num_steps):
                if len(range(0, num_steps, stride)) == want:
                    return list(range(0, num_steps, stride))
            raise ValueError("cannot create exactly %d steps with an integer stride" % want)
        counts = [int(s) for s in spec.split(",")]
    size_per, extra = divmod(num_steps, len(counts))
    start, kept = 0, []
    for i, count in enumerate(counts):
        size = size_per + (1 if i < extra else 0)
        if size < count:
            raise ValueError("cannot divide a section of %d steps into %d" % (size, count))
        stride = 1 if count <= 1 else (size - 1) / (count - 1)
        acc = 0.0
        for _ in range(count):
            kept.append(start + round(acc))
            acc += stride
        start += size
    return sorted(set(kept))


def respaced_schedule(spec, num_steps=NUM_TRAIN_STEPS):
    """ref 3.3 (SpacedDiffusion): walk the base abar in increasing index order; for each kept index
    i: new_beta = 1 - abar_i / abar_last_kept (abar_last_kept starts at 1.0), timestep_map += [i].
    Then every array of ref 3.2 is recomputed from the new betas."""
    keep = set(space_timesteps(num_steps, spec))
    base = Schedule(linear_betas(num_steps), range(num_steps))
    last, new_betas, tmap = 1.0, [], []
    for i, abar in enumerate(base.alphas_cumprod):
        if i in keep:
            new_betas.append(1 - abar / last)
            last = abar
            tmap.append(i)
    return Schedule(np.array(new_betas), tmap)


# =================================================================================================
# ref 3.4 - 3.6: the samplers, float32 tensors with float32-cast float64 coefficients
# =================================================================================================


def extract(arr, k, shape):
    """_extract_into_tensor: gather the float64 array at the (B,) int64 index tensor k, cast to
    float32, broadcast to `shape` (by adding a float32 zero tensor, as upstream)."""
    res = torch.from_numpy(arr)[k].float()
    while res.dim() < len(shape):
        res = res[..., None]
    return res + torch.zeros(shape)


class Diffusion:
    """GaussianDiffusion / SpacedDiffusion sampling with EPSILON prediction (ref 3.1)."""

    def __init__(self, sched, learn_sigma):
        self.s = sched
        self.learn_sigma = learn_sigma            # LEARNED_RANGE if True, else FIXED_LARGE
        self.map_tensor = torch.tensor(sched.timestep_map, dtype=torch.int64)

    def p_mean_variance(self, model_fn, x, k):
        """ref 3.4. k: (B,) int64 respaced indices. clip_denoised = False (DiT scripts, ref 7.11)."""
        s = self.s
        B, C = x.shape[:2]
        out = model_fn(x, self.map_tensor[k])          # the model sees ORIGINAL timesteps (ref 3.3)
        if self.learn_sigma:
            assert out.shape == (B, 2 * C) + tuple(x.shape[2:]), "model output %s" % (tuple(out.shape),)
            eps, v = torch.split(out, C, dim=1)
            min_log = extract(s.posterior_log_variance_clipped, k, x.shape)
            max_log = extract(s.log_betas, k, x.shape)   # betas of the RESPACED process (ref 7.8)
            frac = (v + 1) / 2                          # v nominally in [-1, 1], not clamped
            log_var = frac * max_log + (1 - frac) * min_log
        else:
            assert out.shape == x.shape, "model output %s" % (tuple(out.shape),)
            eps = out
            log_var = extract(s.fixed_large_log_variance, k, x.shape)
        x0 = (extract(s.sqrt_recip_alphas_cumprod, k, x.shape) * x
              - extract(s.sqrt_recipm1_alphas_cumprod, k, x.shape) * eps)
        mean = (extract(s.posterior_mean_coef1, k, x.shape) * x0
                + extract(s.posterior_mean_coef2, k, x.shape) * x)
        return mean, log_var, x0

    def p_sample(self, model_fn, x, k, noise):
        """ref 3.5: mean + (k != 0) * exp(0.5 * log_var) * noise (noise drawn every step)."""
        mean, log_var, _ = self.p_mean_variance(model_fn, x, k)
        nonzero = (k != 0).float().view(-1, *([1] * (x.dim() - 1)))
        return mean + nonzero * torch.exp(0.5 * log_var) * noise

    def ddim_sample(self, model_fn, x, k, noise, eta):
        """ref 3.6: eps re-derived from x0_hat; sigma = eta * sqrt((1-abp)/(1-ab)) * sqrt(1-ab/abp)."""
        s = self.s
        _, _, x0 = self.p_mean_variance(model_fn, x, k)
        eps = ((extract(s.sqrt_recip_alphas_cumprod, k, x.shape) * x - x0)
               / extract(s.sqrt_recipm1_alphas_cumprod, k, x.shape))
        ab = extract(s.alphas_cumprod, k, x.shape)
        abp = extract(s.alphas_cumprod_prev, k, x.shape)
        sigma = eta * torch.sqrt((1 - abp) / (1 - ab)) * torch.sqrt(1 - ab / abp)
        mean = x0 * torch.sqrt(abp) + torch.sqrt(1 - abp - sigma ** 2) * eps
        nonzero = (k != 0).float().view(-1, *([1] * (x.dim() - 1)))
        return mean + nonzero * sigma * noise

    def loop(self, model_fn, x_T, noise_fn, sampler="ddpm", eta=0.0, on_step=None):
        """p_sample_loop / ddim_sample_loop (clip_denoised=False) from the given x_T. Step i runs at
        respaced index k = K-1-i and uses noise_fn(i) (a tensor shaped like the state)."""
        if sampler not in ("ddpm", "ddim"):
            raise ValueError("sampler must be ddpm or ddim, not %r" % sampler)
        img = x_T
        for i, kk in enumerate(reversed(range(self.s.num_steps))):
            k = torch.tensor([kk] * img.shape[0], dtype=torch.int64)
            noise = noise_fn(i)
            with torch.no_grad():
                if sampler == "ddpm":
                    img = self.p_sample(model_fn, img, k, noise)
                else:
                    img = self.ddim_sample(model_fn, img, k, noise, eta)
            if on_step is not None:
                on_step(i, img)
        return img


def make_model_fn(model, labels, cfg_scale):
    """(model_fn(x, t), batch multiplier): sample.py's forward_with_cfg over [cond; null] when
    cfg_scale > 1 (ref 1.13, 4.1), else the plain forward (sample_ddp.py with cfg 1)."""
    y = torch.from_numpy(np.asarray(labels).astype(np.int64))
    if cfg_scale is not None and cfg_scale > 1:
        if not model.y_embedder.dropout_prob > 0:
            raise ValueError("classifier-free guidance needs class_dropout > 0 (null class row)")
        y2 = torch.cat([y, torch.full_like(y, model.num_classes)])
        return (lambda x, t: model.forward_with_cfg(x, t, y2, cfg_scale)), 2
    return (lambda x, t: model(x, t, y)), 1


def sample(model, cfg, z, step_noise, labels, steps="250", sampler="ddpm", eta=0.0, cfg_scale=4.0,
           trajectory=None, model_hook=None):
    """The official sampler with injected noise (see the module docstring). numpy in, numpy out:
    z float32 [N,C,H,W], step_noise float32 [K,N,C,H,W], labels int [N] -> float32 [N,C,H,W].
    trajectory: optional list that receives the N kept rows after every step.
    model_hook(x, t): optional observer of every model call (selftest)."""
    sched = respaced_schedule(steps)
    K, N = sched.num_steps, z.shape[0]
    C, L = cfg["in_channels"], cfg["latent_size"]
    if z.shape != (N, C, L, L):
        raise ValueError("noise z: shape %s, want [N, %d, %d, %d]" % (z.shape, C, L, L))
    if step_noise.shape != (K, N, C, L, L):
        raise ValueError("step noise: shape %s, want %s (%d steps for %r)"
                         % (step_noise.shape, (K, N, C, L, L), K, steps))
    labels = np.asarray(labels)
    if labels.shape != (N,) or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError("labels: want int [%d], got %s %s" % (N, labels.dtype, labels.shape))
    rows = model.y_embedder.embedding_table.num_embeddings
    if labels.min() < 0 or labels.max() >= rows:
        raise ValueError("labels must be in [0, %d)" % rows)
    model_fn, mult = make_model_fn(model, labels, cfg_scale)
    if model_hook is not None:
        inner = model_fn

        def model_fn(x, t):
            model_hook(x, t)
            return inner(x, t)
    zt = torch.from_numpy(np.ascontiguousarray(z, dtype=np.float32))
    st = torch.from_numpy(np.ascontiguousarray(step_noise, dtype=np.float32))
    x_T = torch.cat([zt] * mult)                      # sample.py: z = cat([z, z]) under CFG
    noise_fn = lambda i: torch.cat([st[i]] * mult)    # the kept rows' noise for both halves
    on_step = None
    if trajectory is not None:
        on_step = lambda i, img: trajectory.append(img[:N].numpy().copy())
    diff = Diffusion(sched, cfg["learn_sigma"])
    out = diff.loop(model_fn, x_T, noise_fn, sampler, eta, on_step)
    return out[:N].numpy().astype(np.float32)


def make_noise(cfg, batch, steps_count, seed):
    """z [N,C,H,W], step noise [K,N,C,H,W] (float32 standard normal) and labels int64 [N] in
    [0, num_classes), drawn in this order from numpy Generator(PCG64(seed))."""
    rng = np.random.default_rng(seed)
    C, L = cfg["in_channels"], cfg["latent_size"]
    z = rng.standard_normal((batch, C, L, L), dtype=np.float32)
    s = rng.standard_normal((steps_count, batch, C, L, L), dtype=np.float32)
    y = rng.integers(0, cfg["num_classes"], size=batch, dtype=np.int64)
    return z, s, y


# =================================================================================================
# Subcommands
# =================================================================================================


def cmd_tables(a):
    sched = respaced_schedule(a.spec)
    d = dict(spec=a.spec, base_num_steps=NUM_TRAIN_STEPS, beta_start=0.0001, beta_end=0.02,
             schedule="linear")
    d.update(sched.to_json_dict())
    with open(a.out, "w") as f:
        json.dump(d, f, indent=1, allow_nan=False)
        f.write("\n")
    m = sched.timestep_map
    print("spec %r: %d steps, timestep_map %s ... %s; betas[0] %r betas[-1] %r -> %s"
          % (a.spec, sched.num_steps, m[:5], m[-5:], float(sched.betas[0]), float(sched.betas[-1]), a.out))


def cmd_noise(a):
    cfg = dit_ref.load_config(a.config)
    z, s, y = make_noise(cfg, a.batch, a.steps_count, a.seed)
    os.makedirs(a.out_dir, exist_ok=True)
    for name, arr in (("z", z), ("step_noise", s), ("labels", y)):
        np.save(os.path.join(a.out_dir, name + ".npy"), arr)
    print("z %s, step_noise %s float32, labels %s int64 -> %s" % (z.shape, s.shape, y.tolist(), a.out_dir))


def cmd_sample(a):
    torch.set_num_threads(a.threads)
    cfg = dit_ref.load_config(a.config)
    model = dit_ref.model_from_checkpoint(cfg, a.weights)
    z, s, y = np.load(a.noise), np.load(a.step_noise), np.load(a.labels)
    traj = [] if a.trajectory else None
    out = sample(model, cfg, z, s, y, a.steps, a.sampler, a.eta, a.cfg_scale, traj)
    np.save(a.output, out)
    if traj is not None:
        np.save(a.trajectory, np.stack(traj).astype(np.float32))
    print("%s %r (%d steps), cfg %g, eta %g: out %s mean %.6g std %.6g absmax %.6g -> %s"
          % (a.sampler, a.steps, s.shape[0], a.cfg_scale, a.eta, out.shape, out.mean(), out.std(),
             np.abs(out).max(), a.output))


# ---- selftest ------------------------------------------------------------------------------------

def _close_to(x, text):
    """x agrees with the decimal `text` to within 0.51 units of its last given digit."""
    mant, _, exp = text.lower().partition("e")
    digits = mant.lstrip("-").replace(".", "")
    decimals = len(mant.partition(".")[2])
    ulp = 10.0 ** (-decimals + (int(exp) if exp else 0))
    return digits != "" and abs(x - float(text)) <= 0.51 * ulp


def selftest_tables(st):
    """ref 3.3 reference values and respacing rules."""
    s = respaced_schedule("250")
    m = s.timestep_map
    st.check(m[:5] == [0, 4, 8, 12, 16] and m[-5:] == [983, 987, 991, 995, 999] and len(m) == 250,
             "'250' timestep_map %s ... %s" % (m[:5], m[-5:]))
    st.check(m == [round(k * 999 / 249) for k in range(250)], "'250' timestep_map = round(k*999/249)")
    want = [("betas", 0, "1.000000000000e-4"), ("betas", 1, "5.990655644756e-4"), ("betas", 2, "9.176029928173e-4"),
            ("betas", 249, "7.7519344992e-2"), ("alphas_cumprod", 0, "0.999900000000"),
            ("alphas_cumprod", 249, "4.035829765376e-5"),
            ("posterior_log_variance_clipped", 0, "-9.364628159803"),
            ("posterior_log_variance_clipped", 1, "-9.364628159803"),
            ("posterior_log_variance_clipped", 2, "-7.831775861328"),
            ("posterior_log_variance_clipped", 249, "-2.557231152561"),
            ("log_betas", 0, "-9.210340371976"), ("log_betas", 249, "-2.557227760966"),
            ("sqrt_recip_alphas_cumprod", 249, "157.410457251501"),
            ("sqrt_recipm1_alphas_cumprod", 249, "157.407280810408"),
            ("posterior_mean_coef1", 0, "1.000000000000"), ("posterior_mean_coef2", 0, "0.000000000000"),
            ("posterior_mean_coef1", 249, "5.12761498e-4"), ("posterior_mean_coef2", 249, "0.960455307481")]
    bad = [(n, k, t, float(getattr(s, n)[k])) for n, k, t in want if not _close_to(float(getattr(s, n)[k]), t)]
    st.check(not bad, "'250': %d reference values of ref 3.3 (mismatches: %s)" % (len(want), bad))
    base = Schedule(linear_betas(), range(1000))
    st.check(base.betas[0] == 1e-4 and base.betas[-1] == 0.02
             and base.betas[1] == 1e-4 + (0.02 - 1e-4) / 999, "base betas: linspace 1e-4 .. 0.02 (float64)")
    st.check(_close_to(base.alphas_cumprod[999], "4.0358297654e-05")
             and abs(s.alphas_cumprod[-1] / base.alphas_cumprod[999] - 1) < 1e-15,
             "base abar[999] = %r = respaced abar[249] (rel %.1e)"
             % (float(base.alphas_cumprod[999]), s.alphas_cumprod[-1] / base.alphas_cumprod[999] - 1))
    m25 = respaced_schedule("25").timestep_map
    st.check(m25 == [round(k * 41.625) for k in range(25)] and 166 in m25 and 500 in m25 and 832 in m25
             and not {167, 499, 833} & set(m25) and m25[-1] == 999,
             "'25' ties round half to even: 166.5 -> 166, 499.5 -> 500, 832.5 -> 832 (%s)" % m25)
    st.check(space_timesteps(1000, "ddim50") == list(range(0, 1000, 20)), "'ddim50' = 0, 20, ..., 980")
    m50 = space_timesteps(1000, "50")
    st.check(m50[:5] == [0, 20, 41, 61, 82] and m50[-1] == 999 and len(m50) == 50,
             "'50' = %s ... %s (differs from ddim50)" % (m50[:5], m50[-2:]))
    st.check(space_timesteps(1000, "ddim250") == list(range(0, 1000, 4))
             and space_timesteps(1000, "ddim5") == [0, 200, 400, 600, 800], "'ddim250', 'ddim5'")
    mm = space_timesteps(1000, "10,20,30")
    st.check(len(mm) == 60 and mm[:10] == [round(k * 333 / 9) for k in range(10)]
             and mm[10] == 334 and mm[29] == 666 and mm[30] == 667 and mm[-1] == 999,
             "'10,20,30': sections of 334/333/333 steps (%s ...)" % mm[:12])
    full = respaced_schedule("")
    st.check(full.timestep_map == list(range(1000))
             and np.allclose(full.betas, base.betas, rtol=1e-12, atol=0),
             "'' = all 1000 steps (respaced betas = base betas up to rounding)")
    for spec in ("ddim600", "1001", "10,10,400"):
        try:
            space_timesteps(1000, spec)
            st.check(False, "%r is rejected" % spec)
        except ValueError:
            st.check(True, "%r is rejected" % spec)
    d = json.loads(json.dumps(s.to_json_dict()))
    st.check(all(d[n] == getattr(s, n).tolist() for n in ("betas", "posterior_log_variance_clipped")),
             "JSON tables are round-trip exact")
    fl = s.fixed_large_variance
    st.check(fl[0] == s.posterior_variance[1] and np.array_equal(fl[1:], s.betas[1:]),
             "FIXED_LARGE variance = [post_var_1, beta_1, ...]")


def reference_loop_f64(run_model, sched, z, step_noise, sampler, eta, learn_sigma):
    """Independent float64 numpy transcription of ref 3.4-3.6 (for tolerance checks only). run_model
    (x float32, t int64 [N]) -> model output [N, ...] for the N kept rows."""
    s, x = sched, z.astype(np.float64)
    C = z.shape[1]
    for i, k in enumerate(reversed(range(s.num_steps))):
        t = np.full(z.shape[0], s.timestep_map[k], dtype=np.int64)
        out = run_model(x.astype(np.float32), t).astype(np.float64)
        eps = out[:, :C]
        if learn_sigma:
            frac = (out[:, C:] + 1) / 2
            logvar = frac * np.log(s.betas[k]) + (1 - frac) * s.posterior_log_variance_clipped[k]
        else:
            logvar = np.log(np.append(s.posterior_variance[1], s.betas[1:]))[k]
        ab, abp = s.alphas_cumprod[k], s.alphas_cumprod_prev[k]
        x0 = x / math.sqrt(ab) - math.sqrt(1 / ab - 1) * eps
        if sampler == "ddpm":
            mean = (s.betas[k] * math.sqrt(abp) * x0 + (1 - abp) * math.sqrt(1 - s.betas[k]) * x) / (1 - ab)
            x = mean + (np.exp(0.5 * logvar) * step_noise[i] if k else 0)
        else:
            sigma = eta * math.sqrt((1 - abp) / (1 - ab) * (1 - ab / abp))
            x = x0 * math.sqrt(abp) + math.sqrt(1 - abp - sigma ** 2) * eps + (sigma * step_noise[i] if k else 0)
    return x


def selftest_sampling(st, tmp):
    """Tiny end-to-end runs (dit_ref tiny config, random weights)."""
    cfg = dit_ref.tiny_config()
    model = dit_ref.build_model(cfg)
    model.load_state_dict(dit_ref.random_state_dict(cfg, 11))
    model.eval()
    N = 2
    z, S10, y = make_noise(cfg, N, 10, 5)
    shape = (N, cfg["in_channels"], cfg["latent_size"], cfg["latent_size"])

    # ddpm "10", cfg 4 (sample.py recipe)
    seen = []
    a = sample(model, cfg, z, S10, y, "10", "ddpm", cfg_scale=4.0,
               model_hook=lambda x, t: seen.append((tuple(x.shape), t.dtype, t.tolist())))
    b = sample(model, cfg, z, S10, y, "10", "ddpm", cfg_scale=4.0)
    st.check(a.shape == shape and a.dtype == np.float32 and np.isfinite(a).all(),
             "ddpm '10' cfg 4: output %s float32, finite (std %.3f)" % (a.shape, a.std()))
    st.check(np.array_equal(a, b), "ddpm '10' cfg 4: deterministic (bit-identical rerun)")
    tmap = respaced_schedule("10").timestep_map
    st.check([s_[2] for s_ in seen] == [[tmap[k]] * 2 * N for k in reversed(range(10))]
             and all(s_[0][0] == 2 * N and s_[1] == torch.int64 for s_ in seen),
             "model sees the 2N batch and ORIGINAL int64 timesteps %s" % [s_[2][0] for s_ in seen])
    ref = reference_loop_f64(lambda x, t: dit_ref.run_forward(model, x, t, y, 4.0),
                             respaced_schedule("10"), z, S10, "ddpm", 0.0, True)
    err = np.abs(a - ref).max() / np.abs(ref).max()
    st.check(err < 1e-4, "ddpm '10' cfg 4 == float64 transcription of ref 3.4/3.5 (rel %.1e)" % err)
    S2 = S10.copy()
    S2[-1] += 1
    st.check(np.array_equal(sample(model, cfg, z, S2, y, "10", "ddpm", cfg_scale=4.0), a),
             "ddpm: the last step's noise slice is consumed but not added")
    S2 = S10.copy()
    S2[0] += 1
    st.check(not np.allclose(sample(model, cfg, z, S2, y, "10", "ddpm", cfg_scale=4.0), a, atol=1e-3),
             "ddpm: the first step's noise slice matters")
    # CFG: the discarded half's noise does not affect the kept rows (bit-exact)
    diff = Diffusion(respaced_schedule("10"), True)
    fn, _ = make_model_fn(model, y, 4.0)
    other = np.random.default_rng(99).standard_normal(S10.shape, dtype=np.float32)
    St, Ot = torch.from_numpy(S10), torch.from_numpy(other)
    zt = torch.from_numpy(z)
    c = diff.loop(fn, torch.cat([zt, zt]), lambda i: torch.cat([St[i], Ot[i]]))[:N].numpy()
    st.check(np.array_equal(c, a), "cfg: other noise for the discarded half -> bit-identical kept rows")
    traj = []
    sample(model, cfg, z, S10, y, "10", "ddpm", cfg_scale=4.0, trajectory=traj)
    st.check(len(traj) == 10 and np.array_equal(traj[-1], a), "trajectory: 10 states, last = output")

    # cfg <= 1: plain forward, batch N
    seen.clear()
    p = sample(model, cfg, z, S10, y, "10", "ddpm", cfg_scale=1.0,
               model_hook=lambda x, t: seen.append(tuple(x.shape)))
    ref = reference_loop_f64(lambda x, t: dit_ref.run_forward(model, x, t, y),
                             respaced_schedule("10"), z, S10, "ddpm", 0.0, True)
    err = np.abs(p - ref).max() / np.abs(ref).max()
    st.check(all(s_[0] == N for s_ in seen) and err < 1e-4,
             "cfg 1: plain forward with batch N, == float64 transcription (rel %.1e)" % err)

    # ddim "ddim5", eta 0
    _, S5, _ = make_noise(cfg, N, 5, 6)
    d1 = sample(model, cfg, z, S5, y, "ddim5", "ddim", eta=0.0, cfg_scale=4.0)
    d2 = sample(model, cfg, z, S5, y, "ddim5", "ddim", eta=0.0, cfg_scale=4.0)
    st.check(d1.shape == shape and d1.dtype == np.float32 and np.isfinite(d1).all() and np.array_equal(d1, d2),
             "ddim 'ddim5' cfg 4: output %s float32, finite, deterministic" % (d1.shape,))
    st.check(np.array_equal(sample(model, cfg, z, S5 * 0 + 3, y, "ddim5", "ddim", cfg_scale=4.0), d1),
             "ddim eta 0: step noise has no effect")
    ref = reference_loop_f64(lambda x, t: dit_ref.run_forward(model, x, t, y, 4.0),
                             respaced_schedule("ddim5"), z, S5, "ddim", 0.0, True)
    err = np.abs(d1 - ref).max() / np.abs(ref).max()
    st.check(err < 1e-4, "ddim eta 0 == float64 transcription of ref 3.6 (rel %.1e)" % err)
    e1 = sample(model, cfg, z, S5, y, "ddim5", "ddim", eta=1.0, cfg_scale=4.0)
    ref = reference_loop_f64(lambda x, t: dit_ref.run_forward(model, x, t, y, 4.0),
                             respaced_schedule("ddim5"), z, S5, "ddim", 1.0, True)
    err = np.abs(e1 - ref).max() / np.abs(ref).max()
    st.check(not np.allclose(e1, d1, atol=1e-3) and err < 1e-4,
             "ddim eta 1: noise used, == float64 transcription (rel %.1e)" % err)

    # learn_sigma = False -> FIXED_LARGE variance
    fcfg = dit_ref.tiny_config(learn_sigma=False, out_channels=4)
    fcfg.pop("params")
    fmodel = dit_ref.build_model(fcfg)
    fmodel.load_state_dict(dit_ref.random_state_dict(fcfg, 12))
    fmodel.eval()
    f = sample(fmodel, fcfg, z, S10, y, "10", "ddpm", cfg_scale=4.0)
    ref = reference_loop_f64(lambda x, t: dit_ref.run_forward(fmodel, x, t, y, 4.0),
                             respaced_schedule("10"), z, S10, "ddpm", 0.0, False)
    err = np.abs(f - ref).max() / np.abs(ref).max()
    st.check(f.shape == shape and err < 1e-4, "learn_sigma false: FIXED_LARGE, == float64 transcription (rel %.1e)" % err)

    # CLI round trip: noise -> sample, same result as the function call
    cpath = os.path.join(tmp, "tiny.json")
    with open(cpath, "w") as fh:
        json.dump(cfg, fh)
    torch.save(model.state_dict(), os.path.join(tmp, "bare.pt"))
    nd = os.path.join(tmp, "n")
    main(["noise", cpath, "--batch", "2", "--steps-count", "10", "--seed", "5", "--out-dir", nd])
    z_, s_, y_ = (np.load(os.path.join(nd, n + ".npy")) for n in ("z", "step_noise", "labels"))
    st.check(np.array_equal(z_, z) and np.array_equal(s_, S10) and np.array_equal(y_, y) and y_.dtype == np.int64,
             "noise: files equal make_noise (z, step_noise float32, labels int64 %s)" % y_.tolist())
    outp = os.path.join(tmp, "out.npy")
    main(["sample", cpath, "--weights", os.path.join(tmp, "bare.pt"), "--noise", os.path.join(nd, "z.npy"),
          "--step-noise", os.path.join(nd, "step_noise.npy"), "--labels", os.path.join(nd, "labels.npy"),
          "--steps", "10", "--cfg-scale", "4", "-o", outp])
    st.check(np.array_equal(np.load(outp), a), "sample CLI == function (ddpm '10' cfg 4)")


def cmd_selftest(a):
    torch.set_num_threads(1)
    st = dit_ref.SelfTest()
    selftest_tables(st)
    with tempfile.TemporaryDirectory() as tmp:
        selftest_sampling(st, tmp)
    return st.finish()


# =================================================================================================
# CLI
# =================================================================================================


def main(argv=None):
    ap = argparse.ArgumentParser(description="Reference of the official DiT diffusion sampling.",
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    sub = ap.add_subparsers(dest="cmd", required=True)

    p = sub.add_parser("tables", help="respaced float64 schedule arrays as JSON")
    p.add_argument("spec", help='respacing string: "250", "25", "10,20,30", "ddim50", "" (1000 steps)')
    p.add_argument("--out", required=True)
    p.set_defaults(func=cmd_tables)

    p = sub.add_parser("noise", help="write z.npy, step_noise.npy, labels.npy")
    p.add_argument("config")
    p.add_argument("--batch", type=int, required=True)
    p.add_argument("--steps-count", type=int, required=True)
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--out-dir", required=True)
    p.set_defaults(func=cmd_noise)

    p = sub.add_parser("sample", help="official sampler with injected noise")
    p.add_argument("config")
    p.add_argument("--weights", required=True)
    p.add_argument("--noise", required=True, help="z.npy float32 [N,C,H,W]")
    p.add_argument("--step-noise", required=True, help="float32 [K,N,C,H,W], slice i for step i")
    p.add_argument("--labels", required=True, help="int [N]")
    p.add_argument("--sampler", choices=("ddpm", "ddim"), default="ddpm")
    p.add_argument("--steps", default="250", help="respacing string (default 250)")
    p.add_argument("--eta", type=float, default=0.0, help="DDIM eta (default 0)")
    p.add_argument("--cfg-scale", type=float, default=4.0, help="> 1: guidance (default 4, sample.py)")
    p.add_argument("-o", "--output", required=True)
    p.add_argument("--trajectory", default=None, help="also write the state after every step [K,N,C,H,W]")
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    p.set_defaults(func=cmd_sample)

    p = sub.add_parser("selftest", help="table and sampling checks (exit 1 on failure)")
    p.set_defaults(func=cmd_selftest)

    a = ap.parse_args(argv)
    try:
        return a.func(a) or 0
    except ValueError as e:           # bad spec / shapes / labels: a message, not a traceback
        print("sample_ref.py %s: error: %s" % (a.cmd, e), file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
