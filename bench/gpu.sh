#!/usr/bin/env bash
# The whole GPU cycle in one call, for a fresh GPU machine where every call is costly:
#   build     configure + build every target (sm_90)
#   tests     ctest -R "cuda|gpu" (CUDA kernel tests, CUDA engine tests, tests/cli/exec_gpu.sh)
#   memcheck  test_cuda_kernels, test_cuda_engine and test_cuda_ops under compute-sanitizer memcheck
#             (KILN_GPU_SANITIZE=0 skips it)
#   conv      the conv microbenchmark (test_cuda_kernels --bench) on YOLOv8n's conv shapes
#   exec      yolov8n through `kiln exec --device=cuda` per batch: fp32, fp16, fp16 + CUDA graph
#             (GPU compute only: --noDataTransfers --useSpinWait)
#   profile   --dumpProfile --separateProfileRun of the fp16 + graph engine at batch 1 and 32
#   anchor    the PyTorch anchor (../shared/anchors/torch/bench.py: eager fp16 channels_last +- CUDA graph)
# then one table: kiln vs PyTorch per batch. A failing stage does not stop the later ones; each stage's
# exit status is listed at the end and the script exits 1 if any failed.
# Logs go to $OUT when set (the device tool brings that folder back), else to the build dir.
#
#   bash bench/gpu.sh                # on the GPU machine, from anywhere
#   bash bench/gpu.sh --pack-deps    # here, once: copy what the GPU machine lacks into .gpu/ (carry it)
#
# Why --pack-deps: the GPU image has nvcc and CMake but not protoc-c, onnx.proto, cmocka, cJSON or the
# stb headers, which kiln's build needs, nor ../shared; nothing can be installed there. --pack-deps puts
# the build deps in .gpu/deps and the data in .gpu/shared (models/yolov8n.onnx, reference/yolov8n/,
# anchors/torch/), under 55 MB in all. .gpu/ is git-ignored; carry it.
# Env: KILN_GPU_STAGES (default "build tests memcheck conv exec profile anchor"), KILN_GPU_BUILD (build
#      dir, default build-gpu), KILN_CUDA_ARCHS (default 90), KILN_GPU_BATCHES (default "1 8 32"),
#      KILN_GPU_SANITIZE=0 (skip memcheck), KILN_GPU_DURATION (seconds per exec run, default 2),
#      KILN_SHARED_DIR (the data folder; default ../shared, else .gpu/shared).
#      KILN_GPU_PACK=1 (pack every log but gpu.log/summary.txt into $OUT/logs.tar.gz).
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
DEPS=$ROOT/.gpu/deps
PACKED_SHARED=$ROOT/.gpu/shared

if [ "${1:-}" = "--pack-deps" ]; then
  rm -rf "$DEPS" && mkdir -p "$DEPS"/{bin,lib,include/onnx,include/protobuf-c}
  cp /usr/bin/protoc-c "$DEPS/bin/"
  # protoc-c's own libraries (libprotoc/libprotobuf differ between distributions); libc & co. stay.
  ldd /usr/bin/protoc-c | awk '/=>/ {print $3}' | grep -v -E 'libc\.so|libm\.so|libgcc|libstdc|ld-linux' |
    xargs -r -I{} cp -L {} "$DEPS/lib/"
  for l in libprotobuf-c libcmocka libcjson; do cp -a /usr/lib/x86_64-linux-gnu/$l.so* "$DEPS/lib/"; done
  cp /usr/include/onnx/onnx.proto "$DEPS/include/onnx/"
  cp /usr/include/protobuf-c/protobuf-c.h "$DEPS/include/protobuf-c/"
  cp /usr/include/cmocka*.h "$DEPS/include/"
  cp -r /usr/include/cjson /usr/include/stb "$DEPS/include/"
  du -sh "$DEPS"

  # The data: the model, the anchor scripts, the reference files, the three photos tests/cli/detect_gpu.sh uses.
  SRC=${KILN_SHARED_DIR:-$ROOT/../shared}
  [ -r "$SRC/models/yolov8n.onnx" ] || { echo "no $SRC/models/yolov8n.onnx: set KILN_SHARED_DIR"; exit 2; }
  rm -rf "$PACKED_SHARED" && mkdir -p "$PACKED_SHARED"/{models,reference/yolov8n,anchors/torch}
  cp "$SRC/models/yolov8n.onnx" "$PACKED_SHARED/models/"
  cp "$SRC"/anchors/torch/*.py "$SRC"/anchors/torch/*.md "$SRC"/anchors/torch/*.txt "$PACKED_SHARED/anchors/torch/"
  cp "$SRC"/reference/yolov8n/{README.md,detections.json} "$PACKED_SHARED/reference/yolov8n/"
  mkdir -p "$PACKED_SHARED/images" && cp "$SRC"/images/{dog.jpg,horses.jpg,person.jpg} "$PACKED_SHARED/images/"
  budget=$((55 * 1000 * 1000))
  # reference pairs in order of use (rand and dog by most tests; all four by the engine test and bench.py)
  for name in rand dog horses person; do
    pair=$(du -cb "$SRC/reference/yolov8n/$name".{input,output}.bin | tail -1 | cut -f1)
    have=$(du -sb "$ROOT/.gpu" | cut -f1)
    if [ $((have + pair)) -lt "$budget" ]; then
      cp "$SRC/reference/yolov8n/$name".{input,output}.bin "$PACKED_SHARED/reference/yolov8n/"
    else
      echo "skipped reference/yolov8n/$name.*: .gpu would exceed 55 MB"
    fi
  done
  chmod -R u+w "$PACKED_SHARED"
  du -sh "$PACKED_SHARED"; du -sh "$ROOT/.gpu"
  exit 0
fi

BUILD=${KILN_GPU_BUILD:-$ROOT/build-gpu}
LOG=${OUT:-$BUILD}
STAGES=" ${KILN_GPU_STAGES:-build tests memcheck conv exec profile anchor} "
BATCHES=${KILN_GPU_BATCHES:-1 8 32}
DURATION=${KILN_GPU_DURATION:-2}
KILN=$BUILD/kiln
mkdir -p "$BUILD" "$LOG"
exec > >(tee "$LOG/gpu.log") 2>&1
export PATH=/usr/local/cuda/bin:$PATH
echo "== kiln bench/gpu.sh $(date -u +%FT%TZ) commit $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?') stages:$STAGES"
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,memory.total --format=csv,noheader || true
nvcc --version | tail -1 || true

if [ -n "${KILN_SHARED_DIR:-}" ]; then SHARED=$KILN_SHARED_DIR
elif [ -r "$ROOT/../shared/models/yolov8n.onnx" ]; then SHARED=$(cd "$ROOT/../shared" && pwd)
else SHARED=$PACKED_SHARED; fi
MODEL=$SHARED/models/yolov8n.onnx
[ -r "$MODEL" ] || echo "WARNING: no $MODEL (run --pack-deps where ../shared exists and carry .gpu): exec/profile/anchor will fail"
echo "== data from $SHARED"

want() { [[ "$STAGES" == *" $1 "* ]]; }
declare -A RC SECS
ORDER=()
# stage NAME FUNCTION: run it if selected, keep its exit status and duration; never stops the script
stage() {
  want "$1" || return 0
  echo
  echo "== $1"
  local t0=$SECONDS
  "$2"
  RC[$1]=$?
  SECS[$1]=$((SECONDS - t0))
  ORDER+=("$1")
  echo "== $1: rc=${RC[$1]} (${SECS[$1]} s)"
}

stage_build() {
  local extra=()
  if ! command -v protoc-c >/dev/null || [ ! -f /usr/include/onnx/onnx.proto ] || [ ! -f /usr/include/cmocka.h ] ||
    [ ! -d /usr/include/stb ]; then
    if [ ! -d "$DEPS" ]; then
      echo "missing protoc-c / onnx.proto / cmocka: run 'bash bench/gpu.sh --pack-deps' where they exist and carry .gpu"
      return 2
    fi
    echo "using carried build deps from $DEPS"
    export PATH=$DEPS/bin:$PATH
    export LD_LIBRARY_PATH=$DEPS/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
    export LIBRARY_PATH=$DEPS/lib${LIBRARY_PATH:+:$LIBRARY_PATH}
    export CPATH=$DEPS/include:$DEPS/include/cjson${CPATH:+:$CPATH}
    extra=(-DPROTOC_C="$DEPS/bin/protoc-c" -DONNX_PROTO="$DEPS/include/onnx/onnx.proto"
      -DCMOCKA_LIB="$DEPS/lib/libcmocka.so" -DCJSON_LIB="$DEPS/lib/libcjson.so")
  fi
  cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DKILN_CUDA_ARCHS="${KILN_CUDA_ARCHS:-90}" \
    -DCMAKE_CUDA_COMPILER=/usr/local/cuda/bin/nvcc -DKILN_SHARED_DIR="$SHARED" "${extra[@]}" >"$LOG/configure.log" 2>&1 ||
    { tail -30 "$LOG/configure.log"; echo "configure FAILED"; return 1; }
  grep "CUDA backend" "$LOG/configure.log"
  cmake --build "$BUILD" -j"$(nproc)" >"$LOG/build.log" 2>&1 ||
    { grep -E -B2 -A6 "error" "$LOG/build.log" | head -60; echo "build FAILED"; return 1; }
}
# The build stage exports the carried deps' library path; later stages need it too (libcjson for kiln).
if [ -d "$DEPS" ] && ! command -v protoc-c >/dev/null; then
  export LD_LIBRARY_PATH=$DEPS/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
fi

stage_tests() {
  (cd "$BUILD" && ctest -R "cuda|gpu" --output-on-failure --timeout 300)
}

stage_memcheck() {
  if [ "${KILN_GPU_SANITIZE:-1}" = 0 ]; then echo "skipped (KILN_GPU_SANITIZE=0)"; return 0; fi
  command -v compute-sanitizer >/dev/null || { echo "no compute-sanitizer"; return 1; }
  local r=0 t
  : >"$LOG/memcheck.log"
  # the kernels on odd shapes, the whole engines (yolov8n, graphs, corrupted engine files), the op kernels
  # (the corrupted engines provoke CUDA API errors that kiln reports as errors by design, e.g. a launch
  # refused for a shape no GPU takes: only memory errors count there)
  for t in test_cuda_kernels test_cuda_engine test_cuda_ops; do
    echo "== $t" >>"$LOG/memcheck.log"
    local api=all
    [ $t = test_cuda_engine ] && api=no
    # engines built with the heuristic's tactics under the sanitizer (timing all of them would take hours)
    KILN_TEST_NO_TACTIC_TIMING=1 compute-sanitizer --tool memcheck --report-api-errors $api --error-exitcode 3 \
      "$BUILD/$t" >>"$LOG/memcheck.log" 2>&1 || r=1
  done
  grep -E "^== |PASSED|FAILED|ERROR SUMMARY|Invalid|out of bounds|at 0x|corrupted" "$LOG/memcheck.log" | head -40
  return $r
}

stage_conv() {
  # shellcheck disable=SC2086
  "$BUILD/test_cuda_kernels" --bench $BATCHES | tee "$LOG/conv_bench.txt"
}

ENGINES=$BUILD/engines
# exec_one BATCH CONFIG: one `kiln exec` run into $LOG/exec/b<B>_<config>.txt. The fp16 engine is built
# once and reused (loaded) for the CUDA-graph run, so both time the same kernels.
exec_one() {
  local b=$1 cfg=$2 src=()
  case $cfg in
  fp32) src=(--onnx="$MODEL" --device=cuda --batch="$b" --saveEngine="$ENGINES/b${b}_fp32.engine") ;;
  fp16) src=(--onnx="$MODEL" --device=cuda --batch="$b" --fp16 --saveEngine="$ENGINES/b${b}_fp16.engine") ;;
  fp16_graph) src=(--loadEngine="$ENGINES/b${b}_fp16.engine" --useCudaGraph) ;;
  esac
  # a stale engine from an earlier call must not stand in for one whose build fails now
  case $cfg in fp32 | fp16) rm -f "$ENGINES/b${b}_${cfg}.engine" ;; esac
  timeout 300 "$KILN" exec "${src[@]}" --noDataTransfers --useSpinWait --warmUp=500 --iterations=100 \
    --duration="$DURATION" >"$LOG/exec/b${b}_${cfg}.txt" 2>&1
  local r=$?
  printf '  batch %-3s %-10s rc=%s  %s\n' "$b" "$cfg" "$r" \
    "$(grep -E '^\[I\] GPU Compute Time' "$LOG/exec/b${b}_${cfg}.txt" | sed -E 's/.*(median = [^,]*).*/\1/')"
  [ $r = 0 ] || tail -3 "$LOG/exec/b${b}_${cfg}.txt"
  return $r
}

stage_exec() {
  [ -x "$KILN" ] || { echo "no $KILN (build failed?)"; return 1; }
  mkdir -p "$LOG/exec" "$ENGINES"
  local r=0 b cfg
  for b in $BATCHES; do
    for cfg in fp32 fp16 fp16_graph; do exec_one "$b" "$cfg" || r=1; done
  done
  return $r
}

stage_profile() {
  [ -x "$KILN" ] || { echo "no $KILN (build failed?)"; return 1; }
  mkdir -p "$ENGINES"
  local r=0 b
  for b in 1 32; do
    local e=$ENGINES/b${b}_fp16.engine src
    if [ -r "$e" ]; then src=(--loadEngine="$e"); else src=(--onnx="$MODEL" --device=cuda --fp16 --batch="$b"); fi
    timeout 300 "$KILN" exec "${src[@]}" --useCudaGraph --noDataTransfers --useSpinWait --separateProfileRun \
      --dumpProfile --exportProfile="$LOG/profile_b${b}_fp16_graph.json" --warmUp=300 --iterations=100 --duration=1 \
      >"$LOG/profile_b${b}_fp16_graph.txt" 2>&1 || { r=1; tail -3 "$LOG/profile_b${b}_fp16_graph.txt"; }
    echo "  batch $b: $LOG/profile_b${b}_fp16_graph.txt"
    grep -A12 '=== Profile by op type' "$LOG/profile_b${b}_fp16_graph.txt" | head -14
  done
  return $r
}

stage_anchor() {
  local bench=$SHARED/anchors/torch/bench.py
  [ -r "$bench" ] || { echo "no $bench"; return 1; }
  python3 -c 'import torch; assert torch.cuda.is_available()' 2>/dev/null || { echo "python3 has no CUDA torch"; return 1; }
  timeout 400 python3 "$bench" --model "$MODEL" --variants eager_fp16_cl,eager_fp16_cl_cudagraph \
    --batches "$(echo "$BATCHES" | tr ' ' ',')" --budget 120 --out "$LOG/anchor" >"$LOG/anchor.log" 2>&1
  local r=$?
  [ -r "$LOG/anchor/anchor.txt" ] && cat "$LOG/anchor/anchor.txt" || tail -20 "$LOG/anchor.log"
  return $r
}

print_table() {
  python3 - "$LOG" "$SHARED/anchors/torch/h100-yolov8n-2026-11-24.txt" $BATCHES <<'PYEOF' | tee "$LOG/summary.txt"
import json, re, sys
log, best_file, batches = sys.argv[1], sys.argv[2], [int(b) for b in sys.argv[3:]]

def kiln(b, cfg):
    try:
        t = open(f"{log}/exec/b{b}_{cfg}.txt").read()
    except OSError:
        return None
    m = re.search(r"GPU Compute Time: min = [^,]*, max = [^,]*, mean = [^,]*, median = ([0-9.e+-]+) ms", t)
    if "&&&& PASSED" not in t or not m:
        return None
    return float(m.group(1))

torch = {}
try:
    for r in json.load(open(f"{log}/anchor/anchor.json"))["results"]:
        if r.get("variant") == "eager_fp16_cl_cudagraph" and "median_ms" in r:
            torch[int(r["batch"])] = float(r["median_ms"])
except (OSError, ValueError, KeyError):
    pass
best = {}  # best PyTorch on an H100 (2026-11-24): the lowest median per batch over every variant
try:
    for line in open(best_file):
        f = line.split()
        if len(f) >= 3 and re.match(r"^(eager|compile)_", f[0]) and f[1].isdigit():
            b, ms = int(f[1]), float(f[2])
            best[b] = min(best.get(b, ms), ms)
except (OSError, ValueError):
    pass

def ms(v): return f"{v:8.3f}" if v else "       -"
def ips(b, v): return f"{b * 1000.0 / v:8.0f}" if v else "       -"
def ratio(a, c): return f"{a / c:6.2f}" if a and c else "     -"

print("yolov8n GPU compute per batch (median ms of `kiln exec --noDataTransfers`; img/s = batch / median)")
print(f"{'batch':>5} | {'fp32 ms':>8} {'img/s':>8} | {'fp16 ms':>8} {'img/s':>8} | {'f16+CG ms':>8} {'img/s':>8} |"
      f" {'torch ms':>8} {'k/torch':>6} | {'best pt':>8} {'k/best':>6}")
for b in batches:
    f32, f16, cg = kiln(b, "fp32"), kiln(b, "fp16"), kiln(b, "fp16_graph")
    t, bp = torch.get(b), best.get(b)
    print(f"{b:5d} | {ms(f32)} {ips(b, f32)} | {ms(f16)} {ips(b, f16)} | {ms(cg)} {ips(b, cg)} |"
          f" {ms(t)} {ratio(cg, t)} | {ms(bp)} {ratio(cg, bp)}")
print("torch ms: PyTorch eager fp16 channels_last + CUDA graph, this run (anchors/torch/bench.py); "
      "k/torch = kiln fp16+graph / torch (< 1: kiln faster)")
print("best pt: the best PyTorch variant per batch on an H100 (torch.compile, mostly max-autotune in a CUDA graph; "
      "anchors/torch/h100-yolov8n-2026-11-24.txt); k/best = kiln fp16+graph / best")
print("targets (H100): batch 1 <= 0.25 ms, batch 32 >= 22,000 img/s (<= 1.455 ms)")
PYEOF
}

stage build stage_build
if want build && [ "${RC[build]}" != 0 ]; then
  echo "build failed: the stages that need it will fail too"
fi
stage tests stage_tests
stage memcheck stage_memcheck
stage conv stage_conv
stage exec stage_exec
stage profile stage_profile
stage anchor stage_anchor

echo
print_table || echo "(no table: python3 missing?)"
echo
rc=0
for s in "${ORDER[@]}"; do
  printf '  %-9s rc=%-3s %4s s\n' "$s" "${RC[$s]}" "${SECS[$s]}"
  [ "${RC[$s]}" = 0 ] || rc=1
done
echo "== done rc=$rc (logs in $LOG)"
# The device tool brings back only a few files from $OUT: with KILN_GPU_PACK=1 every log but gpu.log and
# summary.txt goes into one logs.tar.gz there.
if [ "${KILN_GPU_PACK:-0}" = 1 ] && [ -n "${OUT:-}" ]; then
  (cd "$OUT" && find . -type f ! -name gpu.log ! -name summary.txt ! -name logs.tar.gz -print0 |
     tar -czf logs.tar.gz --null -T - --remove-files && find . -mindepth 1 -type d -empty -delete)
fi
exit $rc
