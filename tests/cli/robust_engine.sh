#!/usr/bin/env bash
# Malformed engine files and flags: `kiln inspect` / `kiln run` must refuse each with a message that names
# the problem and exit status 2, never crash (this script also runs in the ASan/UBSan build).
source "$KILN_SOURCE_DIR/tests/tools/cli_common.sh"

check() { # check NEEDLE CMD...: exit 2, NEEDLE in stderr, no sanitizer report
  local needle=$1; shift
  "$@" >"$TMP/out" 2>"$TMP/err"
  local rc=$?
  [ $rc -eq 2 ] || die "'$*' exited $rc, expected 2: $(cat "$TMP/err")"
  grep -q -- "$needle" "$TMP/err" || die "'$*': message lacks '$needle': $(cat "$TMP/err")"
  if grep -qE "AddressSanitizer|runtime error|LeakSanitizer" "$TMP/err"; then die "'$*': sanitizer report"; fi
}

"$KILN" build "$MODEL" -o "$TMP/y.engine" >/dev/null || die "build failed"
size=$(stat -c %s "$TMP/y.engine")
"$KILN" inspect "$TMP/y.engine" | grep -q "output output0" || die "inspect of a good engine"

: > "$TMP/empty.engine"
check "empty" "$KILN" inspect "$TMP/empty.engine"
head -c 100 "$TMP/y.engine" > "$TMP/short.engine"
check "too short" "$KILN" run "$TMP/short.engine" --input images=/dev/null --output-dir "$TMP"
head -c $((size / 2)) "$TMP/y.engine" > "$TMP/half.engine"
check "truncated" "$KILN" inspect "$TMP/half.engine"
cp "$TMP/y.engine" "$TMP/flip.engine"
printf '\x5a' | dd of="$TMP/flip.engine" bs=1 seek=$((size / 3)) conv=notrunc status=none
check "checksum" "$KILN" inspect "$TMP/flip.engine"
cp "$MODEL" "$TMP/model.engine"   # an .onnx renamed .engine
check "not a kiln engine" "$KILN" run "$TMP/model.engine" --input images=/dev/null --output-dir "$TMP"
head -c 4096 /dev/urandom > "$TMP/random.engine"
check "not a kiln engine" "$KILN" run "$TMP/random.engine" --input images=/dev/null --output-dir "$TMP"
check "cannot open" "$KILN" run "$TMP/missing.engine" --input images=x.bin --output-dir "$TMP"

# flags and inputs
check "unknown flag" "$KILN" build "$MODEL" -o "$TMP/x.engine" --bogus
check "--batch" "$KILN" build "$MODEL" -o "$TMP/x.engine" --batch -3
check "--device" "$KILN" build "$MODEL" -o "$TMP/x.engine" --device tpu
printf "abc" > "$TMP/small.bin"
check "needs" "$KILN" run "$TMP/y.engine" --input images="$TMP/small.bin" --output-dir "$TMP"
check "no input named" "$KILN" run "$TMP/y.engine" --input nope=/dev/null --output-dir "$TMP"
check "does not exist" "$KILN" run "$TMP/y.engine" --input images=/dev/null --output-dir "$TMP/nodir"
[ -e "$TMP/x.engine" ] && die "a failed build left a file behind"
echo "robust_engine: ok"
