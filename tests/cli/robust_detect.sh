#!/usr/bin/env bash
# Bad photos, paths and flags for `kiln detect`: each gives a message naming the problem and exit status 2,
# never a crash (this script also runs in the ASan/UBSan build, `make test-asan`).
source "$KILN_SOURCE_DIR/tests/tools/cli_common.sh"
export XDG_CACHE_HOME=$TMP/cache
IMG=$KILN_SHARED_DIR/images

check() { # check NEEDLE CMD...: exit 2, NEEDLE in stderr, no sanitizer report
  local needle=$1; shift
  "$@" >"$TMP/out" 2>"$TMP/err"
  local rc=$?
  [ $rc -eq 2 ] || die "'$*' exited $rc, expected 2: $(cat "$TMP/err")"
  grep -q -- "$needle" "$TMP/err" || die "'$*': message lacks '$needle': $(cat "$TMP/err")"
  if grep -qE "AddressSanitizer|runtime error|LeakSanitizer" "$TMP/err"; then die "'$*': sanitizer report"; fi
}
D() { "$KILN" detect "$MODEL" "$@"; }

# Photos that are not photos.
head -c 20000 "$IMG/dog.jpg" > "$TMP/truncated.jpg"
check "truncated JPEG" D -i "$TMP/truncated.jpg" -o "$TMP/o.jpg"
: > "$TMP/empty.jpg"
check "empty" D -i "$TMP/empty.jpg" -o "$TMP/o.jpg"
echo "this is not a picture" > "$TMP/text.jpg"
check "not a JPEG, PNG or BMP" D -i "$TMP/text.jpg" -o "$TMP/o.jpg"
# Headers claiming 20000x20000 (PNG and JPEG): refused from the header, before any pixel memory.
"$PY" - "$TMP" "$IMG/dog.jpg" <<'PYEOF'
import struct, sys, zlib
d = sys.argv[1]
def chunk(t, b): return struct.pack(">I", len(b)) + t + b + struct.pack(">I", zlib.crc32(t + b))
sig = b"\x89PNG\r\n\x1a\n"
open(d + "/huge.png", "wb").write(sig + chunk(b"IHDR", struct.pack(">IIBBBBB", 20000, 20000, 8, 2, 0, 0, 0))
                                  + chunk(b"IDAT", zlib.compress(b"\0" * 100)) + chunk(b"IEND", b""))
# 1x1 RGB PNG: a valid, tiny photo
open(d + "/tiny.png", "wb").write(sig + chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0))
                                  + chunk(b"IDAT", zlib.compress(b"\0\x80\x40\x20")) + chunk(b"IEND", b""))
j = bytearray(open(sys.argv[2], "rb").read())
i = 2
while j[i] == 0xFF and j[i + 1] not in (0xC0, 0xC1, 0xC2):
    i += 2 + (j[i + 2] << 8 | j[i + 3])
j[i + 5:i + 9] = struct.pack(">HH", 20000, 20000)
open(d + "/huge.jpg", "wb").write(j)
PYEOF
check "20000x20000, larger than the limit" D -i "$TMP/huge.png" -o "$TMP/o.jpg"
check "20000x20000, larger than the limit" D -i "$TMP/huge.jpg" -o "$TMP/o.jpg"

# A 1x1 photo works (nothing to find in it).
D -i "$TMP/tiny.png" -o "$TMP/tiny_out.png" --json "$TMP/tiny.json" >"$TMP/out" 2>"$TMP/err" \
  || die "1x1 image failed: $(cat "$TMP/err")"
grep -qE "AddressSanitizer|runtime error" "$TMP/err" && die "1x1 image: sanitizer report"
[ -s "$TMP/tiny_out.png" ] || die "1x1 image: no output written"
grep -q '"tiny.png"' "$TMP/tiny.json" || die "1x1 image missing from JSON"

# Missing inputs and unwritable outputs (checked before the engine is built).
check "does not exist" D -i "$TMP/no_such_folder" -o "$TMP/o.jpg"
check "does not exist" D -i "$TMP/no_such.jpg" -o "$TMP/o.jpg"
mkdir -p "$TMP/emptydir"
check "holds no" D -i "$TMP/emptydir" -o "$TMP/o"
check "does not exist" D -i "$IMG/dog.jpg" -o "$TMP/no_such_folder/out.jpg"
: > "$TMP/afile"
check "cannot write\|cannot create" D -i "$IMG/dog.jpg" -o "$TMP/afile/out.jpg"
check "cannot create output folder" D -i "$IMG" -o "$TMP/afile/outdir"
check "does not exist" D -i "$IMG/dog.jpg" --json "$TMP/no_such_folder/d.json"

# Flags.
check "unknown flag" D -i "$IMG/dog.jpg" --bogus
check "--conf" D -i "$IMG/dog.jpg" --conf 2
check "--iou" D -i "$IMG/dog.jpg" --iou abc
check "--max-det" D -i "$IMG/dog.jpg" --max-det 0
check "--format" D -i "$IMG/dog.jpg" --format yolo9000
check "--device" D -i "$IMG/dog.jpg" --device tpu
check "usage" "$KILN" detect "$MODEL"
check "cannot open" "$KILN" detect "$TMP/missing.onnx" -i "$IMG/dog.jpg"
check "no class names" D -i "$IMG/dog.jpg" --names "$TMP/empty.jpg"

# A folder with one bad photo among good ones: the good ones are processed, the exit status says 2.
mkdir -p "$TMP/mixed" && cp "$IMG/dog.jpg" "$TMP/text.jpg" "$TMP/mixed/"
check "not a JPEG, PNG or BMP" D -i "$TMP/mixed" -o "$TMP/mixed_out"
[ -s "$TMP/mixed_out/dog.jpg" ] || die "the good photo of a mixed folder was not processed"
echo "robust_detect: ok"
