#!/usr/bin/env bash
# --timingCacheFile / --noTacticTiming on `kiln build` and `kiln exec`: flag syntax, a malformed or foreign
# cache file is an error naming the file (exit 2, no crash, no engine written), and a build for another
# compute capability (no timing) leaves no cache file behind. Skips where kiln has no CUDA backend.
set -u
: "${KILN:?KILN must point at the kiln binary}"
SHARED=${KILN_SHARED_DIR:-${KILN_SOURCE_DIR:-.}/../shared}
MODEL=$SHARED/models/yolov8n.onnx
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
die() { echo "FAIL: $*" >&2; exit 1; }
[ -r "$MODEL" ] || { echo "SKIP: no $MODEL"; exit 77; }

expect_rc() {
  local want=$1; shift
  "$@" >"$TMP/out" 2>"$TMP/err"
  local got=$?
  [ "$got" = "$want" ] || { cat "$TMP/out" "$TMP/err" >&2; die "expected exit $want, got $got: $*"; }
  if [ "$want" != 0 ] && [ ! -s "$TMP/err" ]; then die "no error message on stderr: $*"; fi
}
expect_err() { grep -Eq -e "$1" "$TMP/err" || { cat "$TMP/err" >&2; die "stderr does not match /$1/"; }; }

# flag syntax (before anything is built)
expect_rc 2 "$KILN" build "$MODEL" -o "$TMP/e" --timingCacheFile=; expect_err 'timingCacheFile'
expect_rc 2 "$KILN" exec --loadEngine="$TMP/none.engine" --timingCacheFile="$TMP/c.json"; expect_err 'need --onnx'
expect_rc 2 "$KILN" exec --loadEngine="$TMP/none.engine" --noTacticTiming; expect_err 'need --onnx'
"$KILN" build --help | grep -q -- '--timingCacheFile' || die "build --help does not list --timingCacheFile"
"$KILN" exec --help | grep -q -- '--noTacticTiming' || die "exec --help does not list --noTacticTiming"

# the rest builds GPU engines (for sm_80 or sm_90, whichever is not this machine's GPU: no timing)
"$KILN" build "$MODEL" -o "$TMP/probe.engine" --device cuda --cuda-arch 90 >/dev/null 2>"$TMP/err" ||
  { grep -q "without CUDA" "$TMP/err" && { echo "SKIP: no CUDA backend"; exit 77; }; cat "$TMP/err" >&2; die "probe build"; }
ARCH=90
if command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | grep -q '^9\.0'; then
  ARCH=80
fi
bad() { # CONTENT NEEDLE
  printf '%s' "$1" >"$TMP/bad.json"
  rm -f "$TMP/b.engine"
  expect_rc 2 "$KILN" build "$MODEL" -o "$TMP/b.engine" --device cuda --fp16 --cuda-arch $ARCH --timingCacheFile "$TMP/bad.json"
  expect_err "bad.json"
  expect_err "$2"
  [ ! -e "$TMP/b.engine" ] || die "an engine was written despite a bad cache"
}
bad '{"format": "kiln-timing-cache", "version": 1, "entries": [{"key": "a", "kern' 'not valid JSON'
bad '[]' 'not a kiln timing cache'
bad '{"format": "kiln-timing-cache", "version": 7, "entries": []}' 'version 7'
bad '{"format": "kiln-timing-cache", "version": 1, "entries": [{"key": "a"}]}' 'entry 0'
expect_rc 2 "$KILN" build "$MODEL" -o "$TMP/b.engine" --device cuda --fp16 --cuda-arch $ARCH --timingCacheFile "$TMP"
expect_err "not a regular file"
expect_rc 2 "$KILN" exec --onnx="$MODEL" --device=cuda --fp16 --timingCacheFile="$TMP/bad.json" --duration=0 --iterations=1

# no timing for another capability: no cache file appears, and --noTacticTiming gives the same engine
expect_rc 0 "$KILN" build "$MODEL" -o "$TMP/a.engine" --device cuda --fp16 --cuda-arch $ARCH --timingCacheFile "$TMP/new.json"
[ ! -e "$TMP/new.json" ] || die "a cache file was written although nothing was timed"
expect_rc 0 "$KILN" build "$MODEL" -o "$TMP/n.engine" --device cuda --fp16 --cuda-arch $ARCH --noTacticTiming
cmp -s "$TMP/a.engine" "$TMP/n.engine" || die "--noTacticTiming changed an untimed engine"
echo "PASS"
