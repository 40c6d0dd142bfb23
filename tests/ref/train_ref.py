#!/usr/bin/python3
"""PyTorch reference of the OFFICIAL DiT training step (facebookresearch/DiT train.py +
diffusion/gaussian_diffusion.py training_losses) for the ditc training tests.

Implements /work/shared/docs/dit-reference.md 3.2 (float64 schedule, coefficients gathered at t and
cast to float32), 3.4 (learned-range variance), 3.7 (training_losses, LossType.MSE: mse + vb, vb with
frozen eps, KL in bits, decoder NLL at t == 0), 4.3 (AdamW + EMA of train.py). The model is dit_ref.py's
DiT and the schedule is sample_ref.py's, both imported (same folder), never duplicated.

Run it with Debian's PyTorch (1.13, CPU):  /usr/bin/python3 tests/ref/train_ref.py SUBCOMMAND ...

Subcommands
  inputs   CONFIG --seed S --batch N --out-dir DIR [--t-values 0,999,...] [--null-labels] [--steps K]
           x0.npy float32 [N,C,H,W] ~ U(-1.05, 1.05) (so |x0| > 0.999 occurs: both edge branches of the
           t == 0 NLL), t.npy int64 (the --t-values fill the first rows, the rest U{0..999}), y.npy int64
           (--null-labels: odd rows, or row 0 when N == 1, get the null class num_classes),
           noise.npy float32 ~ N(0,1); drawn in this order from numpy Generator(PCG64(S)).
           --steps K writes K such batches as step{k}_x0.npy, ... (k = 0..K-1, one generator) for `train`.
  loss     CONFIG --weights W --x0 X0.npy --t T.npy --y Y.npy --noise E.npy
           [--grads-out G.safetensors] [--losses-out L.npy] [--threads 1]
           x_t = sqrt_abar[t]*x0 + sqrt_1m_abar[t]*noise, per-sample training losses, loss = their mean,
           backward. The LAST stdout line is `loss <repr of the float32 mean>`. G: float32 gradients
           under the official names (all state-dict keys except the frozen pos_embed). L: float32 [N].
  train    CONFIG --weights W --batches DIR --steps K [--lr 1e-4] [--ema 0.9999] [--weight-decay 0]
           --out-dir OUT [--threads 1]
           K steps of torch.optim.AdamW(lr, (0.9, 0.999), 1e-8, weight_decay, foreach=False) on the
           batches DIR/step{k}_{x0,t,y,noise}.npy; EMA exactly as train.py (update_ema(decay=0) on a
           deepcopy, then after each step, for every named parameter incl. pos_embed,
           ema.mul_(decay).add_(param, alpha=1-decay)). Writes OUT/losses.npy (float64 [K], the mean
           loss of each step), OUT/model.safetensors, OUT/ema.safetensors (float32, official names incl.
           pos_embed), OUT/opt.safetensors ("<param>.exp_avg", "<param>.exp_avg_sq"; metadata "step").
  bench    CONFIG --batch B [--threads-list 1,2] [--iters 5] [--warmup 1] [--seed 0]
           median wall time of train.py's step (loss, backward, AdamW, EMA; every layer random)
           per torch thread count, then a JSON line {"best_ms", "best_threads"}.
  selftest autograd vs float64 finite differences (with eps frozen in vb, as the stop-gradient
           implies), losses vs an independent float64 numpy transcription of ref 3.7, t == 0 NLL branch,
           fixed-variance config, AdamW/EMA arithmetic, determinism. Exit status 1 on failure.

CONFIG is `ditc SPEC --info --json` saved to a file, or a .dit path (dit_ref.load_config). W is any
checkpoint form dit_ref.py loads. t and y may be int32 or int64 .npy files.

Semantics (official code, float32):
  * The training diffusion is create_diffusion("") = a SpacedDiffusion keeping all 1000 steps: its
    betas are RECOMPUTED as 1 - abar_i/abar_{i-1} (sample_ref.respaced_schedule("")); they differ from
    the linspace betas in the float64 last bits, but every table used here is identical once cast to f32.
  * Model in train mode, but label dropout is OFF (labels used as given; y == num_classes is the null
    row). There is no other dropout in DiT.
  * learn_sigma (out_channels == 2*in_channels): eps, v = split(out); mse = mean_flat((noise - eps)^2);
    vb from cat([eps.detach(), v]) (gradient reaches only v); loss = mse + vb. Otherwise loss = mse.
  * Expressions keep the official operation order (normal_kl, approx_standard_normal_cdf,
    discretized_gaussian_log_likelihood, mean_flat, `/ np.log(2.0)`, torch.where on t == 0).
  * The t == 0 NLL is ill-conditioned in float32: for |z| = |x0 - mean|/sigma > ~5 the cdfs round to
    1, cdf_plus - cdf_min cancels or clamps at 1e-12, so 1-ulp tanh differences move it (selftest:
    ~1e-2 rel. vs float64 with random weights). Compare t == 0 rows loosely, or keep |z| small.
  * Optimizer/EMA float32 kernels (torch 1.13 CPU, verified here): add_(b, alpha) = fmaf(alpha, b, a);
    addcmul_(b, c, value) = fmaf(value*b, c, a); addcdiv_(b, c, value) = a + (value*b)/c, no fma;
    tensor / python_scalar = x / (float)s; Python-side scalars (step_size, sqrt(bias_corr2)) are double.
Deterministic: torch runs with --threads threads (default 1).
"""

import argparse
import collections
import copy
import json
import math
import os
import statistics
import sys
import tempfile
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dit_ref  # noqa: E402  (the model and checkpoint reference, same folder)
import sample_ref  # noqa: E402  (the float64 schedule of ref 3.2/3.3)

# =================================================================================================
# ref 3.7: the official loss helpers (diffusion/losses.py, nn.py), same expressions and order
# =================================================================================================


def mean_flat(tensor):
    return tensor.mean(dim=list(range(1, len(tensor.shape))))


def normal_kl(mean1, logvar1, mean2, logvar2):
    return 0.5 * (-1.0 + logvar2 - logvar1 + torch.exp(logvar1 - logvar2)
                  + ((mean1 - mean2) ** 2) * torch.exp(-logvar2))


def approx_standard_normal_cdf(x):
    return 0.5 * (1.0 + torch.tanh(np.sqrt(2.0 / np.pi) * (x + 0.044715 * torch.pow(x, 3))))


def discretized_gaussian_log_likelihood(x, *, means, log_scales):
    assert x.shape == means.shape == log_scales.shape
    centered_x = x - means
    inv_stdv = torch.exp(-log_scales)
    plus_in = inv_stdv * (centered_x + 1.0 / 255.0)
    cdf_plus = approx_standard_normal_cdf(plus_in)
    min_in = inv_stdv * (centered_x - 1.0 / 255.0)
    cdf_min = approx_standard_normal_cdf(min_in)
    log_cdf_plus = torch.log(cdf_plus.clamp(min=1e-12))
    log_one_minus_cdf_min = torch.log((1.0 - cdf_min).clamp(min=1e-12))
    cdf_delta = cdf_plus - cdf_min
    return torch.where(x < -0.999, log_cdf_plus,
                       torch.where(x > 0.999, log_one_minus_cdf_min, torch.log(cdf_delta.clamp(min=1e-12))))


def extract(arr, t, shape, dtype=torch.float32):
    """_extract_into_tensor: float64 table gathered at t, cast (float32 officially), broadcast by
    adding zeros. dtype=float64 only for the selftest's finite differences."""
    res = torch.from_numpy(arr)[t].to(dtype)
    while res.dim() < len(shape):
        res = res[..., None]
    return res + torch.zeros(shape, dtype=dtype)


class TrainDiffusion:
    """GaussianDiffusion.training_losses for create_diffusion("") (EPSILON, MSE, LEARNED_RANGE when
    learn_sigma else FIXED_LARGE, whose variance the MSE loss never uses)."""

    def __init__(self, learn_sigma, dtype=torch.float32):
        self.s = sample_ref.respaced_schedule("")
        assert self.s.timestep_map == list(range(1000))
        self.learn_sigma = learn_sigma
        self.dtype = dtype

    def ex(self, arr, t, shape):
        return extract(arr, t, shape, self.dtype)

    def q_sample(self, x0, t, noise):
        s = self.s
        return (self.ex(s.sqrt_alphas_cumprod, t, x0.shape) * x0
                + self.ex(s.sqrt_one_minus_alphas_cumprod, t, x0.shape) * noise)

    def q_posterior(self, x0, x_t, t):
        s = self.s
        mean = (self.ex(s.posterior_mean_coef1, t, x_t.shape) * x0
                + self.ex(s.posterior_mean_coef2, t, x_t.shape) * x_t)
        return mean, self.ex(s.posterior_log_variance_clipped, t, x_t.shape)

    def p_mean_variance(self, out, x, t):
        """ref 3.4 on a given model output (clip_denoised=False)."""
        s = self.s
        C = x.shape[1]
        eps, v = torch.split(out, C, dim=1)
        min_log = self.ex(s.posterior_log_variance_clipped, t, x.shape)
        max_log = self.ex(np.log(s.betas), t, x.shape)
        frac = (v + 1) / 2
        log_var = frac * max_log + (1 - frac) * min_log
        x0 = (self.ex(s.sqrt_recip_alphas_cumprod, t, x.shape) * x
              - self.ex(s.sqrt_recipm1_alphas_cumprod, t, x.shape) * eps)
        mean, _ = self.q_posterior(x0, x, t)
        return mean, log_var

    def vb_terms_bpd(self, frozen_out, x0, x_t, t):
        true_mean, true_log_var = self.q_posterior(x0, x_t, t)
        mean, log_var = self.p_mean_variance(frozen_out, x_t, t)
        kl = normal_kl(true_mean, true_log_var, mean, log_var)
        kl = mean_flat(kl) / np.log(2.0)
        nll = -discretized_gaussian_log_likelihood(x0, means=mean, log_scales=0.5 * log_var)
        nll = mean_flat(nll) / np.log(2.0)
        return torch.where((t == 0), nll, kl), kl, nll

    def training_losses(self, model, x0, t, y, noise, frozen_eps=None):
        """Per-sample terms {"loss", "mse", ["vb", "kl", "nll"]}. frozen_eps (selftest only) replaces
        the detached eps of the vb term, to finite-difference the stop-gradient surrogate."""
        x_t = self.q_sample(x0, t, noise)
        out = model(x_t, t, y)
        terms = {}
        C = x_t.shape[1]
        if self.learn_sigma:
            assert out.shape == (x_t.shape[0], 2 * C) + tuple(x_t.shape[2:]), tuple(out.shape)
            out, v = torch.split(out, C, dim=1)
            fe = out.detach() if frozen_eps is None else frozen_eps
            frozen = torch.cat([fe, v], dim=1)
            terms["vb"], terms["kl"], terms["nll"] = self.vb_terms_bpd(frozen, x0, x_t, t)
        assert out.shape == noise.shape == x0.shape
        terms["mse"] = mean_flat((noise - out) ** 2)
        terms["loss"] = terms["mse"] + terms["vb"] if "vb" in terms else terms["mse"]
        terms["eps"] = out
        return terms


# =================================================================================================
# Model, inputs, optimizer
# =================================================================================================

def learn_sigma_of(cfg):
    return cfg["out_channels"] == 2 * cfg["in_channels"]


def train_model(cfg, weights):
    """Official weights, train mode, label dropout OFF (labels as given)."""
    model = dit_ref.model_from_checkpoint(cfg, weights)
    model.train()
    model.y_embedder.dropout_prob = 0.0
    return model


def make_batch(cfg, rng, batch, t_values=None, null_labels=False):
    C, L = cfg["in_channels"], cfg["latent_size"]
    x0 = rng.uniform(-1.05, 1.05, size=(batch, C, L, L)).astype(np.float32)
    t = rng.integers(0, 1000, size=batch, dtype=np.int64)
    if t_values:
        if len(t_values) > batch or not all(0 <= v < 1000 for v in t_values):
            raise ValueError("--t-values: at most N values in [0, 1000)")
        t[:len(t_values)] = t_values
    y = rng.integers(0, cfg["num_classes"], size=batch, dtype=np.int64)
    if null_labels:
        if not cfg["class_dropout"] > 0:
            raise ValueError("--null-labels needs class_dropout > 0 (no null row in the table)")
        y[np.arange(1, batch, 2) if batch > 1 else np.array([0])] = cfg["num_classes"]
    noise = rng.standard_normal((batch, C, L, L), dtype=np.float32)
    return x0, t, y, noise


def load_batch(cfg, x0p, tp, yp, noisep):
    x0, t, y, noise = np.load(x0p), np.load(tp), np.load(yp), np.load(noisep)
    L, C = cfg["latent_size"], cfg["in_channels"]
    N = x0.shape[0]
    if x0.shape != (N, C, L, L) or noise.shape != x0.shape or t.shape != (N,) or y.shape != (N,):
        raise ValueError("shapes: x0 %s noise %s t %s y %s (want [N,%d,%d,%d], [N])"
                         % (x0.shape, noise.shape, t.shape, y.shape, C, L, L))
    if not (np.issubdtype(t.dtype, np.integer) and np.issubdtype(y.dtype, np.integer)):
        raise ValueError("t and y must be integer arrays")
    if t.min() < 0 or t.max() >= 1000 or y.min() < 0 or y.max() > cfg["num_classes"]:
        raise ValueError("t must be in [0, 1000), y in [0, num_classes]")
    return (torch.from_numpy(x0.astype(np.float32)), torch.from_numpy(t.astype(np.int64)),
            torch.from_numpy(y.astype(np.int64)), torch.from_numpy(noise.astype(np.float32)))


def grads_of(model):
    g = collections.OrderedDict()
    for name, p in model.named_parameters():
        if p.requires_grad:
            assert p.grad is not None, "no gradient for %s" % name
            g[name] = p.grad.detach().clone()
    return g


@torch.no_grad()
def update_ema(ema_model, model, decay=0.9999):
    """train.py update_ema, verbatim: every named parameter, including the frozen pos_embed."""
    ema_params = collections.OrderedDict(ema_model.named_parameters())
    for name, param in model.named_parameters():
        ema_params[name].mul_(decay).add_(param.data, alpha=1 - decay)


def make_optimizer(model, lr, weight_decay):
    return torch.optim.AdamW(model.parameters(), lr=lr, betas=(0.9, 0.999), eps=1e-8,
                             weight_decay=weight_decay, foreach=False)


def run_training(cfg, model, batches, lr, decay, weight_decay):
    """train.py's loop on the given (x0, t, y, noise) batches; returns (losses, ema, opt)."""
    ema = copy.deepcopy(model)
    for p in ema.parameters():
        p.requires_grad = False
    update_ema(ema, model, decay=0)          # "Ensure EMA is initialized with synced weights"
    ema.eval()
    opt = make_optimizer(model, lr, weight_decay)
    diff = TrainDiffusion(learn_sigma_of(cfg))
    losses = []
    for x0, t, y, noise in batches:
        loss = diff.training_losses(model, x0, t, y, noise)["loss"].mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        update_ema(ema, model, decay)
        losses.append(float(loss))
    return losses, ema, opt


def opt_tensors(model, opt):
    out = collections.OrderedDict()
    for name, p in model.named_parameters():
        if p in opt.state:
            out[name + ".exp_avg"] = opt.state[p]["exp_avg"]
            out[name + ".exp_avg_sq"] = opt.state[p]["exp_avg_sq"]
    return out


# =================================================================================================
# Subcommands
# =================================================================================================

def cmd_inputs(a):
    cfg = dit_ref.load_config(a.config)
    tv = [int(v) for v in a.t_values.split(",")] if a.t_values else None
    rng = np.random.default_rng(a.seed)
    os.makedirs(a.out_dir, exist_ok=True)
    for k in range(a.steps or 1):
        prefix = "step%d_" % k if a.steps else ""
        x0, t, y, noise = make_batch(cfg, rng, a.batch, tv, a.null_labels)
        for name, arr in (("x0", x0), ("t", t), ("y", y), ("noise", noise)):
            np.save(os.path.join(a.out_dir, prefix + name + ".npy"), arr)
        print("%sx0 %s, t %s, y %s, |x0| > 0.999: %d -> %s" % (prefix, x0.shape, t.tolist(), y.tolist(),
                                                             int((np.abs(x0) > 0.999).sum()), a.out_dir))


def cmd_loss(a):
    torch.set_num_threads(a.threads)
    cfg = dit_ref.load_config(a.config)
    model = train_model(cfg, a.weights)
    x0, t, y, noise = load_batch(cfg, a.x0, a.t, a.y, a.noise)
    terms = TrainDiffusion(learn_sigma_of(cfg)).training_losses(model, x0, t, y, noise)
    loss = terms["loss"].mean()
    model.zero_grad(set_to_none=True)
    loss.backward()
    for i in range(len(t)):
        extra = "" if "vb" not in terms else "  vb %.9g (%s)" % (terms["vb"][i], "nll" if t[i] == 0 else "kl")
        print("row %d t %d y %d: loss %.9g  mse %.9g%s" % (i, t[i], y[i], terms["loss"][i], terms["mse"][i], extra))
    if a.losses_out:
        np.save(a.losses_out, terms["loss"].detach().numpy().astype(np.float32))
    if a.grads_out:
        g = grads_of(model)
        dit_ref.write_safetensors(a.grads_out, g)
        print("%d gradient tensors -> %s" % (len(g), a.grads_out))
    print("loss %r" % float(loss))


def cmd_train(a):
    torch.set_num_threads(a.threads)
    cfg = dit_ref.load_config(a.config)
    model = train_model(cfg, a.weights)
    batches = []
    for k in range(a.steps):
        b = os.path.join(a.batches, "step%d_" % k)
        batches.append(load_batch(cfg, b + "x0.npy", b + "t.npy", b + "y.npy", b + "noise.npy"))
    losses, ema, opt = run_training(cfg, model, batches, a.lr, a.ema, a.weight_decay)
    os.makedirs(a.out_dir, exist_ok=True)
    np.save(os.path.join(a.out_dir, "losses.npy"), np.array(losses, dtype=np.float64))
    dit_ref.write_safetensors(os.path.join(a.out_dir, "model.safetensors"), model.state_dict())
    dit_ref.write_safetensors(os.path.join(a.out_dir, "ema.safetensors"), ema.state_dict())
    meta = {"format": "pt", "step": str(a.steps), "lr": repr(a.lr), "weight_decay": repr(a.weight_decay),
            "betas": "0.9,0.999", "eps": "1e-08"}
    dit_ref.write_safetensors(os.path.join(a.out_dir, "opt.safetensors"), opt_tensors(model, opt), meta)
    for k, v in enumerate(losses):
        print("step %d loss %r" % (k, v))
    print("%d steps (lr %g, ema %g, wd %g) -> %s" % (a.steps, a.lr, a.ema, a.weight_decay, a.out_dir))


# ---- selftest ------------------------------------------------------------------------------------

def double_model(model):
    """float64 copy for finite differences; dit_ref builds t_freq in float32 (ref 1.5), which is
    parameter-independent, so it is widened before the float64 t-MLP."""
    m = copy.deepcopy(model).double()
    te = m.t_embedder
    te.forward = lambda t: te.mlp(dit_ref.timestep_embedding(t, te.frequency_embedding_size,
                                                             te.max_period).double())
    return m


def numpy_losses(out, x0, t, noise, s):
    """Independent float64 numpy transcription of ref 3.7 (learned range) from the model output."""
    out, x0, noise = (v.detach().double().numpy() for v in (out, x0, noise))
    g = lambda arr: arr[t.numpy()][:, None, None, None]                       # noqa: E731
    C = x0.shape[1]
    eps, v = out[:, :C], out[:, C:]
    xt = g(s.sqrt_alphas_cumprod) * x0 + g(s.sqrt_one_minus_alphas_cumprod) * noise
    tm = g(s.posterior_mean_coef1) * x0 + g(s.posterior_mean_coef2) * xt
    tlv = g(s.posterior_log_variance_clipped)
    lv = (v + 1) / 2 * g(np.log(s.betas)) + (1 - (v + 1) / 2) * tlv
    x0h = g(s.sqrt_recip_alphas_cumprod) * xt - g(s.sqrt_recipm1_alphas_cumprod) * eps
    m = g(s.posterior_mean_coef1) * x0h + g(s.posterior_mean_coef2) * xt
    kl = 0.5 * (-1 + lv - tlv + np.exp(tlv - lv) + (tm - m) ** 2 * np.exp(-lv))
    cdf = lambda z: 0.5 * (1 + np.tanh(math.sqrt(2 / math.pi) * (z + 0.044715 * z ** 3)))  # noqa: E731
    inv = np.exp(-0.5 * lv)
    cp, cm = cdf(inv * (x0 - m + 1 / 255)), cdf(inv * (x0 - m - 1 / 255))
    ll = np.where(x0 < -0.999, np.log(np.maximum(cp, 1e-12)),
                  np.where(x0 > 0.999, np.log(np.maximum(1 - cm, 1e-12)), np.log(np.maximum(cp - cm, 1e-12))))
    red = lambda a: a.reshape(a.shape[0], -1).mean(1) / math.log(2)          # noqa: E731
    mse = ((noise - eps) ** 2).reshape(len(t), -1).mean(1)
    kl, nll = red(kl), red(-ll)
    return mse + np.where(t.numpy() == 0, nll, kl), kl, nll


def selftest_loss_and_grads(st, cfg, wpath):
    model = train_model(cfg, wpath)
    m64 = double_model(model)
    x0, t, y, noise = (torch.from_numpy(v) for v in
                       make_batch(cfg, np.random.default_rng(5), 4, [0, 999, 0, 500], null_labels=True))
    x0d, nd = x0.double(), noise.double()
    d32, d64 = TrainDiffusion(True), TrainDiffusion(True, torch.float64)
    with torch.no_grad():
        t64 = d64.training_losses(m64, x0d, t, y, nd)
        out64 = m64(d64.q_sample(x0d, t, nd), t, y)
        l32 = d32.training_losses(model, x0, t, y, noise)["loss"].double().numpy()
    ref, kl, nll = numpy_losses(out64, x0d, t, nd, d64.s)
    got, mse = t64["loss"].numpy(), t64["mse"].numpy()
    st.check(np.allclose(got, ref, rtol=1e-10, atol=0), "float64 run of this code == independent numpy "
             "transcription of ref 3.7 (max rel %.1e)" % np.max(np.abs(got / ref - 1)))
    z, nz = [0, 2], [1, 3]
    st.check(np.allclose(got[z] - mse[z], nll[z], rtol=1e-10) and not np.allclose(nll[z], kl[z], rtol=1e-2)
             and np.allclose(got[nz] - mse[nz], kl[nz], rtol=1e-10),
             "(b) t == 0 rows: vb = decoder NLL (%.4g bits; the KL would be %.4g), other rows: vb = KL"
             % (nll[0], kl[0]))
    edge = int((np.abs(x0[z].numpy()) > 0.999).sum())
    st.check(edge > 0, "(b) the t == 0 rows hold %d values with |x0| > 0.999 (edge branches)" % edge)
    st.check(np.allclose(l32[nz], ref[nz], rtol=2e-5), "float32 loss == float64 at t > 0 (max rel %.1e)"
             % np.max(np.abs(l32[nz] / ref[nz] - 1)))
    st.check(True, "note: at t == 0 float32 differs from float64 by up to %.1e rel.: 1 - cdf cancels and "
             "clamps at 1e-12 when |z| > ~5 (ill-conditioned; official float32 semantics)"
             % np.max(np.abs(l32[z] / ref[z] - 1)))
    # well-conditioned model (final layer x 0.3: |z| < ~4.5 at t == 0) for gradient checks
    with torch.no_grad():
        for m in (model, m64):
            m.final_layer.linear.weight.mul_(0.3)
            m.final_layer.linear.bias.mul_(0.3)
    terms = d32.training_losses(model, x0, t, y, noise)
    terms["loss"].mean().backward()
    g32 = grads_of(model)
    t64 = d64.training_losses(m64, x0d, t, y, nd)
    t64["loss"].mean().backward()
    g64 = grads_of(m64)
    frozen = t64["eps"].detach()
    l32, l64 = terms["loss"].detach().double().numpy(), t64["loss"].detach().numpy()
    st.check(np.allclose(l32, l64, rtol=2e-5), "(a) scaled model: float32 losses == float64 at all t "
             "(max rel %.1e)" % np.max(np.abs(l32 / l64 - 1)))
    rel = max(float((g32[k].double() - g64[k]).norm() / g64[k].norm()) for k in g64)
    st.check(rel < 1e-4, "(a) float32 autograd == float64 autograd (worst tensor rel. error %.1e)" % rel)
    params = dict(m64.named_parameters())
    coords = [("final_layer.linear.weight", (0, 3)), ("final_layer.linear.weight", (5, 7)),
              ("final_layer.linear.bias", (30,)), ("blocks.0.attn.qkv.weight", (10, 20)),
              ("blocks.1.mlp.fc2.weight", (3, 100)), ("blocks.1.adaLN_modulation.1.bias", (70,)),
              ("t_embedder.mlp.0.weight", (2, 5)), ("x_embedder.proj.weight", (1, 2, 0, 1)),
              ("y_embedder.embedding_table.weight", (int(y[0]), 4)),
              ("y_embedder.embedding_table.weight", (cfg["num_classes"], 9))]

    def fdiff(name, idx, frozen_eps, h=1e-5):
        p = params[name]
        p0, f = float(p[idx]), []
        with torch.no_grad():
            for dlt in (h, -h):
                p[idx] = p0 + dlt
                f.append(float(d64.training_losses(m64, x0d, t, y, nd, frozen_eps)["loss"].mean()))
            p[idx] = p0
        return (f[0] - f[1]) / (2 * h)

    for name, idx in coords:
        fd, ad = fdiff(name, idx, frozen), float(g64[name][idx])
        st.check(abs(fd - ad) <= 1e-6 * abs(ad) + 1e-10 and abs(ad) > 0,
                 "(a) d loss / d %s%s: autograd %.9g, central difference %.9g" % (name, list(idx), ad, fd))
    full = fdiff("final_layer.linear.weight", (0, 3), None)
    st.check(abs(full - float(g64["final_layer.linear.weight"][0, 3])) > 1e-3 * abs(full),
             "(a) eps is detached in vb: the full loss's derivative (%.6g) differs" % full)
    st.check("pos_embed" not in g32 and len(g32) == len(model.state_dict()) - 1,
             "gradients for all %d trainable tensors, none for pos_embed" % len(g32))


def selftest_fixed_variance(st, tmp):
    cfg = dit_ref.tiny_config(learn_sigma=False, out_channels=4)
    del cfg["params"]
    d = os.path.join(tmp, "fixed")
    dit_ref.write_weights(cfg, 11, d, [])
    model = train_model(cfg, os.path.join(d, "official.safetensors"))
    x0, t, y, noise = (torch.from_numpy(v) for v in make_batch(cfg, np.random.default_rng(3), 3, [0]))
    terms = TrainDiffusion(False).training_losses(model, x0, t, y, noise)
    st.check("vb" not in terms and torch.equal(terms["loss"], terms["mse"]) and bool(terms["loss"].gt(0).all()),
             "(c) fixed-variance config: loss == mse (%s)" % terms["loss"].detach().numpy())
    losses, ema, _ = run_training(cfg, model, [(x0, t, y, noise)] * 2, 1e-3, 0.9, 0.0)
    st.check(len(losses) == 2 and all(np.isfinite(losses)), "(c) fixed-variance config trains: %s" % losses)


def selftest_train(st, cfg, wpath):
    rng = np.random.default_rng(9)
    batches = [[torch.from_numpy(v) for v in make_batch(cfg, rng, 3, [0], True)] for _ in range(3)]
    init = dit_ref.load_checkpoint(wpath, cfg)
    runs = []
    for _ in range(2):
        losses, ema, _ = run_training(cfg, train_model(cfg, wpath), batches, 1e-3, 0.9, 0.01)
        runs.append([losses] + [ema.state_dict()[k] for k in init])
    same = runs[0][0] == runs[1][0] and all(torch.equal(u, v) for u, v in zip(runs[0][1:], runs[1][1:]))
    st.check(same, "train is deterministic (bit-identical losses and EMA): %s" % runs[0][0])
    # one step: AdamW and EMA against their formulas
    model = train_model(cfg, wpath)
    losses, ema, opt = run_training(cfg, model, batches[:1], 1e-3, 0.9, 0.01)
    model2 = train_model(cfg, wpath)
    diff = TrainDiffusion(True)
    diff.training_losses(model2, *batches[0])["loss"].mean().backward()
    g = grads_of(model2)
    ok_adam, ok_ema = True, True
    for name, p in model.named_parameters():
        p0 = init[name].double()
        if name in g:
            gd = g[name].double()
            m, vv = 0.1 * gd, 0.001 * gd * gd
            want = p0 * (1 - 1e-3 * 0.01) - 1e-3 / 0.1 * m / ((vv.sqrt() / math.sqrt(0.001)) + 1e-8)
            ok_adam &= torch.allclose(p.detach().double(), want, rtol=0, atol=2e-6)
        e = 0.9 * p0 + 0.1 * p.detach().double()
        ok_ema &= torch.allclose(ema.state_dict()[name].double(), e, rtol=0, atol=1e-6)
    st.check(ok_adam, "one AdamW step == hand formula (bias-corrected, decoupled weight decay)")
    pe = ema.state_dict()["pos_embed"]
    st.check(ok_ema, "EMA after one step == 0.9*init + 0.1*param, every parameter incl. pos_embed")
    st.check(True, "note: the EMA's frozen pos_embed changed in its last bits in %d/%d entries (ref 7.13)"
             % (int((pe != init["pos_embed"]).sum()), pe.numel()))
    # EMA kernel: torch's vectorized add_(alpha) is a fused multiply-add (C ports: fmaf)
    a = torch.randn(4096, generator=torch.Generator().manual_seed(1)).mul_(0.9999)
    b = torch.randn(4096, generator=torch.Generator().manual_seed(2))
    got = a.clone().add_(b, alpha=1 - 0.9999).numpy()
    al = np.float32(1 - 0.9999)
    fma = (a.numpy().astype(np.float64) + np.float64(al) * b.numpy().astype(np.float64)).astype(np.float32)
    sep = (a.numpy() + al * b.numpy()).astype(np.float32)
    st.check(True, "note: torch's ema.add_(param, alpha=1-decay) equals fmaf(alpha, param, ema) in %d/4096, "
             "float32 mul then add in %d/4096 elements" % ((got == fma).sum(), (got == sep).sum()))


def cmd_selftest(a):
    torch.set_num_threads(1)
    st = dit_ref.SelfTest()
    cfg = dit_ref.tiny_config()
    with tempfile.TemporaryDirectory() as tmp:
        wdir = os.path.join(tmp, "w")
        dit_ref.write_weights(cfg, 4, wdir, [])
        wpath = os.path.join(wdir, "official.safetensors")
        selftest_loss_and_grads(st, cfg, wpath)
        selftest_fixed_variance(st, tmp)
        selftest_train(st, cfg, wpath)
    return st.finish()


def cmd_bench(a):
    """Median wall time of train.py's step (loss, backward, AdamW, EMA) per torch thread count."""
    cfg = dit_ref.load_config(a.config)
    torch.manual_seed(a.seed)
    model = dit_ref.build_model(cfg)
    with torch.no_grad():  # every layer random, as in the tests (the official init zeroes some)
        for p in model.parameters():
            if p.requires_grad:
                p.normal_(0, 0.02)
    model.train()
    ema = copy.deepcopy(model)
    for p in ema.parameters():
        p.requires_grad = False
    opt = make_optimizer(model, 1e-4, 0.0)
    diff = TrainDiffusion(learn_sigma_of(cfg))
    x0, t, y, noise = (torch.from_numpy(v) for v in make_batch(cfg, np.random.default_rng(a.seed), a.batch))
    best = None
    for th in [int(v) for v in a.threads_list.split(",")]:
        torch.set_num_threads(th)
        times = []
        for i in range(a.warmup + a.iters):
            t0 = time.perf_counter()
            loss = diff.training_losses(model, x0, t, y, noise)["loss"].mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            update_ema(ema, model, 0.9999)
            if i >= a.warmup:
                times.append((time.perf_counter() - t0) * 1e3)
        ms = statistics.median(times)
        print("threads %d: median %.1f ms per training step (batch %d)" % (th, ms, a.batch))
        if best is None or ms < best[0]:
            best = (ms, th)
    print(json.dumps({"best_ms": round(best[0], 3), "best_threads": best[1]}))


# =================================================================================================
# CLI
# =================================================================================================

def main(argv=None):
    ap = argparse.ArgumentParser(description="Reference of the official DiT training step.",
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    sub = ap.add_subparsers(dest="cmd", required=True)

    def parser(name, func, help_, *args):
        p = sub.add_parser(name, help=help_)
        p.set_defaults(func=func)
        if name != "selftest":
            p.add_argument("config")
        for flag, kw in args:
            p.add_argument(flag, **kw)
        return p

    req, req_int = dict(required=True), dict(type=int, required=True)
    threads = ("--threads", dict(type=int, default=1, help="torch threads (default 1)"))
    parser("inputs", cmd_inputs, "write x0.npy, t.npy, y.npy, noise.npy (or --steps K batches)",
           ("--seed", req_int), ("--batch", req_int), ("--out-dir", req),
           ("--t-values", dict(default=None, help="comma list of timesteps for the first rows")),
           ("--null-labels", dict(action="store_true", help="odd rows get the null class")),
           ("--steps", dict(type=int, default=0, help="write K batches step{k}_*.npy for `train`")))
    parser("loss", cmd_loss, "training loss, per-sample losses and gradients",
           ("--weights", req), ("--x0", req), ("--t", req), ("--y", req), ("--noise", req),
           ("--grads-out", dict(default=None)), ("--losses-out", dict(default=None)), threads)
    parser("train", cmd_train, "K AdamW steps with EMA, like train.py",
           ("--weights", req), ("--batches", dict(required=True, help="dir of step{k}_{x0,t,y,noise}.npy")),
           ("--steps", req_int), ("--lr", dict(type=float, default=1e-4)),
           ("--ema", dict(type=float, default=0.9999, help="EMA decay (default 0.9999)")),
           ("--weight-decay", dict(type=float, default=0.0)), ("--out-dir", req), threads)
    parser("bench", cmd_bench, "median time of one training step per torch thread count",
           ("--batch", req_int), ("--threads-list", dict(default="1")), ("--iters", dict(type=int, default=5)),
           ("--warmup", dict(type=int, default=1)), ("--seed", dict(type=int, default=0)))
    parser("selftest", cmd_selftest, "gradient / loss / optimizer checks (exit 1 on failure)")

    a = ap.parse_args(argv)
    try:
        return a.func(a) or 0
    except ValueError as e:
        print("train_ref.py %s: error: %s" % (a.cmd, e), file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
