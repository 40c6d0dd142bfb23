#!/usr/bin/env python3
"""PyTorch side of the GPU benchmark (issue #5): DiT-XL/2-256 as tests/ref/dit_ref.py builds it
(the official models.py), random weights, no checkpoint.

Variants
  eager_tf32   float32 with TF32 matmuls on, plain attention math (as the official sample.py runs)
  bf16_sdpa    bfloat16 weights and activations, attention through F.scaled_dot_product_attention
               (FlashAttention-2 on Hopper for head_dim 72)
  compile      torch.compile(mode="max-autotune") of bf16_sdpa; each new shape compiles, so every
               measurement first checks the time left (--budget) and is reported "skipped (time)"
Measurements
  peak         bf16 (and TF32) 8192^3 matmul TFLOP/s, best of a few: the MFU denominator
  attention    SDPA on the XL/2 attention shape (B*16 heads, T=256, hd=72), bf16, TFLOP/s:
               the "FlashAttention-2 via SDPA" reference
  forward      throughput at batch 1, 8, 64, 256 (CUDA events, warm-up, median)
  sample       one DDPM step with CFG (2N rows: forward_with_cfg + the p_sample arithmetic) at
               N = 8 and 64 images; the 250-step time extrapolated (--full-sampling runs all 250
               when the budget allows)
FLOPs follow the paper: 2 * gmacs * 1e9 per image forward, gmacs from `ditc SPEC --info --json`
(--info FILE; 118.637937 for XL/2-256 otherwise).

Output: one JSON object per line on stdout, then a markdown table (--table-out FILE too).
  python3 bench/gpu_torch_bench.py --info bundle/plans/XL2_256.info.json --budget 120
  python3 bench/gpu_torch_bench.py --smoke          # tiny model, CPU, one iteration (any torch)
"""

import argparse
import copy
import json
import math
import os
import statistics
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests", "ref"))
import dit_ref  # noqa: E402

T_START = time.time()
XL2_256_GMACS = 118.637937


def elapsed():
    return time.time() - T_START


def emit(obj):
    print(json.dumps(obj), flush=True)


# ---- model --------------------------------------------------------------------------------------

def randomize_(model, seed):
    """dit_ref.random_state_dict's scales, drawn on the model's device (fast for 675M params);
    pos_embed keeps its sin-cos table."""
    dev = next(model.parameters()).device
    gen = torch.Generator(device=dev)
    gen.manual_seed(seed)
    D = model.cfg["hidden_size"]
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name == "pos_embed":
                continue
            if name == "y_embedder.embedding_table.weight":
                p.normal_(0.0, 1.0, generator=gen)
            elif "adaLN_modulation" in name:
                p.normal_(0.0, 0.3 / math.sqrt(D) if name.endswith("weight") else 0.1, generator=gen)
            elif name.endswith("weight"):
                bound = math.sqrt(3.0 / (p.numel() // p.shape[0]))
                p.uniform_(-bound, bound, generator=gen)
            else:
                p.uniform_(-0.2, 0.2, generator=gen)


def sdpa_attention_forward(self, x):
    """dit_ref.Attention.forward with the softmax(q k^T * scale) v done by SDPA (same scale)."""
    B, N, C = x.shape
    qkv = self.qkv(x).reshape(B, N, 3, self.num_heads, C // self.num_heads).permute(2, 0, 3, 1, 4)
    q, k, v = qkv.unbind(0)
    x = F.scaled_dot_product_attention(q, k, v)
    return self.proj(x.transpose(1, 2).reshape(B, N, C))


def make_bf16_sdpa(model_fp32):
    m = copy.deepcopy(model_fp32).to(torch.bfloat16)
    have_sdpa = hasattr(F, "scaled_dot_product_attention")
    for blk in m.blocks:
        if have_sdpa:
            blk.attn.forward = sdpa_attention_forward.__get__(blk.attn)
    te = m.t_embedder

    def t_forward(t, te=te):  # the frequency table is float32: feed the bf16 MLP in bf16
        f = dit_ref.timestep_embedding(t, te.frequency_embedding_size, te.max_period)
        return te.mlp(f.to(torch.bfloat16))
    te.forward = t_forward
    return m, have_sdpa


# ---- timing -------------------------------------------------------------------------------------

class Timer:
    def __init__(self, dev):
        self.cuda = dev.type == "cuda"

    def sync(self):
        if self.cuda:
            torch.cuda.synchronize()

    def time_ms(self, fn, iters):
        """Per-call times in ms of `iters` calls."""
        out = []
        for _ in range(iters):
            if self.cuda:
                a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                a.record()
                fn()
                b.record()
                b.synchronize()
                out.append(a.elapsed_time(b))
            else:
                t0 = time.perf_counter()
                fn()
                out.append((time.perf_counter() - t0) * 1e3)
        return out


def matmul_peak(dev, timer, dtype, n, reps):
    a = torch.randn(n, n, device=dev, dtype=dtype)
    b = torch.randn(n, n, device=dev, dtype=dtype)
    for _ in range(3):
        torch.mm(a, b)
    timer.sync()
    best = float("inf")
    for _ in range(reps):
        ms = timer.time_ms(lambda: [torch.mm(a, b) for _ in range(10)], 1)[0] / 10
        best = min(best, ms)
    del a, b
    return 2.0 * n ** 3 / (best * 1e-3) / 1e12


def attention_ref(dev, timer, batch, heads, tokens, hd, iters):
    q, k, v = (torch.randn(batch, heads, tokens, hd, device=dev, dtype=torch.bfloat16) for _ in range(3))
    fn = lambda: F.scaled_dot_product_attention(q, k, v)  # noqa: E731
    results = {}
    for _ in range(3):
        fn()
    timer.sync()
    results["default"] = statistics.median(timer.time_ms(fn, iters))
    try:  # torch >= 2.3: force the FlashAttention-2 kernel
        from torch.nn.attention import SDPBackend, sdpa_kernel
        with sdpa_kernel(SDPBackend.FLASH_ATTENTION):
            fn()
            results["flash"] = statistics.median(timer.time_ms(fn, iters))
    except Exception as e:  # noqa: BLE001
        results["flash_error"] = str(e).splitlines()[0][:200] if str(e) else type(e).__name__
    flops = 4.0 * batch * heads * tokens * tokens * hd
    return {k: (round(flops / (v * 1e-3) / 1e12, 2) if isinstance(v, float) else v) for k, v in results.items()}, \
        {k: v for k, v in results.items() if isinstance(v, float)}


# ---- workloads ----------------------------------------------------------------------------------

def inputs(cfg, n, dev, dtype, seed=0):
    g = torch.Generator(device="cpu")
    g.manual_seed(seed)
    C, L = cfg["in_channels"], cfg["latent_size"]
    x = torch.randn(n, C, L, L, generator=g).to(dev, dtype)
    t = (torch.arange(n) * 97 % 1000).to(dev)
    y = (torch.arange(n) * 13 % cfg["num_classes"]).to(dev)
    return x, t, y


class Sampler:
    """One DDPM p_sample step of the official sampler with CFG: model forward_with_cfg on 2N rows,
    learned-variance interpolation, x0 prediction, posterior mean, noise (clip_denoised=False)."""

    def __init__(self, cfg, n, dev, dtype):
        self.C = cfg["in_channels"]
        z, t, y = inputs(cfg, n, dev, dtype, seed=1)
        self.z = torch.cat([z, z], 0)
        self.t = torch.cat([t, t], 0).fill_(500)
        self.y = torch.cat([y, torch.full_like(y, cfg["num_classes"])], 0)
        self.noise = torch.randn_like(self.z)
        # coefficients of one mid-schedule step (values do not change the cost)
        self.k = dict(min_log=-9.2, max_log=-4.6, a=1.02, b=0.2, c1=0.05, c2=0.95)

    def step(self, model, cfg_scale=4.0):
        k = self.k
        out = model.forward_with_cfg(self.z, self.t, self.y, cfg_scale)
        eps, var = torch.split(out, self.C, dim=1)
        frac = (var + 1) / 2
        log_var = frac * k["max_log"] + (1 - frac) * k["min_log"]
        x0 = k["a"] * self.z - k["b"] * eps
        mean = k["c1"] * x0 + k["c2"] * self.z
        self.z = (mean + torch.exp(0.5 * log_var) * self.noise).to(self.z.dtype)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--smoke", action="store_true", help="tiny model on CPU, one iteration")
    ap.add_argument("--device", default=None, help="cuda (default) or cpu")
    ap.add_argument("--info", default=None, help="`ditc SPEC --info --json` output (gmacs, config)")
    ap.add_argument("--variants", default="eager_tf32,bf16_sdpa", help="eager_tf32,bf16_sdpa,compile")
    ap.add_argument("--batches", default="1,8,64,256")
    ap.add_argument("--sample-images", default="8,64")
    ap.add_argument("--sample-steps", type=int, default=10, help="timed steps per sampling measurement")
    ap.add_argument("--full-sampling", action="store_true", help="run all 250 steps when the budget allows")
    ap.add_argument("--iters", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--budget", type=float, default=600.0, help="seconds; later measurements are skipped")
    ap.add_argument("--compile-min-s", type=float, default=90.0,
                    help="seconds a torch.compile measurement needs left to start (a new shape compiles)")
    ap.add_argument("--no-peak", action="store_true")
    ap.add_argument("--no-attention", action="store_true")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--table-out", default=None)
    a = ap.parse_args(argv)

    if a.smoke:
        a.device = a.device or "cpu"
        a.batches, a.sample_images = "1,2", "1"
        a.iters, a.warmup, a.sample_steps = 1, 0, 1
    dev = torch.device(a.device or "cuda")
    if dev.type == "cuda" and not torch.cuda.is_available():
        emit({"kind": "error", "what": "CUDA is not available to torch %s" % torch.__version__})
        return 1
    timer = Timer(dev)
    if a.info:
        with open(a.info) as f:
            info = json.load(f)
        cfg = dit_ref.complete_config(info)
        gmacs = float(info.get("gmacs", XL2_256_GMACS))
    elif a.smoke:
        cfg, gmacs = dit_ref.tiny_config(), None
    else:
        cfg, gmacs = dit_ref.xl2_256_config(), XL2_256_GMACS
    if gmacs is None:  # the matmuls of the tiny model, for the smoke run's arithmetic only
        D, T, M, dep = cfg["hidden_size"], cfg["tokens"], cfg["mlp_hidden"], cfg["depth"]
        gmacs = dep * (T * (4 * D * D + 2 * D * M) + 2 * T * T * D + 6 * D * D) / 1e9
    flop_img = 2.0 * gmacs * 1e9
    name = info.get("model", "DiT") if a.info else ("tiny" if a.smoke else "DiT-XL/2")
    env = {"kind": "env", "torch": torch.__version__, "device": str(dev), "model": name, "gmacs": gmacs,
           "python": sys.version.split()[0]}
    if dev.type == "cuda":
        p = torch.cuda.get_device_properties(dev)
        env.update(gpu=p.name, sms=p.multi_processor_count, mem_gib=round(p.total_memory / 2 ** 30, 1),
                   cuda=torch.version.cuda)
    emit(env)
    rows = []  # markdown rows
    peak = None

    if not a.no_peak:
        n = 8192 if dev.type == "cuda" else 256
        peak = matmul_peak(dev, timer, torch.bfloat16, n, 3 if dev.type == "cuda" else 1)
        emit({"kind": "peak", "dtype": "bf16", "n": n, "tflops": round(peak, 1)})
        if dev.type == "cuda":
            torch.backends.cuda.matmul.allow_tf32 = True
            tf = matmul_peak(dev, timer, torch.float32, n, 3)
            emit({"kind": "peak", "dtype": "tf32", "n": n, "tflops": round(tf, 1)})
            rows.append(("matmul peak", "bf16 %d^3" % n, "-", "-", "%.0f TFLOP/s" % peak, "-"))
    if not a.no_attention and hasattr(F, "scaled_dot_product_attention"):
        B = 256 if dev.type == "cuda" else 2
        tf, ms = attention_ref(dev, timer, B, cfg["num_heads"], cfg["tokens"], cfg["head_dim"],
                               a.iters if dev.type == "cuda" else 1)
        emit({"kind": "attention", "shape": [B * cfg["num_heads"], cfg["tokens"], cfg["head_dim"]],
              "dtype": "bf16", "tflops": tf, "ms": ms})
        rows.append(("SDPA attention", "B*H=%d T=%d hd=%d" % (B * cfg["num_heads"], cfg["tokens"], cfg["head_dim"]),
                     "-", "%.3f ms" % ms["default"], "%s TFLOP/s" % tf.get("flash", tf["default"]), "-"))

    torch.backends.cuda.matmul.allow_tf32 = True  # as the official sample.py
    torch.backends.cudnn.allow_tf32 = True
    base = dit_ref.build_model(cfg, device=dev)
    randomize_(base, a.seed)
    base.eval()
    batches = [int(b) for b in a.batches.split(",") if b]
    images = [int(n) for n in a.sample_images.split(",") if n]

    for variant in [v for v in a.variants.split(",") if v]:
        if variant == "eager_tf32":
            model, dtype = base, torch.float32
        elif variant in ("bf16_sdpa", "compile"):
            model, have_sdpa = make_bf16_sdpa(base)
            model.eval()
            dtype = torch.bfloat16
            if not have_sdpa:
                emit({"kind": "note", "variant": variant, "what": "no F.scaled_dot_product_attention in this torch: math attention"})
            if variant == "bf16_sdpa":  # the patched model still computes DiT: compare with fp32
                xc, tc, yc = inputs(cfg, 2, dev, torch.float32)
                with torch.inference_mode():
                    ref = base(xc, tc, yc).float()
                    got = model(xc.to(dtype), tc, yc).float()
                rel = ((got - ref).norm() / ref.norm()).item()
                emit({"kind": "check", "variant": variant, "vs": "eager fp32", "rel_err": round(rel, 5),
                      "ok": rel < 0.05})
            if variant == "compile":
                if not hasattr(torch, "compile"):
                    emit({"kind": "skip", "variant": variant, "why": "no torch.compile in torch %s" % torch.__version__})
                    continue
                model = torch.compile(model, mode="max-autotune")
        else:
            emit({"kind": "error", "what": "unknown variant %r" % variant})
            continue
        order = sorted(batches, reverse=True) if variant == "compile" else batches
        for b in order:
            left = a.budget - elapsed()
            if left < (a.compile_min_s if variant == "compile" else 5.0):
                emit({"kind": "skip", "variant": variant, "batch": b, "why": "time", "left_s": round(left, 1)})
                rows.append((variant, "forward batch %d" % b, "-", "skipped (time)", "-", "-"))
                continue
            x, t, y = inputs(cfg, b, dev, dtype)
            t0 = time.time()
            try:
                with torch.inference_mode():
                    fn = lambda: model(x, t, y)  # noqa: E731
                    for _ in range(max(a.warmup, 2 if variant == "compile" else 0)):
                        fn()
                    timer.sync()
                    warm_s = time.time() - t0
                    iters = a.iters if b <= 64 or variant != "eager_tf32" else max(3, a.iters // 2)
                    ms = timer.time_ms(fn, iters)
            except Exception as e:  # noqa: BLE001 (out of memory, compile failure: report, go on)
                emit({"kind": "error", "variant": variant, "batch": b, "what": str(e).splitlines()[0][:300]})
                rows.append((variant, "forward batch %d" % b, "-", "error", "-", "-"))
                if dev.type == "cuda":
                    torch.cuda.empty_cache()
                continue
            med = statistics.median(ms)
            ips = b * 1e3 / med
            r = {"kind": "forward", "variant": variant, "batch": b, "median_ms": round(med, 3),
                 "min_ms": round(min(ms), 3), "iters": len(ms), "images_per_s": round(ips, 2),
                 "tflops": round(ips * flop_img / 1e12, 2), "warmup_s": round(warm_s, 1)}
            if peak:
                r["mfu"] = round(ips * flop_img / (peak * 1e12), 4)
            emit(r)
            rows.append((variant, "forward batch %d" % b, "%.1f img/s" % ips, "%.3f ms" % med,
                         "%.1f TFLOP/s" % r["tflops"], "%.1f%%" % (100 * r["mfu"]) if peak else "-"))
        for n in images:
            left = a.budget - elapsed()
            if left < (a.compile_min_s if variant == "compile" else 5.0):
                emit({"kind": "skip", "variant": variant, "images": n, "why": "time", "left_s": round(left, 1)})
                rows.append((variant, "sample %d img" % n, "-", "skipped (time)", "-", "-"))
                continue
            try:
                s = Sampler(cfg, n, dev, dtype)
                with torch.inference_mode():
                    for _ in range(max(a.warmup, 2 if variant == "compile" else 0)):
                        s.step(model)
                    timer.sync()
                    ms = timer.time_ms(lambda: s.step(model), a.sample_steps)
                    per = statistics.median(ms)
                    full = None
                    if a.full_sampling and 250 * per / 1e3 < 0.8 * (a.budget - elapsed()):
                        full = sum(timer.time_ms(lambda: s.step(model), 250)) / 1e3
            except Exception as e:  # noqa: BLE001
                emit({"kind": "error", "variant": variant, "images": n, "what": str(e).splitlines()[0][:300]})
                rows.append((variant, "sample %d img" % n, "-", "error", "-", "-"))
                continue
            r = {"kind": "sample", "variant": variant, "images": n, "rows": 2 * n, "cfg_scale": 4.0,
                 "steps_timed": len(ms), "ms_per_step": round(per, 3), "est_250_s": round(250 * per / 1e3, 2)}
            if full is not None:
                r["measured_250_s"] = round(full, 2)
            ips = 2 * n * 1e3 / per
            if peak:
                r["mfu"] = round(ips * flop_img / (peak * 1e12), 4)
            emit(r)
            rows.append((variant, "sample %d img, CFG 4" % n, "%.2f img/s (250 steps)" % (n / (250 * per / 1e3)),
                         "%.3f ms/step" % per, "%.1f TFLOP/s" % (ips * flop_img / 1e12),
                         "%.1f%%" % (100 * r["mfu"]) if peak else "-"))
        if model is not base:
            del model
            if dev.type == "cuda":
                torch.cuda.empty_cache()

    lines = ["| variant | measurement | throughput | time | compute | MFU (bf16 peak) |",
             "|---|---|---|---|---|---|"] + ["| %s |" % " | ".join(r) for r in rows]
    table = "\n".join(lines)
    print(table, flush=True)
    if a.table_out:
        with open(a.table_out, "w") as f:
            f.write(table + "\n")
    emit({"kind": "done", "elapsed_s": round(elapsed(), 1)})
    return 0


if __name__ == "__main__":
    sys.exit(main())
