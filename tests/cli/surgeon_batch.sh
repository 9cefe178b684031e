#!/usr/bin/env bash
# kiln surgeon batch on YOLOv8n: batch 8 with 8 different images through ONNX Runtime gives each image's
# batch-1 reference output (rel. L2 <= 1e-5); --batch dynamic passes onnx.checker and runs at batch 2.
source "$KILN_SOURCE_DIR/tests/tools/cli_common.sh"
need_ort

expect_rc 2 "$KILN" surgeon batch "$MODEL" -o "$TMP/x.onnx"
expect_rc 2 "$KILN" surgeon batch "$MODEL" -o "$TMP/x.onnx" --batch 0
expect_rc 2 "$KILN" surgeon batch "$MODEL" -o "$TMP/x.onnx" --batch -3
expect_rc 2 "$KILN" surgeon batch "$MODEL" -o "$TMP/x.onnx" --batch 8x
expect_rc 2 "$KILN" surgeon batch "$MODEL" --batch 8
[ ! -e "$TMP/x.onnx" ] || die "a failed run wrote $TMP/x.onnx"

imgs=(rand dog horses person rand dog horses person)
# -- batch 8
"$KILN" surgeon batch "$MODEL" -o "$TMP/b8.onnx" --batch 8 || die "surgeon batch 8 failed"
onnx_check "$TMP/b8.onnx"
for i in "${imgs[@]}"; do cat "$REF/$i.input.bin"; done >"$TMP/in8.bin"
node "$KILN_SOURCE_DIR/bench/ort_run.js" "$TMP/b8.onnx" --input "images=$TMP/in8.bin" --output-dir "$TMP/o8" \
  --threads 4 || die "ONNX Runtime failed on the batch-8 model"
for k in "${!imgs[@]}"; do
  printf 'image %d (%s): ' "$k" "${imgs[$k]}"
  "$PY" "$CMP" "$TMP/o8/output0.bin" "$REF/${imgs[$k]}.output.bin" --split 8 --index "$k" --tol 1e-5 \
    || die "batch 8, image $k (${imgs[$k]}) differs from its batch-1 reference"
done

# -- dynamic batch, run at batch 2
"$KILN" surgeon batch "$MODEL" -o "$TMP/bd.onnx" --batch dynamic || die "surgeon batch dynamic failed"
onnx_check "$TMP/bd.onnx"
"$PY" -c "
import onnx,sys
m=onnx.load(sys.argv[1]); d=m.graph.input[0].type.tensor_type.shape.dim[0]
assert d.dim_param and not d.HasField('dim_value'), 'batch dim is not symbolic'
" "$TMP/bd.onnx" || die "dynamic batch input"
cat "$REF/dog.input.bin" "$REF/person.input.bin" >"$TMP/in2.bin"
node "$KILN_SOURCE_DIR/bench/ort_run.js" "$TMP/bd.onnx" --input "images=$TMP/in2.bin:2x3x640x640" \
  --output-dir "$TMP/o2" --threads 4 || die "ONNX Runtime failed on the dynamic model at batch 2"
k=0
for i in dog person; do
  printf 'dynamic, image %d (%s): ' "$k" "$i"
  "$PY" "$CMP" "$TMP/o2/output0.bin" "$REF/$i.output.bin" --split 2 --index "$k" --tol 1e-5 \
    || die "dynamic batch 2, image $k ($i) differs"
  k=$((k + 1))
done
echo "PASS"
