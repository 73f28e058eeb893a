#!/usr/bin/env bash
# The TensorRT simulator's engines on a real GPU: Polygraphy's real CUDA wrapper (libcudart),
# real device memory, every shipped target end to end, on both simulated releases.
#   bash benchmarks/gpu_simulator.sh OUT_DIR [TARGET_GLOB]
# Needs: a CUDA GPU, libcudart where Polygraphy finds it, and trtmake's dependencies installed.
set -uo pipefail
out=${1:?usage: gpu_simulator.sh OUT_DIR [TARGET_GLOB]}
glob=${2:-*}
mkdir -p "$out"
cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv | tee "$out/gpu.txt"
python3 - <<'PY' | tee -a "$out/gpu.txt"
from polygraphy import cuda
from trtmake.backends.tensorrt import cuda as facts
print("libcudart:", cuda.wrapper().handle._name)
print("facts:", facts.gpu_facts(0))
PY
python3 -m pytest -q -p no:cacheprovider tests/test_tensorrt_backend.py 2>&1 | tail -5 | tee "$out/pytest.txt"
status=0
for release in 10.13.3.9 11.4.0.106; do
  start=$(date +%s.%N)
  python3 tests/trt_double/run.py --tensorrt "$release" --cuda real -- -m "target=glob($glob)" backend=tensorrt \
    cache.dir=/tmp/gpu-sim-cache "report.path=$out/report-$release.json" > "$out/run-$release.log" 2>&1
  rc=$?
  end=$(date +%s.%N)
  echo "release $release: exit $rc, $(python3 -c "print(round($end - $start, 1))") s" | tee -a "$out/summary.txt"
  tail -25 "$out/run-$release.log"
  [ $rc -eq 0 ] || status=1
done
exit $status
