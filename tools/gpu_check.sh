#!/usr/bin/env bash
# tools/gpu_check.sh: the single command of a GPU visit (issue #5). Runs THERE, from the repo
# root, with bundle/ carried (made here by tools/gpu_bundle.sh). It always finishes within
# GPU_CHECK_BUDGET seconds (default 480) and always writes $OUT/results.md and results.json.
# Stages, most important first; each logs to $OUT/<stage>.log and adds a line to results.md,
# and is skipped when the budget is spent:
#   00_env       GPU, driver, CUDA, python/torch; ldd of the bundle's binaries (a missing
#                library stops the ditc stages with the list; PyTorch's still run)
#   05_plans     only when this driver cannot load the bundle's kernels (cubins of a newer CUDA):
#                the bundle's ditc compiles every plan again here into out/plans_here
#   10_tests     every bundle/bin/test_gpu*: exit 0 pass, 77 skip, else fail; they get the
#                precompiled plans (DIT_TEST_PLAN_DIR), ditc, the specs and this GPU's arch
#   20_sanitizer compute-sanitizer memcheck on a small forward and sampling (tiny spec)
#   25_tune      dit tune of the bf16 XL/2-256 plan on this GPU (its kernel candidates and
#                cuBLASLt algorithms, at 128 rows: 64 images with guidance), into out/tuned
#   30_ditc      bench_forward, random weights, DiT-XL/2-256 plans (bf16 tuned, bf16, tf32, fp32):
#                forward at batch 1, 8, 64, 256; DDPM sampling with CFG 4 at 8 and 64 images
#                (250 steps, respaced to fewer when slow: the 250-step time is then extrapolated)
#   40_torch     bench/gpu_torch_bench.py: bf16 matmul peak, SDPA attention, eager fp32+TF32 and
#                bf16 + SDPA forward and sampling step
#   50_compile   the same, torch.compile(mode="max-autotune"), with whatever time is left
# then results.md: card, date, commit, images/s, ms per step, MFU against the measured bf16
# matmul peak (2 * gmacs * 1e9 FLOP per image, the paper's convention), ditc/PyTorch ratios.
# GPU_CHECK_DRYRUN=1 runs the same flow on a machine without a GPU: CPU forwards of the tiny
# plans, the PyTorch side in --smoke mode, no sanitizer. OUT defaults to out/gpu_check;
# GPU_CHECK_PYTHON (default python3) is the Python that has torch.
set -u
start=$(date +%s)
budget=${GPU_CHECK_BUDGET:-480}
dry=${GPU_CHECK_DRYRUN:-0}
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root" || exit 1
py=${GPU_CHECK_PYTHON:-python3}
OUT=${OUT:-$root/out/gpu_check}
mkdir -p "$OUT"
B=$root/bundle
res=$OUT/results.md
failed=0

now() { date +%s; }
left() { echo $((budget - ($(now) - start))); }
min() { if [ "$1" -lt "$2" ]; then echo "$1"; else echo "$2"; fi; }
note() { echo "$*" >>"$res"; echo "$*"; }
# stage_line NAME STATUS SECONDS DETAIL
stage_line() { note "- \`$1\`: **$2** (${3} s) $4"; }

# Our binaries see the bundle's libraries first, then the CUDA toolkit's; never export this
# (PyTorch must keep its own libgomp and CUDA libraries).
cuda_dirs=""
for d in /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib /usr/local/cuda/lib \
         /usr/local/nvidia/lib64 /usr/local/nvidia/lib /usr/lib/x86_64-linux-gnu; do
  [ -d "$d" ] && cuda_dirs="$cuda_dirs:$d"
done
brun() { LD_LIBRARY_PATH="$B/lib$cuda_dirs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" "$@"; }
export -f brun 2>/dev/null
export B cuda_dirs

{
  echo "# GPU check $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
  echo
  echo "budget ${budget} s$([ "$dry" = 1 ] && echo ', DRY RUN (no GPU: CPU forwards of tiny plans, torch --smoke)')"
  echo
  echo "## Stages"
} >"$res"

final() {
  [ -n "${final_done:-}" ] && return
  final_done=1
  local t0; t0=$(now)
  if timeout -k 5 30 "$py" - "$OUT" "$root" "$B" "$dry" >"$OUT/summary.tmp" 2>&1 <<'PY'
import glob, json, os, sys, time
out, root, bundle, dry = sys.argv[1:5]
recs = []
for log in sorted(glob.glob(os.path.join(out, "*.log"))):
    stage = os.path.basename(log)[:-4]
    for line in open(log, errors="replace"):
        line = line.strip()
        if line.startswith("{") and line.endswith("}"):
            try:
                r = json.loads(line)
            except ValueError:
                continue
            r.setdefault("stage", stage)
            recs.append(r)
env = {}
for r in recs:
    if r.get("kind") in ("gpu_env", "env"):
        env.update({k: v for k, v in r.items() if k not in ("kind", "stage")})
def rd(p):
    try:
        return open(p).read().strip()
    except OSError:
        return ""
gmacs = 118.637937
try:
    gmacs = json.load(open(os.path.join(bundle, "plans", "tiny.info.json" if dry == "1" else "XL2_256.info.json")))["gmacs"]
except (OSError, ValueError, KeyError):
    pass
flop = 2.0 * gmacs * 1e9
peak = next((r["tflops"] for r in recs if r.get("kind") == "peak" and r.get("dtype") == "bf16"), None)
tf32peak = next((r["tflops"] for r in recs if r.get("kind") == "peak" and r.get("dtype") == "tf32"), None)
att = next((r for r in recs if r.get("kind") == "attention"), None)

# one row per (implementation, precision, measurement)
fwd, smp = {}, {}
for r in recs:
    if r.get("src") == "ditc" and r.get("mode") == "forward":
        fwd[("ditc", r["dtype"], r["batch"])] = (r["images_per_s"], r["median_ms"])
    elif r.get("src") == "ditc" and r.get("mode") == "sample":
        smp[("ditc", r["dtype"], r["images"])] = r
    elif r.get("kind") == "forward":
        fwd[("torch", r["variant"], r["batch"])] = (r["images_per_s"], r["median_ms"])
    elif r.get("kind") == "sample":
        smp[("torch", r["variant"], r["images"])] = dict(r, est_250_ms=r["est_250_s"] * 1e3, steps=r["steps_timed"])
skips = [r for r in recs if r.get("kind") == "skip"]
baseline = {"tf32": "eager_tf32", "fp32": "eager_tf32", "bf16": "bf16_sdpa", "bf16-tuned": "bf16_sdpa"}
def ratio(impl, prec, key, table, val):
    if impl != "ditc":
        return "", ""
    a = table.get(("torch", baseline.get(prec, "eager_tf32"), key))
    c = table.get(("torch", "compile", key))
    f = lambda t: ("%.2fx" % (val / t)) if t else ""
    return f(a and (a[0] if table is fwd else 1e3 / a["ms_per_step"])), \
        f(c and (c[0] if table is fwd else 1e3 / c["ms_per_step"]))
L = []
card = env.get("gpu") or env.get("gpu_name") or ("none (dry run)" if dry == "1" else "?")
commit_tree = env.get("commit_tree", "")
commit_bundle = rd(os.path.join(bundle, "COMMIT"))
L.append("## Results")
L.append("")
L.append("| card | driver | CUDA | torch | date | commit (bundle) | commit (tree there) |")
L.append("|---|---|---|---|---|---|---|")
L.append("| %s | %s | %s | %s | %s | %s | %s |" % (card, env.get("driver", ""), env.get("cuda_driver", env.get("cuda", "")),
         env.get("torch", ""), time.strftime("%Y-%m-%d", time.gmtime()), commit_bundle[:12] + ("+dirty" if "dirty" in commit_bundle else ""),
         commit_tree[:12] or "no .git"))
L.append("")
L.append("FLOP per image forward: 2 x %.3f GMACs (the paper's convention). MFU = images/s x FLOP / measured bf16 "
         "matmul peak (%s TFLOP/s%s). Ratios: ditc speed / PyTorch speed, TF32 and fp32 plans against eager "
         "fp32+TF32 (the official setting), bf16 plans against bf16+SDPA; the last column against "
         "torch.compile max-autotune (bf16)." % (gmacs, ("%.0f" % peak) if peak else "not measured",
                                                   (", TF32 %.0f" % tf32peak) if tf32peak else ""))
if att:
    L.append("")
    L.append("FlashAttention-2 via SDPA (bf16, %s = B*heads x T x hd): %s TFLOP/s." % (
        "x".join(str(v) for v in att["shape"]), att["tflops"].get("flash", att["tflops"].get("default"))))
L.append("")
L.append("### Forward (random weights)")
L.append("")
L.append("| implementation | precision | batch | images/s | ms / forward | TFLOP/s | MFU | vs PyTorch | vs compile |")
L.append("|---|---|---|---|---|---|---|---|---|")
order = [("ditc", "tf32"), ("ditc", "bf16-tuned"), ("ditc", "bf16"), ("ditc", "fp32"), ("torch", "eager_tf32"), ("torch", "bf16_sdpa"), ("torch", "compile")]
for impl, prec in order:
    for b in sorted({k[2] for k in fwd if k[0] == impl and k[1] == prec}):
        ips, ms = fwd[(impl, prec, b)]
        r1, r2 = ratio(impl, prec, b, fwd, ips)
        L.append("| %s | %s | %d | %.1f | %.3f | %.1f | %s | %s | %s |" % (
            "ditc" if impl == "ditc" else "PyTorch", prec, b, ips, ms, ips * flop / 1e12,
            ("%.1f%%" % (100 * ips * flop / (peak * 1e12))) if peak else "", r1, r2))
L.append("")
L.append("### Sampling: DDPM, CFG 4 (2N rows per step)")
L.append("")
L.append("| implementation | precision | images | steps run | ms / step | 250 steps (s) | images/s | MFU | vs PyTorch | vs compile |")
L.append("|---|---|---|---|---|---|---|---|---|---|")
for impl, prec in order:
    for n in sorted({k[2] for k in smp if k[0] == impl and k[1] == prec}):
        r = smp[(impl, prec, n)]
        per = r["ms_per_step"]
        t250 = r.get("measured_250_s") or r["est_250_ms"] / 1e3
        measured = r.get("steps") == 250 or "measured_250_s" in r
        r1, r2 = ratio(impl, prec, n, smp, 1e3 / per)
        L.append("| %s | %s | %d | %s | %.3f | %.2f%s | %.2f | %s | %s | %s |" % (
            "ditc" if impl == "ditc" else "PyTorch", prec, n, r.get("steps"), per, t250,
            "" if measured else " (extrapolated)", n / t250,
            ("%.1f%%" % (100 * 2 * n * 1e3 / per * flop / (peak * 1e12))) if peak else "", r1, r2))
if skips:
    L.append("")
    L.append("Skipped for time or support: " + "; ".join(
        "%s %s" % (s.get("variant", "?"), s.get("batch", s.get("images", ""))) + (" (%s)" % s.get("why")) for s in skips))
errs = [r for r in recs if r.get("kind") == "error"]
if errs:
    L.append("")
    L.append("Errors: " + "; ".join("%s: %s" % (e.get("variant", e.get("stage")), e.get("what")) for e in errs))
print("\n".join(L))
json.dump({"card": card, "env": env, "commit_bundle": commit_bundle, "commit_tree": commit_tree,
           "gmacs": gmacs, "peak_bf16_tflops": peak, "records": recs},
          open(os.path.join(out, "results.json"), "w"), indent=1)
PY
  then
    { echo; cat "$OUT/summary.tmp"; } >>"$res"
  else
    { echo; echo "summary failed:"; echo '```'; cat "$OUT/summary.tmp"; echo '```'; } >>"$res"
  fi
  rm -f "$OUT/summary.tmp"
  echo >>"$res"
  echo "total $(( $(now) - start )) s of ${budget} s" >>"$res"
  echo "== results.md"
  cat "$res"
}
trap 'echo "gpu_check: interrupted" >>"$res"; final; exit 130' TERM INT

# ---- 00_env ---------------------------------------------------------------------------------
log=$OUT/00_env.log
t0=$(now)
env_ok=1
why=""
{
  echo "== nvidia-smi -L"; timeout 20 nvidia-smi -L 2>&1
  echo "== nvidia-smi"; timeout 20 nvidia-smi 2>&1
  echo "== nvidia-smi -q (clocks, power)"; timeout 20 nvidia-smi -q -d CLOCK,POWER 2>&1 | head -60
  echo "== nvcc"; timeout 20 nvcc --version 2>&1 || timeout 20 /usr/local/cuda/bin/nvcc --version 2>&1
  echo "== compute-sanitizer"; timeout 20 compute-sanitizer --version 2>&1 | head -3
  echo "== python / torch"
  timeout 60 "$py" -c 'import sys, torch; print(sys.version); print("torch", torch.__version__, "cuda", torch.version.cuda, "available", torch.cuda.is_available())' 2>&1 | tee "$OUT/torch_v.tmp"
  echo "== cpu / memory"; grep -m1 'model name' /proc/cpuinfo; nproc; free -g 2>/dev/null | head -2
  echo "== os"; uname -a; head -2 /etc/os-release 2>/dev/null; ldd --version 2>&1 | head -1
  echo "== library path for the bundle: $B/lib$cuda_dirs"
} >"$log" 2>&1
gpu_name=$(timeout 20 nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1)
driver=$(timeout 20 nvidia-smi --query-gpu=driver_version --format=csv,noheader 2>/dev/null | head -1)
cuda_drv=$(timeout 20 nvidia-smi 2>/dev/null | sed -n 's/.*CUDA Version: *\([0-9.]*\).*/\1/p' | head -1)
torch_v=$(sed -n 's/^torch \([^ ]*\) .*/\1/p' "$OUT/torch_v.tmp" 2>/dev/null); rm -f "$OUT/torch_v.tmp"
commit_tree=$(git rev-parse HEAD 2>/dev/null || true)
echo "{\"kind\": \"gpu_env\", \"gpu\": \"${gpu_name}\", \"driver\": \"${driver}\", \"cuda_driver\": \"${cuda_drv}\", \"torch\": \"${torch_v}\", \"commit_tree\": \"${commit_tree}\"}" >>"$log"
if [ ! -d "$B/bin" ]; then
  env_ok=0; why="bundle/ is missing: make it with tools/gpu_bundle.sh and pass carry=[\"bundle\"]"
else
  for b in "$B"/bin/*; do
    echo "== ldd $(basename "$b")" >>"$log"
    brun ldd "$b" >>"$log" 2>&1
    miss=$(brun ldd "$b" 2>&1 | awk '/not found/ {print $1}' | tr '\n' ' ')
    [ -n "$miss" ] && { env_ok=0; why="$why $(basename "$b") lacks: $miss;"; }
  done
fi
if [ -z "$gpu_name" ] && [ "$dry" != 1 ]; then env_ok=0; why="$why no GPU (nvidia-smi found none);"; fi
if [ $env_ok = 1 ]; then
  stage_line 00_env ok $(( $(now) - t0 )) "${gpu_name:-no GPU}, driver ${driver:-?}, CUDA ${cuda_drv:-?}, torch ${torch_v:-none}; bundle $(cat "$B/COMMIT" 2>/dev/null), plans for $(cat "$B/plans/ARCH" 2>/dev/null)"
else
  stage_line 00_env FAIL $(( $(now) - t0 )) "$why -- the ditc stages are skipped"
  echo "gpu_check: $why" >&2
  failed=1
fi

# The test binaries carry the source and build paths of the machine that built them
# (DIT_SOURCE_DIR, DITC_BIN): make those paths lead here.
srcdir=$(sed -n "s/^srcdir *//p" "$B/MANIFEST.txt" 2>/dev/null | head -1)
if [ $env_ok = 1 ] && [ -n "$srcdir" ] && [ "$srcdir" != "$root" ]; then
  if [ ! -e "$srcdir" ]; then
    mkdir -p "$(dirname "$srcdir")" 2>/dev/null && ln -s "$root" "$srcdir" 2>/dev/null \
      && echo "linked $srcdir -> $root" >>"$log"
  fi
  for p in compiler/ditc runtime/dit bench/bench_forward; do
    if [ ! -e "$root/build-gpu/$p" ]; then
      mkdir -p "$root/build-gpu/$(dirname "$p")" && ln -s "$B/bin/$(basename "$p")" "$root/build-gpu/$p"
    fi
  done
fi

# ---- plans: the bundle's, unless this driver cannot load their kernels -----------------------
# The bundle's plans hold cubins and PTX from the NVRTC of the machine that made them (CUDA 13);
# a driver of an older CUDA refuses them (cuModuleLoadDataEx: UNSUPPORTED_PTX_VERSION, INVALID_IMAGE).
# Then ditc compiles them again here, with this machine's NVRTC, for this GPU's arch.
PL=$B/plans
cc=$(timeout 20 nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -1 | tr -d ' .')
dev_arch=${cc:+sm_$cc}
[ -z "$dev_arch" ] && dev_arch=$(cat "$B/plans/ARCH" 2>/dev/null)
[ "$dev_arch" = none ] && dev_arch=sm_90
if [ $env_ok = 1 ] && [ "$dry" != 1 ] && [ -f "$B/plans/tiny_fp32.plan" ]; then
  probe=$(timeout -k 5 60 bash -c "brun \"\$B/bin/bench_forward\" \"\$B/plans/tiny_fp32.plan\" --random-weights 1 \
    --device cuda --batch 1 --iters 1" 2>&1)
  echo "== plan probe (bundle tiny_fp32.plan on cuda): $probe" >>"$log"
  if echo "$probe" | grep -qE 'cuModuleLoadDataEx|no image for'; then
    PL=$root/out/plans_here
    mkdir -p "$PL/test"
    t0=$(now)
    for f in "$B"/plans/*.plan "$B"/plans/test/*.plan; do
      [ -f "$f" ] || continue
      base=$(basename "$f" .plan); dt=${base##*_}; sp=${base%_*}
      case $sp in tiny*) spec=specs/tests/$sp.dit ;; *) spec=specs/$sp.dit ;; esac
      case $f in */test/*) dst=$PL/test/$base.plan; b=4 ;; XL2*|*/XL2*) dst=$PL/$base.plan; b=256 ;; *) dst=$PL/$base.plan; b=16 ;; esac
      timeout 120 bash -c "brun \"\$B/bin/ditc\" $spec -o $dst --batch $b --dtype $dt --arch $dev_arch" >>"$log" 2>&1 \
        || echo "recompiling $base for $dev_arch failed" >>"$log"
    done
    cp "$B"/plans/*.json "$PL/" 2>/dev/null
    stage_line 05_plans recompiled $(( $(now) - t0 )) "the bundle's kernels do not load on this driver: plans compiled here for $dev_arch into out/plans_here"
  fi
fi

# all_ok " a:0 b:skip c:1": every exit code 0 (or skipped)
all_ok() { ! echo "$1" | tr ' ' '\n' | grep -v '^$' | grep -qvE ':(0|skip)$'; }

status_of() { case $1 in 0) echo ok ;; skip) echo "skipped (time)" ;; *) echo "FAIL($1)" ;; esac; }

# run_stage NAME CAP MIN_NEEDED COMMAND... : runs COMMAND (a program: timeout cannot run the shell
# function brun, so stages wrap it in bash -c) under the smallest of CAP, the time
# left (keeping 15 s for the summary) and the stage's own end ($stage_end, when set), logging to $OUT/NAME.log; sets $rc and $took.
run_stage() {
  local name=$1 cap=$2 need=$3; shift 3
  local l; l=$(( $(left) - 15 ))
  local t; t=$(min "$cap" "$l")
  [ -n "${stage_end:-}" ] && t=$(min "$t" $((stage_end - $(now))))
  if [ "$t" -lt "$need" ]; then rc=skip; took=0; return; fi
  local t0; t0=$(now)
  timeout -k 10 "$t" "$@" >>"$OUT/$name.log" 2>&1
  rc=$?
  took=$(( $(now) - t0 ))
  [ $rc = 124 ] || [ $rc = 137 ] && rc="timeout(${t}s)"
}

# ---- 10_tests -------------------------------------------------------------------------------
: >"$OUT/10_tests.log"
if [ $env_ok = 1 ]; then
  tests=$(ls "$B"/bin/test_gpu* 2>/dev/null)
  if [ -z "$tests" ]; then
    stage_line 10_tests none 0 "no test_gpu* binary in the bundle (no CTest label gpu when it was built)"
  else
    t0=$(now); pass=0; skip=0; fail=""; stage_end=$(( $(now) + 120 ))
    for tb in $tests; do
      echo "== $(basename "$tb")" >>"$OUT/10_tests.log"
      # plans from the bundle (or compiled here above); ditc and the specs from here
      run_stage 10_tests 120 10 env DIT_TEST_PLAN_DIR="$PL/test" DIT_TEST_ARCH="$dev_arch" \
        DIT_TEST_DITC="$B/bin/ditc" DIT_TEST_SOURCE_DIR="$root" bash -c 'brun "$0"' "$tb"
      echo "== $(basename "$tb"): rc=$rc" >>"$OUT/10_tests.log"
      case $rc in 0) pass=$((pass + 1)) ;; 77) skip=$((skip + 1)) ;; *) fail="$fail $(basename "$tb")($rc)" ;; esac
    done
    [ -n "$fail" ] && failed=1
    stage_end=""
    stage_line 10_tests "$([ -z "$fail" ] && echo pass || echo FAIL)" $(( $(now) - t0 )) "$pass passed, $skip skipped${fail:+, failed:$fail}"
  fi
else
  stage_line 10_tests skipped 0 "(environment)"
fi

# ---- 20_sanitizer ---------------------------------------------------------------------------
: >"$OUT/20_sanitizer.log"
san=$(command -v compute-sanitizer || ls /usr/local/cuda/bin/compute-sanitizer 2>/dev/null)
if [ "$dry" = 1 ]; then
  stage_line 20_sanitizer skipped 0 "(dry run)"
elif [ $env_ok != 1 ] || [ -z "$san" ]; then
  stage_line 20_sanitizer skipped 0 "$([ -z "$san" ] && echo '(no compute-sanitizer)' || echo '(environment)')"
else
  t0=$(now); detail=""; stage_end=$(( $(now) + 75 ))
  for args in "tiny_bf16.plan --batch 3 --iters 1" "tiny_bf16.plan --sample 2 --steps 3" \
              "tiny_fp32.plan --batch 5 --iters 1" "tiny_tf32.plan --sample 2 --steps 3"; do
    plan=${args%% *}
    echo "== memcheck bench_forward $args" >>"$OUT/20_sanitizer.log"
    # shellcheck disable=SC2086
    run_stage 20_sanitizer 60 15 bash -c 'brun "$@"' brun "$san" --tool memcheck --leak-check full --error-exitcode 9 \
      "$B/bin/bench_forward" "$PL/$plan" --random-weights 1 --device cuda ${args#* }
    detail="$detail ${plan%.plan}:${rc}"
    [ "$rc" != 0 ] && [ "$rc" != skip ] && failed=1
  done
  stage_end=""
  stage_line 20_sanitizer "$(all_ok "$detail" && echo ok || echo FAIL)" $(( $(now) - t0 )) \
    "memcheck exit codes (0 clean, 9 errors found):$detail"
fi

# ---- 25_tune ---------------------------------------------------------------------------------
: >"$OUT/25_tune.log"
TUNED=$root/out/tuned
mkdir -p "$TUNED"
if [ $env_ok = 1 ]; then
  t0=$(now)
  if [ "$dry" = 1 ]; then tp=tiny_bf16 tdev=cpu trows=16; else tp=XL2_256_bf16 tdev=cuda trows=128; fi
  if [ -f "$PL/$tp.plan" ] && [ -x "$B/bin/dit" ]; then
    run_stage 25_tune 100 20 bash -c "brun \"\$B/bin/dit\" tune \"$PL/$tp.plan\" -o \"$TUNED/$tp.plan\" \
      --device $tdev --batch $trows --budget 75 --repeats 5"
    [ "$rc" != 0 ] && [ "$rc" != skip ] && failed=1
    stage_line 25_tune "$(status_of "$rc")" $(( $(now) - t0 )) "$(grep '^forward:' "$OUT/25_tune.log" | head -1)"
  else
    stage_line 25_tune skipped 0 "(no $tp.plan or no dit in the bundle)"
  fi
else
  stage_line 25_tune skipped 0 "(environment)"
fi

# ---- 30_ditc --------------------------------------------------------------------------------
: >"$OUT/30_ditc.log"
if [ $env_ok = 1 ]; then
  t0=$(now); detail=""; stage_end=$(( $(now) + 180 ))
  if [ "$dry" = 1 ]; then
    set -- "bf16-tuned tuned/tiny_bf16 1,8,16 2,8 300 40" "tf32 tiny_tf32 1,8,16 2,8 300 40" \
           "bf16 tiny_bf16 1,8,16 2,8 300 40" "fp32 tiny_fp32 1,8,16 2,8 300 40"
    dev=cpu
  else
    # dtype plan batches images max-ms-per-sampling cap-seconds (bf16 first: the plans that can beat PyTorch)
    set -- "bf16-tuned tuned/XL2_256_bf16 1,8,64,256 8,64 15000 60" "bf16 XL2_256_bf16 1,8,64,256 8,64 15000 75" \
           "tf32 XL2_256_tf32 1,8,64,256 8,64 15000 60" \
           "fp32 XL2_256_fp32 1,8,64,256 8,64 8000 40"
    dev=cuda
  fi
  for spec in "$@"; do
    read -r dt plan batches imgs maxms cap <<<"$spec"
    case $plan in tuned/*) pfile=$TUNED/${plan#tuned/}.plan ;; *) pfile=$PL/$plan.plan ;; esac
    if [ ! -f "$pfile" ]; then detail="$detail $dt:no-plan"; continue; fi
    echo "== $dt: bench_forward $plan.plan --device $dev --batch $batches --sample $imgs --max-ms $maxms" >>"$OUT/30_ditc.log"
    run_stage 30_ditc "$cap" 20 bash -c "brun \"\$B/bin/bench_forward\" \"$pfile\" --random-weights 1 \
      --device $dev --batch $batches --iters 10 --sample $imgs --max-ms $maxms \
      | sed -u 's/^{/{\"src\": \"ditc\", \"dtype\": \"$dt\", /'; exit \${PIPESTATUS[0]}"
    detail="$detail $dt:$rc"
    [ "$rc" != 0 ] && [ "$rc" != skip ] && failed=1
  done
  stage_end=""
  stage_line 30_ditc "$(all_ok "$detail" && echo ok || echo partial)" $(( $(now) - t0 )) "exit codes:$detail"
else
  stage_line 30_ditc skipped 0 "(environment)"
fi

# ---- 40_torch, 50_compile -------------------------------------------------------------------
: >"$OUT/40_torch.log"
: >"$OUT/50_compile.log"
info=$B/plans/XL2_256.info.json
targs=(--info "$info")
[ -f "$info" ] || targs=()
[ "$dry" = 1 ] && targs=(--smoke)
export PYTHONUNBUFFERED=1
l=$(( $(left) - 15 )); cap=$(min 110 "$l")
run_stage 40_torch 110 30 "$py" bench/gpu_torch_bench.py "${targs[@]}" --variants eager_tf32,bf16_sdpa --budget $((cap - 10))
stage_line 40_torch "$(status_of "$rc")" "$took" "eager fp32+TF32, bf16+SDPA, matmul peak, SDPA attention"
l=$(( $(left) - 15 ))
run_stage 50_compile "$l" 60 "$py" bench/gpu_torch_bench.py "${targs[@]}" --variants compile --no-peak --no-attention \
  --budget $((l - 10)) --compile-min-s "$([ "$dry" = 1 ] && echo 0 || echo 60)"
stage_line 50_compile "$(status_of "$rc")" "$took" "torch.compile max-autotune (bf16); shapes it had no time for are listed as skipped"

final
exit $failed
