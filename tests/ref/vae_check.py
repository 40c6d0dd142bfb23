#!/usr/bin/env python3
"""vae_check.py: the checks of tests/ref/vae_ref.py, which runs them as its
subcommands `check-diffusers` (its reference against diffusers' own
AutoencoderKL, pip-installed pinned beside Debian's torch; SKIP when that
cannot be had) and `selftest` (the reference's internal consistency: counts,
namings, files, semantics). Kept apart so that vae_ref.py holds the model,
its weights and its files."""
import argparse
import collections
import hashlib
import json
import math
import os
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch
import torch.nn.functional as F

from vae_ref import (
    ATTN_CURRENT, AUTOENCODERKL_DEFAULTS, Ctx, FULL_COUNTS, GN_EPS, LDM_PREFIX, SCALING_FACTOR,
    TORCH_PREC, _csv, _in_path, _set_threads, attention, bf16_bits, complete_config,
    config_json_text, conv, decoder, gn, main, make_config, make_inputs, mid_block, param_counts,
    param_shapes, posterior, random_state_dict, read_any, rename_state_dict, resolve_weights,
    rounded, run_decode, run_encode, to_current_naming, upsample_nearest2x, weights_file_name,
    write_weights_file)

# ------------------------------------------------------------------------------------------------
# check-diffusers
# ------------------------------------------------------------------------------------------------

DIFFUSERS_PINS = ["diffusers==0.25.1", "huggingface_hub==0.20.3", "safetensors==0.4.1", "filelock==3.13.1",
                  "regex==2023.12.25", "importlib_metadata==7.0.1", "zipp==3.17.0", "tqdm==4.66.1",
                  "fsspec==2023.12.2", "packaging==23.2"]
SKIP_DEFAULT = 77


def default_pydeps():
    base = os.environ.get("DITC_PYDEPS")
    if base:
        return base
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(cache, "ditc", "pydeps-diffusers-0.25.1")


def import_diffusers(pydeps, install):
    """Import diffusers 0.25.1 with Debian's torch: from sys.path, else from pydeps (pip-installed
    there with --no-deps and pinned versions, so that no other torch or numpy comes in).
    Returns (module, None) or (None, reason)."""
    torch_file = torch.__file__
    def _try():
        try:
            import diffusers  # noqa: F401
            from diffusers import AutoencoderKL  # noqa: F401
            return diffusers, None
        except Exception as ex:  # noqa: BLE001
            return None, "%s: %s" % (type(ex).__name__, ex)
    mod, why = _try()
    if mod is None:
        marker = os.path.join(pydeps, ".complete")
        if not os.path.isfile(marker):
            if not install:
                return None, "diffusers not importable (%s) and --no-install" % why
            os.makedirs(pydeps, exist_ok=True)
            cmd = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                   "--no-deps", "--no-warn-script-location", "--target", pydeps] + DIFFUSERS_PINS
            try:
                r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=600)
            except Exception as ex:  # noqa: BLE001
                return None, "pip install failed: %s" % ex
            if r.returncode != 0:
                tail = r.stdout.decode(errors="replace").strip().splitlines()[-3:]
                return None, "pip install %s failed (exit %d): %s" % (DIFFUSERS_PINS[0], r.returncode, " | ".join(tail))
            with open(marker, "w") as f:
                f.write(" ".join(DIFFUSERS_PINS) + "\n")
        sys.path.insert(0, pydeps)
        for k in [k for k in sys.modules if k.split(".")[0] in ("diffusers", "huggingface_hub", "safetensors")]:
            del sys.modules[k]
        mod, why = _try()
        if mod is None:
            return None, "diffusers from %s does not import: %s" % (pydeps, why)
    if torch.__file__ != torch_file:
        return None, "a second torch was imported"
    return mod, None


def _rel(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-300))


def _diffusers_ldm_converter():
    """diffusers 0.25.1's convert_ldm_vae_checkpoint. Its module imports transformers at the top
    (not installed, and not needed by this function), so the function and the helpers it calls are
    taken out of the module's source with ast and run on their own (the code is diffusers', unchanged)."""
    import ast
    import importlib.util
    spec = importlib.util.find_spec("diffusers")
    src_path = os.path.join(os.path.dirname(spec.origin), "pipelines", "stable_diffusion", "convert_from_ckpt.py")
    with open(src_path) as f:
        tree = ast.parse(f.read(), src_path)
    wanted = {"shave_segments", "renew_vae_resnet_paths", "renew_vae_attention_paths", "assign_to_checkpoint",
              "conv_attn_to_linear", "convert_ldm_vae_checkpoint"}
    body = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name in wanted]
    if {n.name for n in body} != wanted:
        raise RuntimeError("%s: missing %s" % (src_path, wanted - {n.name for n in body}))
    ns = {"torch": torch}
    exec(compile(ast.Module(body=body, type_ignores=[]), src_path, "exec"), ns)  # noqa: S102
    return ns["convert_ldm_vae_checkpoint"]


def cmd_check_diffusers(a):
    _set_threads(a.threads)
    diffusers, why = import_diffusers(a.pydeps or default_pydeps(), not a.no_install)
    if diffusers is None:
        print("SKIP: diffusers AutoencoderKL not available: %s" % why, flush=True)
        return a.skip_exit
    from diffusers import AutoencoderKL
    try:
        diffusers.utils.logging.set_verbosity_error()     # e.g. "accelerate was not found" at from_pretrained
    except Exception:  # noqa: BLE001
        pass
    print("diffusers %s from %s, torch %s from %s" % (diffusers.__version__, os.path.dirname(diffusers.__file__),
                                                     torch.__version__, os.path.dirname(torch.__file__)), flush=True)
    with open(a.config) as f:
        raw_cfg = json.load(f)
    cfg = complete_config(raw_cfg)
    wpath = resolve_weights(a.weights)
    raw_sd = read_any(wpath)
    P = to_current_naming(cfg, raw_sd)
    fails = []

    def check(ok, what):
        print("%s  %s" % ("ok  " if ok else "FAIL", what), flush=True)
        if not ok:
            fails.append(what)

    vae = AutoencoderKL.from_config(dict(raw_cfg))
    vae.eval()
    for k in AUTOENCODERKL_DEFAULTS:
        dv = vae.config[k]
        dv = list(dv) if isinstance(dv, (list, tuple)) else dv
        check(dv == cfg[k], "diffusers config %s = %r (reference %r)" % (k, dv, cfg[k]))
    dsd = vae.state_dict()
    check(set(dsd) == set(P), "state dict names: diffusers %d, reference %d, same set" % (len(dsd), len(P)))
    check(all(tuple(dsd[k].shape) == tuple(P[k].shape) for k in P if k in dsd), "state dict shapes")
    n_d = sum(v.numel() for v in dsd.values())
    check(n_d == param_counts(cfg)["total"], "parameters %d" % n_d)
    vae.load_state_dict(P, strict=True)

    # diffusers' own readers of the file
    if wpath.endswith(".safetensors"):
        from safetensors.torch import load_file
        st = load_file(wpath)
        check(set(st) == set(raw_sd) and all(torch.equal(st[k].to(torch.float32), raw_sd[k]) for k in st),
              "safetensors package reads %s as the hand reader does" % os.path.basename(wpath))
    keys = list(raw_sd)
    is_ldm = any(".mid.attn_1." in k for k in keys)
    if is_ldm:
        try:
            conv = _diffusers_ldm_converter()(dict(raw_sd), dict(vae.config))
            same = set(conv) == set(P) and all(torch.equal(conv[k].reshape(P[k].shape), P[k]) for k in P)
            why = ""
        except Exception as ex:  # noqa: BLE001
            same, why = False, " (%s: %s)" % (type(ex).__name__, ex)
        check(same, "diffusers convert_ldm_vae_checkpoint maps %s as the reference does%s" % (os.path.basename(wpath), why))
    elif not any(k.startswith(LDM_PREFIX) for k in keys) and wpath.endswith((".safetensors", ".bin")):
        with tempfile.TemporaryDirectory() as tmp:
            with open(os.path.join(tmp, "config.json"), "w") as f:
                json.dump(raw_cfg, f)
            ext = os.path.splitext(wpath)[1]
            os.symlink(os.path.abspath(wpath), os.path.join(tmp, "diffusion_pytorch_model" + ext))
            v2 = AutoencoderKL.from_pretrained(tmp, use_safetensors=(ext == ".safetensors"))
            s2 = v2.state_dict()
            check(set(s2) == set(P) and all(torch.equal(s2[k].to(torch.float32), P[k]) for k in P),
                  "diffusers from_pretrained reads %s as the reference does" % os.path.basename(wpath))

    z = np.load(_in_path(a.inputs, "z"))
    x = np.load(_in_path(a.inputs, "x"))
    e = np.load(_in_path(a.inputs, "e"))
    sf = cfg["scaling_factor"]
    results = collections.OrderedDict()
    for prec in _csv(a.precision, ("float64", "float32"), "precision"):
        td = TORCH_PREC[prec]
        tol = 1e-10 if prec == "float64" else 1e-5
        vae.to(td)
        # diffusers' attention upcasts the logits to float32 before the softmax (upcast_softmax):
        # switched off in float64 so that the comparison is a float64 one.
        for mod in vae.modules():
            if hasattr(mod, "upcast_softmax"):
                mod.upcast_softmax = prec != "float64"
        with torch.no_grad():
            t0 = time.perf_counter()
            d_dec = vae.decode(torch.from_numpy(z).to(td) / sf).sample.to(torch.float32).numpy()
            t1 = time.perf_counter()
            post = vae.encode(torch.from_numpy(x).to(td)).latent_dist
            et = torch.from_numpy(e).to(td)
            d_enc = (sf * (post.mean + post.std * et)).to(torch.float32).numpy()
            d_mean = (sf * post.mean).to(torch.float32).numpy()
            t2 = time.perf_counter()
        r_dec = run_decode(cfg, P, z, prec)
        t3 = time.perf_counter()
        r_enc = run_encode(cfg, P, x, e, prec)
        r_mean = run_encode(cfg, P, x, None, prec)
        t4 = time.perf_counter()
        for what, rr, dd in (("decode", r_dec, d_dec), ("encode", r_enc, d_enc), ("encode --mean", r_mean, d_mean)):
            err = _rel(rr, dd)
            results["%s %s" % (what, prec)] = err
            check(np.all(np.isfinite(rr)) and err <= tol,
                  "%-13s %s %s: |ref - diffusers| / |diffusers| = %.3e (tol %.0e), |out| rms %.3f" % (
                      what, prec, list(rr.shape), err, tol, float(np.sqrt(np.mean(np.square(dd, dtype=np.float64))))))
        print("     times %s: diffusers decode %.2f s, encode %.2f s; reference decode %.2f s, encode x2 %.2f s" % (
            prec, t1 - t0, t2 - t1, t3 - t2, t4 - t3), flush=True)
    print(json.dumps({"check": "diffusers", "diffusers": diffusers.__version__, "pass": not fails,
                      "rel_err": {k: float("%.3e" % v) for k, v in results.items()}}))
    return 1 if fails else 0


# ------------------------------------------------------------------------------------------------
# selftest
# ------------------------------------------------------------------------------------------------

class SelfTest:
    def __init__(self):
        self.failures = 0

    def check(self, cond, what):
        print("%s  %s" % ("ok  " if cond else "FAIL", what), flush=True)
        if not cond:
            self.failures += 1

    def finish(self):
        if self.failures:
            print("selftest: %d FAILED" % self.failures)
            return 1
        print("selftest: all passed")
        return 0


def tiny_config(**over):
    """A smaller-than-small configuration for the fast checks (3 levels, 8 groups)."""
    raw = make_config(False, 16)
    raw["block_out_channels"] = [8, 16, 16]
    raw["down_block_types"] = ["DownEncoderBlock2D"] * 3
    raw["up_block_types"] = ["UpDecoderBlock2D"] * 3
    raw["norm_num_groups"] = 8
    raw["layers_per_block"] = 1
    raw.update(over)
    return complete_config(raw)


def selftest_counts(st):
    full = complete_config(json.loads(config_json_text(make_config(True), "diffusers")))
    c = param_counts(full)
    st.check(c == FULL_COUNTS, "full sd-vae-ft-mse counts %s" % dict(c))
    hub = complete_config(json.loads(config_json_text(make_config(True), "hub")))
    st.check(param_counts(hub) == FULL_COUNTS and hub["scaling_factor"] == SCALING_FACTOR,
             "hub-style config.json (no scaling_factor) gives the same model and 0.18215")
    small = complete_config(make_config(False))
    n = len(param_shapes(small))
    st.check(n == 244, "small config: %d tensors" % n)


def selftest_namings(st, cfg):
    base = random_state_dict(cfg, 3)
    for naming in ("diffusers", "legacy", "ldm"):
        for prefix in ("", LDM_PREFIX):
            r = rename_state_dict(cfg, base, naming, prefix)
            back = to_current_naming(cfg, r)
            st.check(len(set(r)) == len(base) and list(back) == list(base) and
                     all(torch.equal(back[k], base[k]) for k in base),
                     "naming %s%s: %d distinct names, round trip exact" % (naming, " + prefix" if prefix else "", len(r)))
    r = rename_state_dict(cfg, base, "ldm")
    expect = ["decoder.mid.attn_1.q.weight", "decoder.up.2.block.0.conv1.weight", "decoder.up.0.block.0.nin_shortcut.weight",
              "decoder.up.2.upsample.conv.weight", "encoder.down.0.downsample.conv.bias", "encoder.mid.block_2.norm2.bias",
              "decoder.norm_out.weight", "encoder.norm_out.bias", "quant_conv.weight", "post_quant_conv.bias",
              "encoder.down.1.block.0.nin_shortcut.bias", "decoder.mid.attn_1.proj_out.bias"]
    st.check(all(k in r for k in expect) and tuple(r["decoder.mid.attn_1.q.weight"].shape) == (16, 16, 1, 1),
             "ldm names (reversed up numbering, nin_shortcut, 1x1 attention convs)")
    leg = rename_state_dict(cfg, base, "legacy")
    st.check("encoder.mid_block.attentions.0.proj_attn.weight" in leg and "decoder.mid_block.attentions.0.query.bias" in leg,
             "legacy attention names")
    bad = dict(base)
    del bad["decoder.conv_out.bias"]
    try:
        to_current_naming(cfg, bad)
        st.check(False, "missing tensor is an error")
    except ValueError as ex:
        st.check("decoder.conv_out.bias" in str(ex), "missing tensor named in the error")
    bad = dict(base)
    bad["encoder.conv_in.weight"] = torch.zeros(1)
    try:
        to_current_naming(cfg, bad)
        st.check(False, "wrong shape is an error")
    except ValueError as ex:
        st.check("encoder.conv_in.weight" in str(ex), "wrong shape named in the error")


def selftest_files(st, cfg, d):
    base = random_state_dict(cfg, 5)
    a = np.random.default_rng(0).standard_normal(100000).astype(np.float32) * 3
    a[:4] = [1.00390625, 1.01171875, -1.00390625, 65504.0]   # exact ties of bf16 rounding
    ok = np.array_equal(bf16_bits(a), torch.from_numpy(a).to(torch.bfloat16).view(torch.int16).numpy().view(np.uint16))
    st.check(ok, "bf16 round-to-nearest-even == torch's bfloat16 cast")
    for naming in ("diffusers", "legacy", "ldm"):
        for dtype in ("fp32", "fp16", "bf16"):
            for fmt in ("safetensors", "bin", "ckpt"):
                prefix = LDM_PREFIX if (naming == "ldm" and fmt == "ckpt") else ""
                p = os.path.join(d, weights_file_name(naming, dtype, fmt, prefix))
                write_weights_file(p, cfg, base, naming, dtype, fmt, prefix)
                got = to_current_naming(cfg, read_any(p))
                want = rounded(base, dtype)
                st.check(all(torch.equal(got[k], want[k]) for k in want),
                         "%s: the rounded values of the seed" % os.path.basename(p))


def selftest_semantics(st):
    torch.manual_seed(0)
    x = torch.randn(2, 16, 5, 6, dtype=torch.float64)
    w, b = torch.rand(16, dtype=torch.float64) + 0.5, torch.randn(16, dtype=torch.float64)
    c = Ctx({"n.weight": w, "n.bias": b}, 8)
    g = x.reshape(2, 8, -1)
    ref = ((g - g.mean(-1, keepdim=True)) / torch.sqrt(g.var(-1, unbiased=False, keepdim=True) + GN_EPS)).reshape(x.shape)
    ref = ref * w[None, :, None, None] + b[None, :, None, None]
    st.check(torch.allclose(gn(c, "n.", x), ref, rtol=0, atol=1e-12), "group_norm: per (sample, group of 2 channels) over C/G x H x W")
    u = upsample_nearest2x(x)
    st.check(u.shape == (2, 16, 10, 12) and torch.equal(u, x.repeat_interleave(2, 2).repeat_interleave(2, 3)),
             "nearest x2: out[y, x] = in[y // 2, x // 2]")
    wd = torch.randn(16, 16, 3, 3, dtype=torch.float64)
    c = Ctx({"d.weight": wd, "d.bias": torch.zeros(16, dtype=torch.float64)}, 8)
    y = conv(c, "d.", F.pad(x, (0, 1, 0, 1)), stride=2, padding=0)
    yy = torch.zeros(2, 16, 2, 3, dtype=torch.float64)
    xp = F.pad(x, (0, 1, 0, 1))   # 6 x 7
    for i in range(2):
        for j in range(3):
            yy[:, :, i, j] = torch.einsum("nchw,ochw->no", xp[:, :, 2 * i:2 * i + 3, 2 * j:2 * j + 3], wd)
    st.check(y.shape == (2, 16, 2, 3) and torch.allclose(y, yy, atol=1e-12), "downsample: pad (0,1,0,1), 3x3 stride 2, 5x6 -> 2x3")
    # attention against an explicit per-token loop
    C, T = 16, 30
    P = {"a.group_norm.weight": w, "a.group_norm.bias": b}
    for n in ATTN_CURRENT:
        P["a.%s.weight" % n] = torch.randn(C, C, dtype=torch.float64) / 4
        P["a.%s.bias" % n] = torch.randn(C, dtype=torch.float64) / 4
    c = Ctx(P, 8)
    out = attention(c, "a.", x)
    h = gn(c, "a.group_norm.", x).reshape(2, C, T)
    exp = torch.empty_like(h)
    for nn_ in range(2):
        for t in range(T):
            hv = h[nn_]                                  # [C, T]
            q = P["a.to_q.weight"] @ hv[:, t] + P["a.to_q.bias"]
            ks = P["a.to_k.weight"] @ hv + P["a.to_k.bias"][:, None]
            vs = P["a.to_v.weight"] @ hv + P["a.to_v.bias"][:, None]
            s = (q @ ks) / math.sqrt(C)
            p = torch.exp(s - s.max())
            p = p / p.sum()
            exp[nn_, :, t] = P["a.to_out.0.weight"] @ (vs @ p) + P["a.to_out.0.bias"]
    st.check(torch.allclose(out, x + exp.reshape(x.shape), atol=1e-12), "attention: one head, scale 1/sqrt(C), residual")
    m = torch.tensor([[[[1.0]], [[2.0]], [[-40.0]], [[30.0]]]], dtype=torch.float64)
    e = torch.tensor([[[[0.5]], [[0.25]]]], dtype=torch.float64)
    got = posterior(m, e).flatten().tolist()
    want = [1.0 + math.exp(-15.0) * 0.5, 2.0 + math.exp(10.0) * 0.25]
    st.check(all(abs(g_ - w_) <= 1e-12 * abs(w_) for g_, w_ in zip(got, want)), "posterior: logvar clamped to [-30, 20]")


def selftest_model(st, cfg, d):
    P = random_state_dict(cfg, 7)
    z, x, e = make_inputs(cfg, 1, 2)
    H = cfg["sample_size"]
    s64, s32 = [], []
    d64 = run_decode(cfg, P, z, "float64", s64)
    d32 = run_decode(cfg, P, z, "float32", s32)
    st.check(d64.shape == (2, cfg["out_channels"], H, H), "decode shape %s" % list(d64.shape))
    st.check(_rel(d32, d64) < 1e-5, "decode float32 vs float64: %.2e" % _rel(d32, d64))
    st.check(all(f for *_, f in s64) and max(r for _, _, r, _, _ in s64) < 10, "decoder activations finite, rms < 10")
    e64 = run_encode(cfg, P, x, e, "float64")
    e32 = run_encode(cfg, P, x, e, "float32")
    m64 = run_encode(cfg, P, x, None, "float64")
    st.check(e64.shape == z.shape and _rel(e32, e64) < 1e-5, "encode shape %s, float32 vs float64: %.2e" % (list(e64.shape), _rel(e32, e64)))
    st.check(not np.allclose(e64, m64), "encode: the noise matters")
    # row independence: batch of 2 == two batches of 1
    d0 = run_decode(cfg, P, z[1:], "float64")
    st.check(np.array_equal(d0, d64[1:]) or _rel(d0, d64[1:]) < 1e-14, "rows are independent")
    # the CLI end to end on files
    cfgp = os.path.join(d, "tiny.json")
    with open(cfgp, "w") as f:
        f.write(config_json_text(dict(cfg_raw_of(cfg)), "diffusers"))
    W, IN = os.path.join(d, "W"), os.path.join(d, "IN")
    main(["weights", cfgp, "--seed", "7", "--out-dir", W, "--naming", "ldm", "--prefix", LDM_PREFIX, "--format", "ckpt"])
    main(["inputs", cfgp, "--seed", "1", "--batch", "2", "--out-dir", IN])
    main(["decode", cfgp, W, IN, "--out", os.path.join(d, "x.npy")])
    st.check(np.array_equal(np.load(os.path.join(d, "x.npy")), d64), "CLI decode from an LDM .ckpt under first_stage_model. == in-process")


def cfg_raw_of(cfg):
    return collections.OrderedDict((k, cfg[k]) for k in AUTOENCODERKL_DEFAULTS)


def cmd_selftest(a):
    torch.set_num_threads(1)
    st = SelfTest()
    selftest_counts(st)
    cfg = tiny_config()
    selftest_namings(st, cfg)
    selftest_semantics(st)
    with tempfile.TemporaryDirectory() as tmp:
        d = a.keep or tmp
        os.makedirs(d, exist_ok=True)
        selftest_files(st, cfg, d)
        selftest_model(st, cfg, d)
    return st.finish()


# =================================================================================================
# CLI
# =================================================================================================
