#!/usr/bin/env bash
# One-shot GPU cycle for the CUDA kernels, for a fresh GPU machine where every call is costly:
# configure + build (sm_90), run the CUDA kernel tests (plain and under compute-sanitizer memcheck),
# then time the convolution paths on YOLOv8n's conv shapes (batch 1 and 32) and print the table.
# Logs go to $OUT when set (the device tool brings that folder back), else to the build dir.
#
#   bash bench/gpu.sh                # on the GPU machine, from anywhere
#   bash bench/gpu.sh --pack-deps    # here, once: copy the build deps the GPU image lacks into .gpu/deps
#
# Why --pack-deps: the GPU image has nvcc and CMake but not protoc-c, onnx.proto, cmocka or cJSON,
# (and the stb headers) which kiln's build needs, and nothing can be installed there. .gpu/ is git-ignored; carry it.
# Env: KILN_GPU_BUILD (build dir, default build-gpu), KILN_CUDA_ARCHS (default 90),
#      KILN_GPU_BATCHES (default "1 32"), KILN_GPU_SANITIZE=0 to skip the memcheck pass.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
DEPS=$ROOT/.gpu/deps

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
  exit 0
fi

BUILD=${KILN_GPU_BUILD:-$ROOT/build-gpu}
LOG=${OUT:-$BUILD}
mkdir -p "$BUILD" "$LOG"
exec > >(tee "$LOG/gpu.log") 2>&1
echo "== kiln bench/gpu.sh $(date -u +%FT%TZ) commit $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')"
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,memory.total --format=csv,noheader || true
/usr/local/cuda/bin/nvcc --version | tail -1 || true

extra=()
if ! command -v protoc-c >/dev/null || [ ! -f /usr/include/onnx/onnx.proto ] || [ ! -f /usr/include/cmocka.h ] ||
  [ ! -d /usr/include/stb ]; then
  if [ ! -d "$DEPS" ]; then
    echo "missing protoc-c / onnx.proto / cmocka: run 'bash bench/gpu.sh --pack-deps' where they exist and carry .gpu"
    exit 2
  fi
  echo "== using carried build deps from $DEPS"
  export PATH=$DEPS/bin:$PATH
  export LD_LIBRARY_PATH=$DEPS/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
  export LIBRARY_PATH=$DEPS/lib${LIBRARY_PATH:+:$LIBRARY_PATH}
  export CPATH=$DEPS/include${CPATH:+:$CPATH}
  extra=(-DPROTOC_C="$DEPS/bin/protoc-c" -DONNX_PROTO="$DEPS/include/onnx/onnx.proto"
    -DCMOCKA_LIB="$DEPS/lib/libcmocka.so" -DCJSON_LIB="$DEPS/lib/libcjson.so")
fi

t0=$(date +%s)
cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DKILN_CUDA_ARCHS="${KILN_CUDA_ARCHS:-90}" \
  -DCMAKE_CUDA_COMPILER=/usr/local/cuda/bin/nvcc "${extra[@]}" >"$LOG/configure.log" 2>&1 ||
  { tail -30 "$LOG/configure.log"; echo "configure FAILED"; exit 1; }
grep "CUDA backend" "$LOG/configure.log"
cmake --build "$BUILD" -j"$(nproc)" --target test_cuda_kernels >"$LOG/build.log" 2>&1 ||
  { grep -E -B2 -A6 "error" "$LOG/build.log" | head -60; echo "build FAILED"; exit 1; }
echo "== built in $(($(date +%s) - t0)) s"

rc=0
echo "== tests"
(cd "$BUILD" && ctest -R cuda --output-on-failure) || rc=1
if [ "${KILN_GPU_SANITIZE:-1}" != 0 ] && command -v compute-sanitizer >/dev/null; then
  echo "== tests under compute-sanitizer memcheck"
  compute-sanitizer --tool memcheck --error-exitcode 3 "$BUILD/test_cuda_kernels" >"$LOG/memcheck.log" 2>&1 || rc=1
  grep -E "PASSED|FAILED|ERROR SUMMARY|Invalid|out of bounds|at 0x" "$LOG/memcheck.log" | head -40
fi

echo "== conv microbenchmark"
"$BUILD/test_cuda_kernels" --bench ${KILN_GPU_BATCHES:-1 32} | tee "$LOG/conv_bench.txt" || rc=1
echo "== done rc=$rc"
exit $rc
