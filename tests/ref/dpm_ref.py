#!/usr/bin/python3
"""Reference ("oracle") of DPM-Solver++ multistep sampling for DiT, for `dit sample --sampler dpm++`.

Written from the math for the semantics of diffusers' DPMSolverMultistepScheduler (>= 0.27) in
DiT's configuration: 1000 training steps, linear betas 1e-4..0.02 (float64, dit-reference.md 3.2),
prediction_type epsilon, algorithm_type dpmsolver++, solver_type midpoint, lower_order_final True,
euler_at_final False, final_sigmas_type "zero", timestep_spacing "linspace", lambda_min_clipped
-inf, solver_order 1/2/3, use_karras_sigmas optional. The DiT model is dit_ref.py's (imported).

Run with Debian's PyTorch (1.13, CPU):  /usr/bin/python3 tests/ref/dpm_ref.py SUBCOMMAND ...

  sample   CONFIG --weights CKPT --noise Z.npy --labels 1,2|Y.npy --steps N --order K [--karras]
           [--cfg-scale 4.0] [--dtype float64|float32] [--trajectory T.npy] [--threads 1] -o OUT.npy
           OUT float32 [N,C,H,W] = the final latents (CONFIG as for dit_ref.py). Prints only errors.
  schedule --steps N [--karras] [--order K]   JSON: timesteps, float32 sigmas (N+1), step orders
  check-diffusers [--dir DIR] [--install]     schedules and loops against diffusers given our float64
           abar (its own float32 betas move sigmas by up to 8e-5: reported); imported from DIR, --install
           pip-installs the pinned set there; SKIP (exit 0) without it, exit 1 on a mismatch
  selftest hand-computed schedules, order 1 == DDIM eta 0, analytic convergence; exit 1 on failure

Semantics: set_timesteps (schedule), step_order (1 at i = 0 and at the last step, whose sigma is 0:
the result is that step's x0 prediction), DPMSolver.step (the updates). eps = the model's first
in_channels output channels at the integer timestep timesteps[i]; with cfg-scale > 1 dit_ref's
forward_with_cfg over [x; x], [y; null] (the official recipe, guided channels only). Float64
throughout (the model itself float32) unless --dtype float32 (diffusers' float32 arithmetic).
"""

import argparse
import itertools
import json
import math
import os
import subprocess
import sys
import tempfile

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dit_ref  # noqa: E402  (the model)
import sample_ref  # noqa: E402  (the float64 betas; the official DDIM loop for the selftest)

DTYPES = {"float64": torch.float64, "float32": torch.float32}
DIFFUSERS_PINS = ("diffusers==0.27.2 huggingface_hub==0.20.3 safetensors==0.4.2 filelock==3.13.1 regex==2023.12.25 "
                  "importlib_metadata==7.0.1 zipp==3.17.0 tqdm==4.66.1 fsspec==2023.12.2 packaging==23.2").split()
DIFFUSERS_CONFIG = dict(num_train_timesteps=1000, beta_start=1e-4, beta_end=0.02, beta_schedule="linear",
                        prediction_type="epsilon", algorithm_type="dpmsolver++", solver_type="midpoint",
                        lower_order_final=True, euler_at_final=False, final_sigmas_type="zero",
                        timestep_spacing="linspace", lambda_min_clipped=-np.inf)


# ---- schedule ------------------------------------------------------------------------------------
def train_sigmas():
    """sigma_k = sqrt((1 - abar_k) / abar_k), k = 0..999, float64."""
    abar = np.cumprod(1.0 - sample_ref.linear_betas())
    return np.sqrt((1.0 - abar) / abar)


def karras(sig_all, n, rho=7.0):
    """Karras et al. (2022): rho-spaced between sigma_max = sig_all[-1] and sigma_min = sig_all[0]."""
    lo, hi = sig_all[0] ** (1 / rho), sig_all[-1] ** (1 / rho)
    ramp = np.linspace(0, 1, n)
    return (hi + ramp * (lo - hi)) ** rho


def sigma_to_t(sig, sig_all):
    """Fractional timestep of each sigma: log sigma interpolated linearly in log sig_all."""
    logs = np.log(sig_all)
    d = np.log(sig)[None, :] - logs[:, None]
    low = np.minimum(np.cumsum(d >= 0, axis=0).argmax(axis=0), len(logs) - 2)
    w = np.clip((logs[low] - np.log(sig)) / (logs[low] - logs[low + 1]), 0, 1)
    return (1 - w) * low + w * (low + 1)


def set_timesteps(n, use_karras=False):
    """-> (timesteps int64 [n], sigmas float32 [n+1], the last one 0)."""
    if n < 1:
        raise ValueError("--steps must be >= 1")
    sig_all = train_sigmas()
    ts = np.linspace(0, len(sig_all) - 1, n + 1).round()[::-1][:-1].astype(np.int64)
    if use_karras:
        sig = karras(sig_all, n)
        ts = sigma_to_t(sig, sig_all).round().astype(np.int64)
    else:
        sig = np.interp(ts, np.arange(len(sig_all)), sig_all)
    return ts, np.append(sig, 0.0).astype(np.float32)


def step_order(i, n, order, final_zero=True):
    """The order step i of n takes (warm-up, lower_order_final with a zero final sigma)."""
    if order == 1 or i == 0 or (i == n - 1 and (final_zero or n < 15)):
        return 1
    if order == 2 or i == 1 or (i == n - 2 and n < 15):
        return 2
    return 3


# ---- solver --------------------------------------------------------------------------------------
class DPMSolver:
    """DPM-Solver++ (data prediction) multistep with the midpoint second-order update."""

    def __init__(self, sigmas, order, dtype=torch.float64, final_zero=None):
        if order not in (1, 2, 3):
            raise ValueError("--order must be 1, 2 or 3")
        self.sig = torch.from_numpy(np.asarray(sigmas)).to(dtype)
        self.n, self.order, self.dtype = len(sigmas) - 1, order, dtype
        self.final_zero = bool(sigmas[-1] == 0) if final_zero is None else final_zero
        self.m, self.lam = [], []                      # x0 predictions and lambdas, latest last

    def coeffs(self, k):
        s = self.sig[k]
        alpha = 1 / torch.sqrt(s * s + 1)
        return alpha, s * alpha, torch.log(alpha) - torch.log(s * alpha)

    def step(self, i, x, eps):
        a_s, s_s, lam_s = self.coeffs(i)
        m0 = (x - s_s * eps) / a_s
        self.m, self.lam = (self.m + [m0])[-3:], (self.lam + [lam_s])[-3:]
        if float(self.sig[i + 1]) == 0:                # lambda_t = inf: first order gives m0 exactly
            return m0
        a_t, s_t, lam_t = self.coeffs(i + 1)
        h = lam_t - lam_s
        em1 = torch.exp(-h) - 1
        k = step_order(i, self.n, self.order, self.final_zero)
        x = (s_t / s_s) * x - a_t * em1 * m0
        if k == 2:
            r0 = (lam_s - self.lam[-2]) / h
            x = x - 0.5 * a_t * em1 * ((m0 - self.m[-2]) / r0)
        elif k == 3:
            m1, m2 = self.m[-2], self.m[-3]
            r0, r1 = (lam_s - self.lam[-2]) / h, (self.lam[-2] - self.lam[-3]) / h
            d10, d11 = (m0 - m1) / r0, (m1 - m2) / r1
            d1 = d10 + r0 / (r0 + r1) * (d10 - d11)
            d2 = (d10 - d11) / (r0 + r1)
            x = x + a_t * (em1 / h + 1) * d1 - a_t * ((em1 + h) / (h * h) - 0.5) * d2
        return x


def solve(eps_fn, x, timesteps, sigmas, order, dtype=torch.float64, on_step=None, final_zero=None):
    """The full loop. eps_fn(x, t, i) -> eps (any float array shaped like x)."""
    solver = DPMSolver(sigmas, order, dtype, final_zero)
    x = torch.as_tensor(np.asarray(x)).to(dtype)
    for i, t in enumerate(timesteps):
        x = solver.step(i, x, torch.as_tensor(np.asarray(eps_fn(x.numpy(), int(t), i))).to(dtype))
        if on_step is not None:
            on_step(i, x.numpy())
    return x.numpy()


def sample(model, cfg, z, labels, steps, order, use_karras=False, cfg_scale=4.0, dtype=torch.float64,
           trajectory=None, model_hook=None):
    """DiT sampling: z float32 [N,C,H,W], labels int [N] -> float32 [N,C,H,W]."""
    N, C, L = z.shape[0], cfg["in_channels"], cfg["latent_size"]
    if z.shape != (N, C, L, L):
        raise ValueError("noise: shape %s, want [N, %d, %d, %d]" % (z.shape, C, L, L))
    labels, rows = np.asarray(labels), model.y_embedder.embedding_table.num_embeddings
    if labels.shape != (N,) or not np.issubdtype(labels.dtype, np.integer) or not 0 <= labels.min() <= labels.max() < rows:
        raise ValueError("labels: want %d ints in [0, %d), got %s %s" % (N, rows, labels.dtype, labels.tolist()))
    ts, sig = set_timesteps(steps, use_karras)
    guide = cfg_scale if cfg_scale is not None and cfg_scale > 1 else None

    def eps_fn(x, t, i):
        x32, tt = x.astype(np.float32), np.full(N, t, dtype=np.int64)
        if model_hook is not None:
            model_hook(x32, tt)
        return dit_ref.run_forward(model, x32, tt, labels, guide)[:, :C]   # drop learned sigma

    on_step = (lambda i, x: trajectory.append(x.astype(np.float32))) if trajectory is not None else None
    return solve(eps_fn, z, ts, sig, order, dtype, on_step).astype(np.float32)


def parse_labels(text):
    if text.endswith(".npy"):
        return np.load(text)
    if not all(v.strip().lstrip("-").isdigit() for v in text.split(",")):
        raise ValueError("--labels takes comma-separated integers or a .npy file, got %r" % text)
    return np.array([int(v) for v in text.split(",")], dtype=np.int64)


# ---- cross-check with diffusers ------------------------------------------------------------------
def check_diffusers(a):
    """Schedules and full loops (fake model eps = tanh(x)/2 + t/1000) against diffusers itself."""
    fake_eps = lambda x, t: np.tanh(x) * 0.5 + t / 1000.0    # noqa: E731
    d = a.dir
    if d and a.install and not os.path.isdir(os.path.join(d, "diffusers")):
        cmd = [sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check", "--no-deps",
               "--timeout", "20", "--retries", "1", "--target", d] + DIFFUSERS_PINS
        try:
            subprocess.run(cmd, check=True, timeout=300, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        except (subprocess.SubprocessError, OSError) as e:
            print("SKIP diffusers cross-check: pip install of %s failed (%s)" % (DIFFUSERS_PINS[0], e))
            return 0
    if d:
        sys.path.insert(0, d)
    try:
        import diffusers
        from diffusers import DPMSolverMultistepScheduler
    except Exception as e:   # noqa: BLE001 (any import failure means: not available)
        print("SKIP diffusers cross-check: cannot import diffusers (%s: %s)" % (type(e).__name__, e))
        return 0
    abar64 = torch.from_numpy(np.cumprod(1.0 - sample_ref.linear_betas()))
    fails, x0 = 0, np.random.default_rng(0).standard_normal((2, 4, 8, 8)).astype(np.float32)
    for karr, order, n in itertools.product((False, True), (1, 2, 3), (1, 2, 5, 10, 14, 15, 25, 50)):
        sch = DPMSolverMultistepScheduler(solver_order=order, use_karras_sigmas=karr, **DIFFUSERS_CONFIG)
        sch.set_timesteps(n)                       # diffusers' own float32 betas
        native_ts, native_sig = sch.timesteps.numpy().copy(), sch.sigmas.numpy().copy()
        sch.alphas_cumprod = abar64                # the project's float64 schedule
        sch.set_timesteps(n)
        ts, sig = set_timesteps(n, karr)
        ok_sched = np.array_equal(sch.timesteps.numpy(), ts) and np.array_equal(sch.sigmas.numpy(), sig)
        xd = torch.from_numpy(x0)
        for t in sch.timesteps:
            eps = torch.from_numpy(fake_eps(xd.numpy(), int(t)).astype(np.float32))
            xd = sch.step(eps, t, xd).prev_sample
        xd = xd.numpy().astype(np.float64)
        rel = {k: float(np.linalg.norm(solve(lambda x, t, i: fake_eps(x, t), x0, ts, sig, order, dt) - xd)
                        / np.linalg.norm(xd)) for k, dt in DTYPES.items()}
        nat = float(np.abs(native_sig[:-1] / sig[:-1] - 1).max())
        ok = ok_sched and rel["float64"] <= 1e-6 and rel["float32"] <= 1e-6
        fails += not ok
        print("%s order %d steps %2d karras %d: schedule %s, loop rel err f64 %.2e f32 %.2e (diffusers' "
              "float32 betas: timesteps %s, sigmas rel %.1e)" % ("ok  " if ok else "FAIL", order, n, karr,
              "equal" if ok_sched else "DIFFERS", rel["float64"], rel["float32"],
              "equal" if np.array_equal(native_ts, ts) else "differ", nat), flush=True)
    print("diffusers %s cross-check: %d failed" % (diffusers.__version__, fails))
    return 1 if fails else 0


# ---- selftest ------------------------------------------------------------------------------------
def selftest_schedule(st):
    abar = itertools.accumulate((1 - (1e-4 + k * (0.02 - 1e-4) / 999) for k in range(1000)), lambda p, v: p * v)
    hand = [math.sqrt((1 - v) / v) for v in abar]    # plain Python floats, no numpy
    ts, sig = set_timesteps(10)
    ts25 = set_timesteps(25)[0].tolist()
    st.check(ts.tolist() == [999, 899, 799, 699, 599, 500, 400, 300, 200, 100] and ts.dtype == np.int64
             and ts25 == [round(k * 999 / 25) for k in range(25, 0, -1)],
             "10 steps: timesteps %s; 25 steps: round(k * 39.96), k = 25..1" % ts.tolist())
    st.check(sig.dtype == np.float32 and len(sig) == 11 and sig[-1] == 0
             and all(abs(float(sig[k]) / hand[t] - 1) < 1e-7 for k, t in enumerate(ts))
             and abs(float(sig[0]) - 157.407280810408) < 2e-5,       # sqrt_recipm1_alphas_cumprod[999], ref 3.3
             "10 steps: sigmas = float32 sqrt((1-abar)/abar) at the timesteps, then 0 (%.6f .. %.6f)"
             % (sig[0], sig[-2]))
    kt, ks = set_timesteps(10, True)
    rho = [hand[999] ** (1 / 7) + r / 9 * (hand[0] ** (1 / 7) - hand[999] ** (1 / 7)) for r in range(10)]
    st.check(all(abs(float(ks[k]) / rho[k] ** 7 - 1) < 1e-7 for k in range(10)) and ks[-1] == 0
             and kt[0] == 999 and kt[-1] == 0 and (np.diff(kt) <= 0).all(),
             "karras 10: rho-7 sigmas %.4f .. %.6f, timesteps %s" % (ks[0], ks[-2], kt.tolist()))
    sa = train_sigmas()
    mid = math.exp((math.log(sa[300]) + math.log(sa[301])) / 2)
    got = sigma_to_t(np.array([sa[0], sa[300], mid, sa[999], 1e-9, 1e9]), sa)
    st.check(np.allclose(got, [0, 300, 300.5, 999, 0, 999], rtol=0, atol=1e-9),
             "sigma_to_t: exact at table sigmas, log-linear between, clipped (%s)" % np.round(got, 6).tolist())
    st.check([step_order(i, 10, 3) for i in range(10)] == [1, 2, 3, 3, 3, 3, 3, 3, 2, 1]
             and [step_order(i, 25, 3) for i in range(25)] == [1, 2] + [3] * 22 + [1]
             and [step_order(i, 10, 2) for i in range(10)] == [1] + [2] * 8 + [1],
             "step orders: warm-up, lower_order_final (N < 15), final step first order")


def selftest_solver(st):
    """The update formulas against exact solutions. (1) Gaussian data N(0, s2): the ODE scales
    x/alpha by sqrt(s2 + sigma^2); sigmas log-spaced 80 -> 0.5, no zero final step. (2) One
    third-order step (i = 2 of 5) when x0 = c0 + c1 u + c2 u^2, u = lambda - lambda_s, is exactly
    (st/ss) x_s + a_t [c0 (1 - e^-h) + c1 (h - 1 + e^-h) + c2 (h^2 - 2h + 2 - 2 e^-h)], except that
    the D2 term of the formula (and of diffusers) carries half the c2 term."""
    s2, x = 0.25, np.random.default_rng(1).standard_normal(64)
    a = lambda v: 1 / math.sqrt(v * v + 1)

    def err(order, n):
        sig = np.exp(np.linspace(math.log(80), math.log(0.5), n + 1))
        eps = lambda x, t, i: x * sig[i] / a(sig[i]) / (s2 + sig[i] ** 2)
        out = solve(eps, x, np.zeros(n, np.int64), sig, order, final_zero=False)
        exact = x / a(sig[0]) * math.sqrt((s2 + sig[-1] ** 2) / (s2 + sig[0] ** 2)) * a(sig[-1])
        return float(np.linalg.norm(out - exact) / np.linalg.norm(exact))

    ns = (32, 64, 128, 256, 512)
    e = {k: [err(k, n) for n in ns] for k in (1, 2, 3)}
    rate = {k: [math.log2(v[j] / v[j + 1]) for j in range(len(ns) - 1)] for k, v in e.items()}
    for k in (1, 2, 3):
        st.check(min(rate[k]) > k - 0.1 if k < 3 else rate[3][-1] > 1.6 and all(c < b / 5 for b, c in zip(e[2], e[3])),
                 "Gaussian data, order %d, %s steps: rel err %s, rates %s%s" % (k, ns, " ".join("%.1e" % v for v in e[k]),
                 " ".join("%.2f" % v for v in rate[k]), " (5-20x below order 2; rate -> 2)" if k == 3 else ""))
    sg = np.array([20.0, 8.0, 3.0, 1.2, 0.5, 0.2])
    ls, h = -math.log(sg[2]), math.log(sg[2] / sg[3])
    ex, at = math.exp(-h), a(sg[3])
    for c in ((0.3, 0.7, 0.0), (0.3, 0.7, 0.6)):
        f = lambda v: c[0] + c[1] * (-math.log(v) - ls) + c[2] * (-math.log(v) - ls) ** 2
        xs = []
        solve(lambda x, t, i: (x / a(sg[i]) - f(sg[i])) / sg[i], np.ones(1), np.zeros(5, np.int64), sg, 3,
              final_zero=False, on_step=lambda i, x: xs.append(float(x[0])))
        q = at * c[2] * (h * h - 2 * h + 2 - 2 * ex)
        exact = sg[3] * at / (sg[2] * a(sg[2])) * xs[1] + at * (c[0] * (1 - ex) + c[1] * (h - 1 + ex)) + q
        st.check(abs(xs[2] - (exact - q / 2)) < 1e-12, "third-order step, x0 = %g + %g u + %g u^2: exact%s"
                 % (c + (" but for half the u^2 term" if c[2] else "",)))


def selftest_sampling(st, tmp):
    cfg = dit_ref.tiny_config()
    model = dit_ref.build_model(cfg).eval()
    model.load_state_dict(dit_ref.random_state_dict(cfg, 3))
    z = np.random.default_rng(4).standard_normal((2, 4, 8, 8), dtype=np.float32)
    y = np.array([1, 2])
    for steps, karr in ((10, False), (25, False), (10, True)):
        # sample_ref's official DDIM (eta 0), abar = 1/(1 + sigma^2) at the timesteps, final abar_prev 1
        ts, sig = set_timesteps(steps, karr)
        abar = 1 / (1 + sig[:-1][::-1].astype(np.float64) ** 2)
        diff = sample_ref.Diffusion(sample_ref.Schedule(1 - abar / np.append(1.0, abar[:-1]), ts[::-1].tolist()),
                                    cfg["learn_sigma"])
        fn, zt = sample_ref.make_model_fn(model, y, 4.0)[0], torch.from_numpy(z)
        with torch.no_grad():
            ref = diff.loop(fn, torch.cat([zt, zt]), lambda i: torch.zeros(4, 4, 8, 8), "ddim", 0.0)[:2].numpy()
        got = sample(model, cfg, z, y, steps, 1, karr, 4.0)
        rel = float(np.linalg.norm(got - ref) / np.linalg.norm(ref))
        st.check(rel < 1e-5, "order 1, %d steps%s, cfg 4 == official DDIM eta 0 at the same "
                 "timesteps (rel %.1e)" % (steps, " karras" if karr else "", rel))
    seen = []
    a = sample(model, cfg, z, y, 10, 3, False, 4.0, model_hook=lambda x, t: seen.append(t.tolist()))
    st.check(seen == [[t, t] for t in set_timesteps(10)[0].tolist()] and np.isfinite(a).all(),
             "the model sees each step's integer timestep, N rows (std of the result %.3g)" % a.std())
    for order in (2, 3):
        b, c = (sample(model, cfg, z, y, 25, order, True, 4.0, dtype=dt) for dt in (torch.float32, torch.float64))
        rel = float(np.linalg.norm(b - c) / np.linalg.norm(c))
        st.check(rel < 1e-4, "order %d, 25 karras steps: float32 arithmetic within %.1e of float64" % (order, rel))
    c, w, zp, out = (os.path.join(tmp, f) for f in ("tiny.json", "bare.pt", "z.npy", "out.npy"))
    with open(c, "w") as fh:
        json.dump(cfg, fh)
    torch.save(model.state_dict(), w)
    np.save(zp, z)
    main(["sample", c, "--weights", w, "--noise", zp, "--labels", "1,2", "--steps", "10", "--order", "3", "-o", out])
    st.check(np.array_equal(np.load(out), a), "sample CLI == function (order 3, 10 steps, cfg 4)")


# ---- CLI -----------------------------------------------------------------------------------------
def cmd_sample(a):
    torch.set_num_threads(a.threads)
    cfg = dit_ref.load_config(a.config)
    model, traj = dit_ref.model_from_checkpoint(cfg, a.weights), [] if a.trajectory else None
    out = sample(model, cfg, np.load(a.noise), parse_labels(a.labels), a.steps, a.order, a.karras, a.cfg_scale,
                 DTYPES[a.dtype], traj)
    np.save(a.output, out)
    if traj is not None:
        np.save(a.trajectory, np.stack(traj))


def cmd_schedule(a):
    ts, sig = set_timesteps(a.steps, a.karras)
    d = dict(steps=a.steps, karras=a.karras, timesteps=ts.tolist(), sigmas=[float(v) for v in sig])
    if a.order:
        d["order"], d["step_orders"] = a.order, [step_order(i, len(ts), a.order) for i in range(len(ts))]
    print(json.dumps(d))


def cmd_selftest(a):
    torch.set_num_threads(1)
    st = dit_ref.SelfTest()
    for part in (selftest_schedule, selftest_solver):
        part(st)
    with tempfile.TemporaryDirectory() as tmp:
        selftest_sampling(st, tmp)
    return st.finish()


def main(argv=None):
    ap = argparse.ArgumentParser(description="DPM-Solver++ reference for DiT sampling.",
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    sub = ap.add_subparsers(dest="cmd", required=True)
    sched = sub.add_parser("schedule", help="timesteps and sigmas as JSON")
    sched.add_argument("--order", type=int, default=0, choices=(0, 1, 2, 3))
    sched.set_defaults(func=cmd_schedule)
    p = sub.add_parser("sample", help="DPM-Solver++ sampling of a DiT from injected noise")
    for q in (p, sched):
        q.add_argument("--steps", type=int, required=True)
        q.add_argument("--karras", action="store_true")
    p.add_argument("config")
    for name, hlp in (("--weights", "any checkpoint dit_ref.py loads"), ("--noise", "z.npy float32 [N,C,H,W]"),
                      ("--labels", "comma list (1,2) or an int .npy [N]")):
        p.add_argument(name, required=True, help=hlp)
    p.add_argument("--order", type=int, default=2, choices=(1, 2, 3))
    p.add_argument("--cfg-scale", type=float, default=4.0, help="> 1: guidance (default 4)")
    p.add_argument("--dtype", choices=sorted(DTYPES), default="float64", help="solver arithmetic")
    p.add_argument("--trajectory", default=None, help="also write the state after every step")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("-o", "--output", required=True)
    p.set_defaults(func=cmd_sample)
    p = sub.add_parser("check-diffusers", help="compare with diffusers' DPMSolverMultistepScheduler")
    p.add_argument("--dir", default=None, help="folder diffusers is imported from (pip --target)")
    p.add_argument("--install", action="store_true", help="pip-install the pinned set into --dir if missing")
    p.set_defaults(func=check_diffusers)
    sub.add_parser("selftest", help="internal checks (exit 1 on failure)").set_defaults(func=cmd_selftest)
    a = ap.parse_args(argv)
    try:
        return a.func(a) or 0
    except ValueError as e:
        print("dpm_ref.py %s: error: %s" % (a.cmd, e), file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
