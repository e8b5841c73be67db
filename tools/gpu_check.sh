#!/usr/bin/env bash
# The GPU check: everything the zoo has to show on a GPU, in one call of under 9 minutes, its results in one folder.
#
#   tools/gpu_check.sh --out DIR                          # on the GPU machine
#   tools/gpu_check.sh --out DIR --resume OLD/conv_vamp_run.tar.gz   # and go on training where an earlier call stopped
#   tools/gpu_check.sh --dry-run --out DIR                # the same steps on the CPU at tiny sizes (CI: tests/test_gpu_check.py)
#
# Steps, each logged to DIR/gpu_check.log with its seconds:
#   1. the tests marked gpu (tests/test_gpu.py): XLA training and evaluation, mixed_float16 with loss scaling (VAE,
#      AAE, hierarchical VAE), MirroredStrategy, whole-chunk XLA IS-NLL against the CPU path, export on the GPU and
#      serving on the CPU                                                               -> DIR/gpu_tests.xml
#   2. the speed benchmark against PyTorch (tools/bench_vs_torch.py), float32 and mixed  -> DIR/torch_comparison.json
#   3. a short keras-tuner search of beta, latent size and learning rate with XLA          -> DIR/search.json
#   4. recipes/ladder_vae/fashion_mnist_conv_vamp.yaml trained for what is left of --budget-seconds (killed then;
#      it resumes from its work folder), its best checkpoint evaluated (tools/checkpoint_nll.py)
#                                                          -> DIR/conv_vamp_run.tar.gz and DIR/conv_vamp_nll.json
# A step that fails is logged and the next one runs; the exit status is the number of failed steps.
#
# The lent GPU machine has PyTorch but not TensorFlow, and nothing can be fetched there: TensorFlow and the zoo's
# other requirements must travel as wheels in .whl/ (see /work/.library/device/README.md), which this installs.
set -uo pipefail
cd "$(dirname "$0")/.."

out="" resume="" dry_run=0 budget=510
while [ $# -gt 0 ]; do
  case "$1" in
    --out) out="$2"; shift 2 ;;
    --resume) resume="$2"; shift 2 ;;
    --dry-run) dry_run=1; shift ;;
    --budget-seconds) budget="$2"; shift 2 ;;
    -h|--help) sed -n '2,21p' "$0"; exit 0 ;;
    *) echo "gpu_check: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
[ -n "$out" ] || { echo "gpu_check: --out DIR is required" >&2; exit 2; }
mkdir -p "$out" || exit 2
out=$(cd "$out" && pwd)
# What comes back from a lent machine is a few files: the search, the benchmark's folders and the run work here.
work=$(mktemp -d "${TMPDIR:-/tmp}/gpu_check.XXXXXX")
log="$out/gpu_check.log"
started=$(date +%s)
failed=0

say() { echo "[gpu_check $(( $(date +%s) - started ))s] $*" | tee -a "$log"; }
step() {  # step NAME COMMAND...: run it, log its output and seconds, count a failure
  local name=$1; shift
  local begun=$(date +%s)
  say "step $name: $*"
  "$@" >>"$log" 2>&1
  local status=$?
  say "step $name: exit $status after $(( $(date +%s) - begun ))s"
  [ $status -eq 0 ] || failed=$((failed + 1))
  return 0
}

python=${PYTHON:-python3}
if [ -d .whl ] && ! "$python" -c "import tensorflow" 2>/dev/null; then
  say "installing the carried wheels of .whl/"
  "$python" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl >>"$log" 2>&1
  export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
if ! "$python" -c "import tensorflow, tensorflow_probability, keras_tuner" 2>>"$log"; then
  say "TensorFlow, TensorFlow Probability or keras-tuner cannot be imported by $python: carry them as wheels in .whl/"
  exit 2
fi
"$python" - >>"$log" 2>&1 <<'EOF'
import tensorflow as tf
print("TensorFlow", tf.__version__, "devices:", [d.name for d in tf.config.list_logical_devices()])
EOF

if [ $dry_run -eq 1 ]; then
  export VAE_ZOO_GPU_DRY_RUN=1 CUDA_VISIBLE_DEVICES=-1
  bench=(--dry-run --only mlp@28x28x1 --only conv@28x28x1)
  tune=(--smoke)
  train=(--smoke)
  nll=(--k 4 --limit 32)
else
  bench=(--torch-compile --round-seconds 1.5)
  tune=(--set search.max_trials=4 --set search.epochs=2)
  train=()
  nll=(--k 5000)
fi

# 1. The gpu tests.
step gpu_tests "$python" -m pytest -q -p no:cacheprovider -m gpu tests/test_gpu.py --junitxml="$out/gpu_tests.xml"

# 2. The speed benchmark, float32 then mixed precision (on the CPU the dry run times float32 only).
step bench_float32 "$python" tools/bench_vs_torch.py "${bench[@]}" --out "$work/bench_float32"
if [ $dry_run -eq 0 ]; then
  step bench_mixed "$python" tools/bench_vs_torch.py "${bench[@]}" --precision mixed --no-evaluate --out "$work/bench_mixed"
fi
"$python" - "$work" "$out" >>"$log" 2>&1 <<'EOF'
import json, sys
from pathlib import Path
work, out = Path(sys.argv[1]), Path(sys.argv[2])
tables = {p.name: json.loads((p / "torch_comparison.json").read_text())["results"] for p in sorted(work.glob("bench_*"))
          if (p / "torch_comparison.json").is_file()}
(out / "torch_comparison.json").write_text(json.dumps(tables, indent=1) + "\n")
for p in sorted(work.glob("bench_*/torch_comparison.md")):
    print(p.parent.name, "\n" + p.read_text())
EOF

# 3. A short search with XLA, as the project card describes.
step search "$python" -m vae_zoo tune recipes/vae/mnist_mini.yaml "${tune[@]}" --out "$work/search"
[ -f "$work/search/summary.json" ] && cp "$work/search/summary.json" "$out/search.json"

# 4. The conv two-level VampPrior VAE, for what is left of the budget; its work folder travels back to resume.
mkdir -p "$work/train"
if [ -n "$resume" ]; then
  say "resuming from $resume"
  tar -xzf "$resume" -C "$work/train" >>"$log" 2>&1 || { say "cannot unpack $resume"; failed=$((failed + 1)); }
fi
left=$(( budget - ($(date +%s) - started) - 60 ))  # a minute for the evaluation and the packing
[ $dry_run -eq 1 ] && left=600
if [ $left -gt 30 ]; then
  say "training for at most ${left}s"
  begun=$(date +%s)
  timeout --signal=TERM --kill-after=20 "$left" "$python" -m vae_zoo train recipes/ladder_vae/fashion_mnist_conv_vamp.yaml \
    "${train[@]}" --out "$work/train/conv_vamp" >>"$log" 2>&1
  status=$?
  say "training: exit $status after $(( $(date +%s) - begun ))s (124: stopped by the budget, resumable)"
  [ $status -eq 0 ] || [ $status -eq 124 ] || failed=$((failed + 1))
else
  say "no time left to train"
fi
if [ -d "$work/train/.conv_vamp.run" ]; then
  step checkpoint_nll "$python" tools/checkpoint_nll.py "$work/train/.conv_vamp.run" "${nll[@]}" --out "$out/conv_vamp_nll.json"
  tar -czf "$out/conv_vamp_run.tar.gz" -C "$work/train" .conv_vamp.run
elif [ -d "$work/train/conv_vamp" ]; then
  step evaluate "$python" -m vae_zoo evaluate "$work/train/conv_vamp" --only scores,nll "${nll[@]}" \
    --out "$work/train/conv_vamp_report"
  cp "$work/train/conv_vamp_report/report.json" "$out/conv_vamp_nll.json" 2>/dev/null
  tar -czf "$out/conv_vamp_run.tar.gz" -C "$work/train" conv_vamp
fi

rm -rf "$work"
say "done: $failed failed step(s), $(( $(date +%s) - started ))s in all"
exit $failed
