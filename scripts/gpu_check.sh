#!/usr/bin/env bash
# Every GPU measurement still owed (docs/benchmarks/performance.md, "Owed: GPU measurements"), in one go,
# within 8 minutes on one H200, each step under its own timeout:
#
#   1. gpu_tests     pytest -m gpu tests/kernels: kernel parity (fp32/fp64, every direction),
#                    whole model torch vs Triton, AOT-autograd tracing            (100 s)
#   2. training      the training-loss comparison: facet-s float32, 100 steps on acac, torch
#                    vs Triton backend, per-step loss within 1e-3 relative        (100 s)
#   3. md_step       10,000-atom facet-s MD step (fcc Cu, float32), torch and Triton backends,
#                    E+F and E+F+S, peak torch.cuda.max_memory_allocated          (60 s)
#   4. bench_model   scripts/bench_kernels.py's facet-s MD and training step at 10,000 atoms,
#                    torch and Triton, with peak memory                           (60 s)
#   5. bench_inference  scripts/bench_inference.py --device cuda                  (50 s)
#   6. bench_conv    scripts/bench_kernels.py --skip-model: Gaunt-grid conv vs CG vs e3nn vs
#                    cuEquivariance, l_max 1..6 x C 64..256, time and memory       (150 s)
#   7. compile       pytest -m gpu tests/train/test_compiled.py: run.compile's inductor
#                    (Triton) graphs on CUDA against eager, both families   (what is left)
#
# Each step runs under min(its timeout, the budget left); the budget is 470 s in all.
# Results go to OUTDIR (default $OUT if set, else ./gpu_check_out): per step NAME.log (all
# output), NAME.md / NAME.xml where the step writes them and step_NAME.json (status, seconds,
# command); then summary.md (markdown for docs/benchmarks/) and summary.json.
# A step that fails or times out is recorded and the next one runs; the exit status is 1 if
# any step did not pass.
#
#   bash scripts/gpu_check.sh [--out DIR] [--budget SECONDS]
#   bash scripts/gpu_check.sh --dry-run   # CPU: every step starts (imports, arguments, tiny
#                                         # sizes, CPU device); run in CI
set -u -o pipefail

cd "$(dirname "$0")/.."
DRY=0
OUTDIR="${OUT:-./gpu_check_out}"
BUDGET=470  # seconds for all steps: 8 minutes less the start and the report
while [ $# -gt 0 ]; do
  case "$1" in
    --dry-run) DRY=1 ;;
    --out) OUTDIR="$2"; shift ;;
    --budget) BUDGET="$2"; shift ;;
    -h|--help) sed -n '2,27p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "gpu_check.sh: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done
mkdir -p "$OUTDIR"
PY="${PYTHON:-python3}"
# The scripts import mlip from this checkout whether or not it is installed.
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
START=$(date +%s)
FAILED=0

# meta.json: what ran where
"$PY" - "$OUTDIR" "$DRY" <<'EOF'
import datetime, json, subprocess, sys
import torch
try:
    import triton
    tv = triton.__version__
except ImportError:
    tv = None
dev = torch.cuda.get_device_name() if torch.cuda.is_available() else "CPU (no CUDA device)"
try:
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip() or None
except OSError:
    commit = None
json.dump({"device": dev, "torch": torch.__version__, "triton": tv, "commit": commit,
           "date": datetime.date.today().isoformat(), "dry_run": sys.argv[2] == "1"},
          open(f"{sys.argv[1]}/meta.json", "w"), indent=1)
EOF
[ $? -eq 0 ] || { echo "gpu_check.sh: cannot import torch" >&2; exit 1; }

# step NAME TIMEOUT COMMAND...: runs it under min(TIMEOUT, budget left), logs, records status
step() {
  local name="$1" limit="$2"; shift 2
  local left=$(( BUDGET - ($(date +%s) - START) ))
  [ "$limit" -gt "$left" ] && limit=$left
  local t0=$(date +%s) status rc
  if [ "$limit" -lt 5 ]; then
    status="not run: out of budget"; rc=124
    echo "$status" > "$OUTDIR/$name.log"
  else
    echo "== $name (timeout ${limit}s): $*"
    timeout --kill-after=10 "$limit" env PYTHONUNBUFFERED=1 "$@" > "$OUTDIR/$name.log" 2>&1
    rc=$?
    case $rc in
      0) status=ok ;;
      124|137) status="timeout after ${limit}s" ;;
      *) status="failed (exit $rc)" ;;
    esac
  fi
  [ $rc -eq 0 ] || FAILED=1
  local secs=$(( $(date +%s) - t0 ))
  echo "   $status, ${secs}s"
  "$PY" -c 'import json, sys; n, s, t, c = sys.argv[1:5]; json.dump({"name": n, "status": s,
"seconds": float(t), "command": c}, open(sys.argv[5], "w"))' \
    "$name" "$status" "$secs" "$*" "$OUTDIR/step_$(printf '%s' "$name").json"
}

# skip NAME REASON: a step that cannot run here, recorded without failing the check
skip() {
  echo "== $1: skipped: $2"
  echo "skipped: $2" > "$OUTDIR/$1.log"
  "$PY" -c 'import json, sys; json.dump({"name": sys.argv[1], "status": "skipped: " + sys.argv[2],
"seconds": 0.0, "command": ""}, open(sys.argv[3], "w"))' "$1" "$2" "$OUTDIR/step_$1.json"
}

# bench_inference.py is being reworked: use the options its --help offers.
BI=("$PY" scripts/bench_inference.py)
BI_HELP=$("${BI[@]}" --help 2>&1)
BI_DEVICE=0
grep -q -- "--device" <<<"$BI_HELP" && BI_DEVICE=1
grep -q -- "--json" <<<"$BI_HELP" && BI+=(--json "$OUTDIR/bench_inference.json")

PYTEST=("$PY" -m pytest -p no:cacheprovider -p no:xdist)
TRAIN_TEST=tests/kernels/test_training_backends.py::test_triton_training_follows_the_reference_cuda_100_steps
if [ $DRY -eq 1 ]; then
  # CPU: collect the GPU tests (imports, markers, the training test among them), run every
  # script at tiny sizes on CPU. No budget pressure here, only a check that each can start.
  BUDGET=1200
  step 1_gpu_tests 300 "${PYTEST[@]}" -q --collect-only -m gpu tests/kernels
  step 2_training 10 grep -q "${TRAIN_TEST#*::}" "$OUTDIR/1_gpu_tests.log"
  step 3_md_step 300 "$PY" scripts/gpu_check.py md-step --out "$OUTDIR" --device cpu \
    --atoms 32 --backends torch --repeats 1 --warmup 0
  # one bench_kernels run checks both of its GPU steps: the model section and every contender
  # that runs on CPU; step 6 then checks only its arguments
  step 4_bench_model 300 "$PY" scripts/bench_kernels.py --dry-run --contenders gaunt-grid cg e3nn
  [ $BI_DEVICE -eq 1 ] && BI+=(--device cpu)
  step 5_bench_inference 300 "${BI[@]}" --sizes 108 --repeats 1 --models facet-s
  step 6_bench_conv 300 "$PY" scripts/bench_kernels.py --dry-run --skip-model \
    --contenders cuequivariance
  step 7_compile 300 "${PYTEST[@]}" -q --collect-only -m gpu tests/train/test_compiled.py
else
  # Correctness first, then the owed numbers; the long convolution sweep last (its rows are
  # printed as they come, so a timeout keeps those done). pytest -v logs each test as it
  # ends, for the same reason.
  step 1_gpu_tests 100 "${PYTEST[@]}" -v -m gpu tests/kernels --deselect "$TRAIN_TEST" \
    --junitxml="$OUTDIR/1_gpu_tests.xml"
  step 2_training 100 "${PYTEST[@]}" -v -s -m gpu "$TRAIN_TEST" \
    --junitxml="$OUTDIR/2_training.xml"
  step 3_md_step 60 "$PY" scripts/gpu_check.py md-step --out "$OUTDIR" --device cuda \
    --atoms 10000 --backends torch triton --repeats 5
  # bench_kernels' end-to-end section: facet-s MD and training step at 10,000 atoms, both
  # backends, with a one-row convolution table before it
  step 4_bench_model 60 "$PY" scripts/bench_kernels.py --lmax 1 --channels 64 \
    --contenders gaunt-grid --repeats 5
  if [ $BI_DEVICE -eq 1 ]; then
    step 5_bench_inference 50 "${BI[@]}" --device cuda --repeats 5
  else
    skip 5_bench_inference "scripts/bench_inference.py has no --device option"
  fi
  step 6_bench_conv 150 "$PY" scripts/bench_kernels.py --skip-model --repeats 5
  # last: inductor compiles for a minute or more; a timeout loses only this step
  step 7_compile 150 "${PYTEST[@]}" -v -m gpu tests/train/test_compiled.py \
    --junitxml="$OUTDIR/7_compile.xml"
fi
# md_step writes md_step.md/json; the report reads it as the step's markdown
[ -f "$OUTDIR/md_step.md" ] && cp "$OUTDIR/md_step.md" "$OUTDIR/3_md_step.md"
"$PY" scripts/gpu_check.py report "$OUTDIR" || FAILED=1
echo "total $(( $(date +%s) - START ))s; results in $OUTDIR/summary.md"
exit $FAILED
