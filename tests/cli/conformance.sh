#!/usr/bin/env bash
# ONNX backend node tests through the whole engine path (kiln_build -> engine -> context -> enqueue).
# Gate: every test named in tests/conformance/expected_pass.txt must pass. Tests outside the list that fail
# are printed (kiln conformance names them with the reason) but do not fail this test: the list grows as
# ops and fixes land (regenerate with `kiln conformance DIR --write-expected FILE`).
set -u
: "${KILN:?KILN must point at the kiln binary}" "${KILN_SOURCE_DIR:?}"
DATA=/usr/share/libonnx-testdata/data/node
EXPECTED=$KILN_SOURCE_DIR/tests/conformance/expected_pass.txt
if [ ! -d "$DATA" ]; then
  echo "SKIP: $DATA is absent (install libonnx-testdata)"
  exit 77
fi
[ -f "$EXPECTED" ] || { echo "FAIL: missing $EXPECTED" >&2; exit 1; }
out=$(mktemp)
trap 'rm -f "$out"' EXIT
"$KILN" conformance "$DATA" --expected "$EXPECTED" >"$out" 2>&1
rc=$?
cat "$out"
summary=$(grep -E '^conformance: [0-9]+ passed, [0-9]+ failed, [0-9]+ skipped$' "$out") \
  || { echo "FAIL: no summary line (exit $rc)" >&2; exit 1; }
if grep -q '^expected to pass: ' "$out"; then
  echo "FAIL: tests in $EXPECTED did not pass (see 'expected to pass:' lines above)" >&2
  exit 1
fi
case $rc in
  0) ;;
  1) echo "FAIL: conformance has failures (F > 0): $summary" >&2; exit 1 ;;
  *) echo "FAIL: kiln conformance exited $rc" >&2; exit 1 ;;
esac
# the --expected check itself must work: a listed test that is not there is named and fails the run
bogus=$(mktemp)
printf 'test_abs_no_such\n' >"$bogus"
"$KILN" conformance "$DATA" --filter test_abs --expected "$bogus" >"$out" 2>&1
brc=$?
rm -f "$bogus"
grep -q '^expected to pass: test_abs_no_such (not found)' "$out" && [ "$brc" = 1 ] \
  || { cat "$out"; echo "FAIL: a missing expected test was not reported (exit $brc)" >&2; exit 1; }
"$KILN" conformance >/dev/null 2>&1; [ $? = 2 ] || { echo "FAIL: no DIR should exit 2" >&2; exit 1; }
"$KILN" conformance "$DATA" --bogus >/dev/null 2>&1; [ $? = 2 ] || { echo "FAIL: bad flag should exit 2" >&2; exit 1; }
echo "ok: $summary"
