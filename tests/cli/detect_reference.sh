#!/usr/bin/env bash
# `kiln detect` on the 10 photos against ONNX Runtime's detections (../shared/reference/yolov8n/
# detections.json, same preprocessing): every reference detection found with the same class, IoU >= 0.9
# in photo pixels and |score difference| <= 0.02; no unmatched extra detection above 0.3. Also checks the
# engine cache (a second run reuses it; a changed model rebuilds) and the drawn outputs.
source "$KILN_SOURCE_DIR/tests/tools/cli_common.sh"
export XDG_CACHE_HOME=$TMP/cache   # the shared model folder is read-only: the engine is cached here

"$KILN" detect "$MODEL" -i "$KILN_SHARED_DIR/images" -o "$TMP/out" --json "$TMP/det.json" >"$TMP/log" 2>&1 \
  || { cat "$TMP/log"; die "kiln detect failed"; }
grep -q "cached as $TMP/cache/kiln/yolov8n\.[0-9a-f]*\.engine" "$TMP/log" || die "engine not cached in XDG_CACHE_HOME: $(head -1 "$TMP/log")"
grep -q "time: load .* preprocess .* inference .* postprocess" "$TMP/log" || die "no time breakdown"
grep -qE "^  dog +0\.9[0-9]+ " "$TMP/log" || die "no dog line in the output"
[ "$(ls "$TMP/out" | wc -l)" = 10 ] || die "expected 10 drawn images in $TMP/out"

"$PY" "$KILN_SOURCE_DIR/tests/tools/compare_detections.py" "$REF/detections.json" "$TMP/det.json" \
  || die "detections differ from ONNX Runtime's"

# The second run reuses the cached engine.
"$KILN" detect "$MODEL" -i "$KILN_SHARED_DIR/images/dog.jpg" -o "$TMP/dog.png" >"$TMP/log2" 2>&1 || die "second run failed"
grep -q "(cached)" "$TMP/log2" || die "second run did not reuse the cached engine: $(head -1 "$TMP/log2")"
"$PY" -c "import sys; d=open(sys.argv[1],'rb').read(8); sys.exit(d!=b'\x89PNG\r\n\x1a\n')" "$TMP/dog.png" || die "dog.png is not a PNG"

# A model in a writable folder is cached beside it; changing the model's bytes changes the key.
cp "$MODEL" "$TMP/m.onnx"
"$KILN" detect "$TMP/m.onnx" -i "$KILN_SHARED_DIR/images/dog.jpg" --json "$TMP/m.json" >"$TMP/log3" 2>&1 || die "run on a copy failed"
ls "$TMP"/m.*.engine >/dev/null 2>&1 || die "engine not cached beside a model in a writable folder: $(head -1 "$TMP/log3")"
first=$(ls "$TMP"/m.*.engine)
printf 'x' >> "$TMP/m.onnx"   # trailing byte: still a valid protobuf? if not, the build error is fine too
"$KILN" detect "$TMP/m.onnx" -i "$KILN_SHARED_DIR/images/dog.jpg" >"$TMP/log4" 2>&1
grep -q "(cached)" "$TMP/log4" && die "a changed model reused the old engine"
# An engine file works as the model argument too.
"$KILN" detect "$first" -i "$KILN_SHARED_DIR/images/dog.jpg" --json "$TMP/e.json" >/dev/null 2>&1 || die "detect from an engine file failed"
cmp -s <("$PY" -c "import json,sys; print(json.load(open(sys.argv[1]))['images']['dog.jpg']['detections'])" "$TMP/m.json") \
       <("$PY" -c "import json,sys; print(json.load(open(sys.argv[1]))['images']['dog.jpg']['detections'])" "$TMP/e.json") \
  || die "engine file and model give different detections"
echo "detect_reference: ok"
