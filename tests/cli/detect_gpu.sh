#!/usr/bin/env bash
# `kiln detect --device cuda` (fp32 and --fp16) on the three reference photos against ONNX Runtime's
# detections: the same boxes and classes as the CPU (tests/tools/compare_detections.py). Skips (77)
# without a GPU. Needs only python3's json (the GPU machine's python3 has no onnx from Debian).
set -u
: "${KILN:?}" "${KILN_SOURCE_DIR:?}" "${KILN_SHARED_DIR:?}"
nvidia-smi -L >/dev/null 2>&1 || { echo "SKIP: no GPU"; exit 77; }
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
die() { echo "FAIL: $*" >&2; exit 1; }
MODEL=$KILN_SHARED_DIR/models/yolov8n.onnx
REF=$KILN_SHARED_DIR/reference/yolov8n
PY=$(command -v python3)
photos=(dog.jpg horses.jpg person.jpg)
for prec in fp32 fp16; do
  flag=""; [ $prec = fp16 ] && flag=--fp16
  args=(); for p in "${photos[@]}"; do args+=(-i "$KILN_SHARED_DIR/images/$p"); done
  "$KILN" detect "$MODEL" --device cuda $flag --no-cache "${args[@]}" --json "$TMP/$prec.json" >"$TMP/$prec.log" 2>&1 \
    || { cat "$TMP/$prec.log"; die "kiln detect --device cuda $flag failed"; }
  head -1 "$TMP/$prec.log"
  "$PY" "$KILN_SOURCE_DIR/tests/tools/compare_detections.py" "$REF/detections.json" "$TMP/$prec.json" "${photos[@]}" \
    || die "GPU $prec detections differ from ONNX Runtime's"
done
echo "detect_gpu: ok"
