#!/usr/bin/env bash
# ONNX backend node tests through CUDA engines (`kiln conformance --device cuda`): build for the GPU, run
# on device buffers, compare. Gate: every test in tests/conformance/expected_pass_cuda.txt (written on an
# H100 by `--write-expected`) must pass. Tests outside the list that fail are printed but do not fail
# this test; ops without a CUDA kernel are SKIPs. Skips (77) without a GPU or without the test data
# (KILN_TESTDATA_DIR, default /usr/share/libonnx-testdata/data/node).
set -u
: "${KILN:?KILN must point at the kiln binary}" "${KILN_SOURCE_DIR:?}"
nvidia-smi -L >/dev/null 2>&1 || { echo "SKIP: no GPU"; exit 77; }
DATA=${KILN_TESTDATA_DIR:-/usr/share/libonnx-testdata/data/node}
EXPECTED=$KILN_SOURCE_DIR/tests/conformance/expected_pass_cuda.txt
[ -d "$DATA" ] || { echo "SKIP: $DATA is absent (install libonnx-testdata or set KILN_TESTDATA_DIR)"; exit 77; }
[ -f "$EXPECTED" ] || { echo "FAIL: missing $EXPECTED" >&2; exit 1; }
out=$(mktemp)
trap 'rm -f "$out"' EXIT
"$KILN" conformance "$DATA" --device cuda --expected "$EXPECTED" >"$out" 2>&1
rc=$?
cat "$out"
summary=$(grep -E '^conformance: [0-9]+ passed, [0-9]+ failed, [0-9]+ skipped$' "$out") \
  || { echo "FAIL: no summary line (exit $rc)" >&2; exit 1; }
if grep -q '^expected to pass: ' "$out"; then
  echo "FAIL: tests in $EXPECTED did not pass (see 'expected to pass:' lines above)" >&2
  exit 1
fi
case $rc in
  0|1) ;; # failures outside the list are reported above; the list is the gate
  *) echo "FAIL: kiln conformance exited $rc" >&2; exit 1 ;;
esac
echo "ok (cuda): $summary"
