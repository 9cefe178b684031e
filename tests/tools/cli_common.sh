# Shared setup for the surgeon CLI tests (sourced). Provides: $TMP (removed on exit), $MODEL, $REF, $PY,
# $ORT_RUN, $CMP, need_ort (exit 77 without node + onnxruntime-node), expect_rc, onnx_check, node_count.
set -u
: "${KILN:?KILN must point at the kiln binary}" "${KILN_SOURCE_DIR:?}" "${KILN_SHARED_DIR:?}"
MODEL=$KILN_SHARED_DIR/models/yolov8n.onnx
REF=$KILN_SHARED_DIR/reference/yolov8n
# Debian's python3-onnx lives in the system python, not in whatever python3 comes first on PATH.
PY=/usr/bin/python3
ORT_RUN=$KILN_SOURCE_DIR/bench/ort_run.js
CMP=$KILN_SOURCE_DIR/tests/tools/compare_bin.py
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

die() { echo "FAIL: $*" >&2; exit 1; }

[ -f "$MODEL" ] || die "missing $MODEL"
"$PY" -c 'import onnx, numpy' 2>/dev/null || die "$PY cannot import onnx and numpy (install python3-onnx python3-numpy)"

need_ort() {
  if ! command -v node >/dev/null || ! (cd "$KILN_SOURCE_DIR/bench" && node -e "require('onnxruntime-node')" >/dev/null 2>&1); then
    echo "SKIP: node or onnxruntime-node unavailable (run scripts/setup.sh)"
    exit 77
  fi
}

# expect_rc CODE CMD...: run CMD, require exit status CODE and (for failures) a message on stderr.
expect_rc() {
  local want=$1; shift
  "$@" >"$TMP/rc.out" 2>"$TMP/rc.err"
  local got=$?
  [ "$got" = "$want" ] || { cat "$TMP/rc.out" "$TMP/rc.err" >&2; die "expected exit $want, got $got: $*"; }
  if [ "$want" != 0 ] && [ ! -s "$TMP/rc.err" ]; then die "no error message on stderr: $*"; fi
}

onnx_check() { "$PY" -c "import onnx,sys; m=onnx.load(sys.argv[1]); onnx.checker.check_model(m)" "$1" || die "onnx.checker rejects $1"; }
node_count() { "$PY" -c "import onnx,sys; print(len(onnx.load(sys.argv[1]).graph.node))" "$1"; }
ir_version() { "$PY" -c "import onnx,sys; print(onnx.load(sys.argv[1]).ir_version)" "$1"; }
