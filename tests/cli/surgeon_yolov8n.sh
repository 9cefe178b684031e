#!/usr/bin/env bash
# kiln surgeon sanitize on YOLOv8n: the result passes onnx.checker, has no more nodes than the input, and
# ONNX Runtime gives the reference output on it (rel. L2 <= 1e-5); --ir-version writes that version; bad
# flags and inputs fail with exit 2, unwritable outputs with exit 1, without leaving a file behind.
source "$KILN_SOURCE_DIR/tests/tools/cli_common.sh"
need_ort

# -- flag and input errors (exit 2), write errors (exit 1), nothing written
expect_rc 2 "$KILN" surgeon sanitize "$MODEL"
expect_rc 2 "$KILN" surgeon sanitize "$MODEL" -o "$TMP/x.onnx" --frobnicate
expect_rc 2 "$KILN" surgeon sanitize "$MODEL" -o "$TMP/x.onnx" --ir-version 99
expect_rc 2 "$KILN" surgeon sanitize "$MODEL" -o "$TMP/x.onnx" --ir-version seven
expect_rc 2 "$KILN" surgeon sanitize "$TMP/missing.onnx" -o "$TMP/x.onnx"
head -c 1000 "$MODEL" >"$TMP/truncated.onnx"
expect_rc 2 "$KILN" surgeon sanitize "$TMP/truncated.onnx" -o "$TMP/x.onnx"
expect_rc 2 "$KILN" surgeon frobnicate "$MODEL" -o "$TMP/x.onnx"
[ ! -e "$TMP/x.onnx" ] || die "a failed run wrote $TMP/x.onnx"
expect_rc 1 "$KILN" surgeon sanitize "$MODEL" -o "$TMP/no/such/dir/x.onnx"
expect_rc 0 "$KILN" surgeon --help
expect_rc 0 "$KILN" surgeon sanitize --help

# -- sanitize --fold-constants
"$KILN" surgeon sanitize "$MODEL" -o "$TMP/san.onnx" --fold-constants || die "sanitize failed"
onnx_check "$TMP/san.onnx"
before=$(node_count "$MODEL") after=$(node_count "$TMP/san.onnx")
echo "nodes: $before -> $after"
[ "$after" -le "$before" ] || die "sanitize grew the graph ($before -> $after nodes)"
node "$KILN_SOURCE_DIR/bench/ort_run.js" "$TMP/san.onnx" --input "images=$REF/rand.input.bin" \
  --output-dir "$TMP/ort" --threads 2 || die "ONNX Runtime failed on the sanitized model"
"$PY" "$CMP" "$TMP/ort/output0.bin" "$REF/rand.output.bin" --tol 1e-5 || die "sanitized model output differs"

# -- the default pipeline and the single passes also give checker-clean models
"$KILN" surgeon sanitize "$MODEL" -o "$TMP/def.onnx" >/dev/null || die "sanitize (default) failed"
onnx_check "$TMP/def.onnx"
"$KILN" surgeon sanitize "$MODEL" -o "$TMP/topo.onnx" --toposort --cleanup >/dev/null || die "sanitize --toposort --cleanup failed"
onnx_check "$TMP/topo.onnx"

# -- --ir-version 7
"$KILN" surgeon sanitize "$MODEL" -o "$TMP/ir7.onnx" --fold-constants --ir-version 7 >/dev/null || die "--ir-version 7 failed"
onnx_check "$TMP/ir7.onnx"
[ "$(ir_version "$TMP/ir7.onnx")" = 7 ] || die "--ir-version 7 wrote IR $(ir_version "$TMP/ir7.onnx")"
# IR 3 must list the initializers as inputs too (and still run)
"$KILN" surgeon sanitize "$MODEL" -o "$TMP/ir3.onnx" --toposort --ir-version 3 >/dev/null || die "--ir-version 3 failed"
"$PY" -c "
import onnx,sys
m=onnx.load(sys.argv[1]); names={i.name for i in m.graph.input}
assert m.ir_version==3 and all(t.name in names for t in m.graph.initializer), 'IR 3 initializers not listed as inputs'
" "$TMP/ir3.onnx" || die "IR 3 export"
echo "PASS"
