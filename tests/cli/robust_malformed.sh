#!/bin/bash
# Malformed models through the CLI: `kiln inspect FILE` must exit with exactly 2 (bad input) and say on
# stderr what is wrong, never crash (no sanitizer report, no signal). Models come from
# tests/tools/gen_malformed.py (Debian python3-onnx); without it only the byte-level cases run.
set -u
KILN=${KILN:?KILN must point at the kiln binary}
SRC=${KILN_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
SHARED=${KILN_SHARED_DIR:-$SRC/../shared}
[ -x "$KILN" ] || { echo "skip: $KILN not built"; exit 77; }

tmp=$(mktemp -d /tmp/kiln_robust_XXXXXX)
trap 'rm -rf "$tmp"' EXIT
fails=0 ran=0

# check FILE EXPECTED-SUBSTRING
check() {
  local file=$1 want=$2 rc
  "$KILN" inspect "$tmp/$file" >"$tmp/out" 2>"$tmp/err"
  rc=$?
  ran=$((ran + 1))
  if [ "$rc" -ne 2 ]; then
    echo "FAIL $file: exit status $rc, expected 2"; fails=$((fails + 1))
  elif ! grep -qF -- "$want" "$tmp/err"; then
    echo "FAIL $file: stderr does not mention '$want':"; sed 's/^/  /' "$tmp/err"; fails=$((fails + 1))
  elif grep -qE 'AddressSanitizer|LeakSanitizer|runtime error' "$tmp/err"; then
    echo "FAIL $file: sanitizer report:"; sed 's/^/  /' "$tmp/err"; fails=$((fails + 1))
  else
    echo "ok   $file: $(head -n1 "$tmp/err")"
  fi
}

# byte-level cases need nothing but coreutils
: >"$tmp/empty.onnx"
check empty.onnx "the file is empty"
printf '\x08\x08\x38\x05' >"$tmp/wrong_wire_type.onnx" # field 7 (graph) as a varint
check wrong_wire_type.onnx "malformed"
head -c 5000 /dev/zero | tr '\0' '\377' >"$tmp/all_ff.onnx"
check all_ff.onnx "malformed"
check missing.onnx "cannot open"
if [ -r "$SHARED/models/yolov8n.onnx" ]; then
  for cut in 70 1000000 6000000; do # offsets inside the graph field: always a truncated message
    head -c $cut "$SHARED/models/yolov8n.onnx" >"$tmp/yolo_cut_$cut.onnx"
    check "yolo_cut_$cut.onnx" "truncated"
  done
fi

if /usr/bin/python3 -c 'import onnx' 2>/dev/null; then
  /usr/bin/python3 "$SRC/tests/tools/gen_malformed.py" "$tmp" || { echo "FAIL: gen_malformed.py"; exit 1; }
  ln -s /etc/passwd "$tmp/link.bin"
  check random_bytes.onnx "malformed"
  check missing_input.onnx "input 'B' is not produced"
  check cycle.onnx "cycle through node"
  check self_loop.onnx "cycle through node 'loop'"
  check dangling_output.onnx "graph output 'nowhere' is not produced"
  check unknown_op.onnx "unsupported op 'FrobnicateV7'"
  check raw_data_mismatch.onnx "raw_data has 12 bytes"
  check absurd_dims.onnx "absurd size"
  check huge_dims_tiny_data.onnx "raw_data has 4 bytes"
  check negative_dim.onnx "invalid dim -7"
  check rank9.onnx "rank 9"
  check string_initializer.onnx "string"
  check no_op_type.onnx "has no op_type"
  check duplicate_output.onnx "output 'Y' is already defined"
  check external_escape.onnx "leaves the model folder"
  check external_short.onnx "too short"
  check external_symlink.onnx "resolves outside the model folder"
else
  echo "note: /usr/bin/python3 with onnx not found (Debian python3-onnx): structural cases skipped"
fi

echo "robust_malformed: $ran cases, $fails failed"
[ "$fails" -eq 0 ]
