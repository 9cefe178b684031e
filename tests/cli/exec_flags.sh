#!/usr/bin/env bash
# kiln exec: trtexec-style flags and summary on a tiny generated model (Conv + Relu + Add, static shapes):
# summary lines, --saveEngine/--loadEngine, --loadInputs, the JSON exports, --dumpProfile, bad flags -> 2.
set -u
: "${KILN:?KILN must point at the kiln binary}"
PY=/usr/bin/python3 # Debian's python3-onnx lives in the system python
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
die() { echo "FAIL: $*" >&2; exit 1; }
"$PY" -c 'import onnx, numpy' 2>/dev/null || { echo "SKIP: $PY cannot import onnx and numpy"; exit 77; }

"$PY" - "$TMP/tiny.onnx" <<'PYEOF' || die "cannot generate the tiny model"
import sys, numpy as np, onnx
from onnx import helper, TensorProto, numpy_helper
rng = np.random.default_rng(0)
w = numpy_helper.from_array(rng.standard_normal((8, 3, 3, 3)).astype(np.float32), "w")
b = numpy_helper.from_array(rng.standard_normal((8,)).astype(np.float32), "b")
nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], name="conv", pads=[1, 1, 1, 1]),
         helper.make_node("Relu", ["c"], ["r"], name="relu"),
         helper.make_node("Sigmoid", ["c"], ["s"], name="sig"),
         helper.make_node("Add", ["r", "s"], ["y"], name="add")]
g = helper.make_graph(nodes, "tiny", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 16, 16])],
                      [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8, 16, 16])], [w, b])
m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
onnx.checker.check_model(m)
onnx.save(m, sys.argv[1])
PYEOF
M=$TMP/tiny.onnx

# expect_rc CODE CMD...: exit status CODE; failures must say why on stderr
expect_rc() {
  local want=$1; shift
  "$@" >"$TMP/out" 2>"$TMP/err"
  local got=$?
  [ "$got" = "$want" ] || { cat "$TMP/out" "$TMP/err" >&2; die "expected exit $want, got $got: $*"; }
  if [ "$want" != 0 ] && [ ! -s "$TMP/err" ]; then die "no error message on stderr: $*"; fi
}

# -- a full run: build + save, exports, profile
expect_rc 0 "$KILN" exec --onnx="$M" --saveEngine="$TMP/tiny.engine" --iterations=20 --warmUp=10 --duration=0.2 \
  --threads=1 --percentile=50,99 --exportTimes="$TMP/times.json" --exportProfile="$TMP/prof.json" \
  --exportOutput="$TMP/out.json" --dumpProfile
cp "$TMP/out" "$TMP/run1.txt"
for pat in '^\[I\] Throughput: [0-9.e+-]+ qps$' \
           '^\[I\] Latency: min = .* ms, max = .* ms, mean = .* ms, median = .* ms, percentile\(50%\) = .* ms, percentile\(99%\) = .* ms$' \
           '^\[I\] Enqueue Time: min = ' '^\[I\] H2D Latency: min = 0 ms' '^\[I\] GPU Compute Time: min = ' \
           '^\[I\] D2H Latency: min = 0 ms' '^\[I\] Total Host Walltime: [0-9.e+-]+ s$' \
           '^\[I\] Total GPU Compute Time: [0-9.e+-]+ s$' '^\[I\] === Profile \(' '^\[I\] === Profile by op type' \
           '^&&&& PASSED kiln exec'; do
  grep -Eq "$pat" "$TMP/run1.txt" || { cat "$TMP/run1.txt"; die "no line matching /$pat/"; }
done
[ -s "$TMP/tiny.engine" ] || die "--saveEngine wrote nothing"
"$PY" - "$TMP" <<'PYEOF' || die "exported JSON is wrong"
import json, sys
d = sys.argv[1]
times = json.load(open(d + "/times.json"))
assert isinstance(times, list) and len(times) >= 20, len(times)
keys = {"startEnqMs", "endEnqMs", "startH2dMs", "endH2dMs", "startComputeMs", "endComputeMs", "startD2hMs",
        "endD2hMs", "h2dMs", "computeMs", "d2hMs", "latencyMs"}
assert all(set(t) == keys for t in times), times[0]
assert all(t["latencyMs"] >= 0 and t["endEnqMs"] >= t["startEnqMs"] for t in times)
prof = json.load(open(d + "/prof.json"))
assert prof[0]["count"] >= 20, prof[0]
assert len(prof) >= 2
for p in prof[1:]:
    assert set(p) == {"name", "timeMs", "averageMs", "medianMs", "percentage"}, p
assert abs(sum(p["percentage"] for p in prof[1:]) - 100) < 0.5
out = json.load(open(d + "/out.json"))
assert out[0]["name"] == "y" and out[0]["dimensions"] == "1x8x16x16" and len(out[0]["values"]) == 8 * 16 * 16
PYEOF

# -- load the saved engine, feed a file, check the output against numpy, print it (duration 0: iterations rule)
"$PY" -c "import numpy as np; np.random.default_rng(1).random((1,3,16,16), dtype=np.float32).tofile('$TMP/x.bin')"
expect_rc 0 "$KILN" exec --loadEngine="$TMP/tiny.engine" --loadInputs=x:"$TMP/x.bin" --iterations=3 --warmUp=0 \
  --duration=0 --exportOutput="$TMP/out2.json" --dumpOutput --separateProfileRun --exportProfile="$TMP/prof2.json"
grep -q "^\[I\] Input 'x': float32 1x3x16x16 (loaded)" "$TMP/out" || die "--loadInputs not reported"
grep -q "^\[I\] y: (1x8x16x16)" "$TMP/out" || die "--dumpOutput did not print y"
grep -Eq '^\[I\] Timing: 3 iterations' "$TMP/out" || die "--iterations=3 --duration=0 should run exactly 3"
"$PY" - "$TMP" "$M" <<'PYEOF' || die "--loadInputs output differs from numpy"
import json, sys, numpy as np, onnx
from onnx import numpy_helper
d, m = sys.argv[1], onnx.load(sys.argv[2])
w, b = (numpy_helper.to_array(t) for t in m.graph.initializer)
x = np.fromfile(d + "/x.bin", dtype=np.float32).reshape(1, 3, 16, 16)
xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
c = np.zeros((1, 8, 16, 16), np.float64)
for i in range(16):
    for j in range(16):
        c[0, :, i, j] = np.tensordot(w, xp[0, :, i:i + 3, j:j + 3], axes=3) + b
y = np.maximum(c, 0) + 1 / (1 + np.exp(-c))
got = np.array(json.load(open(d + "/out2.json"))[0]["values"]).reshape(y.shape)
assert np.max(np.abs(got - y)) < 1e-4, np.max(np.abs(got - y))
assert json.load(open(d + "/prof2.json"))[0]["count"] == 3
PYEOF

# -- bad flags and bad inputs: exit 2 with a message
expect_rc 2 "$KILN" exec
expect_rc 2 "$KILN" exec --onnx="$M" --bogus
expect_rc 2 "$KILN" exec --onnx="$M" --iterations=0
expect_rc 2 "$KILN" exec --onnx="$M" --iterations=abc
expect_rc 2 "$KILN" exec --onnx="$M" --warmUp=-1
expect_rc 2 "$KILN" exec --onnx="$M" --duration=x
expect_rc 2 "$KILN" exec --onnx="$M" --percentile=101
expect_rc 2 "$KILN" exec --onnx="$M" --threads=0
expect_rc 2 "$KILN" exec --onnx="$M" --batch=0
expect_rc 2 "$KILN" exec --onnx="$M" --loadEngine="$TMP/tiny.engine"
expect_rc 2 "$KILN" exec --loadEngine="$TMP/tiny.engine" --saveEngine="$TMP/x.engine"
expect_rc 2 "$KILN" exec --onnx="$TMP/missing.onnx"
expect_rc 2 "$KILN" exec --onnx="$TMP/x.bin"
expect_rc 2 "$KILN" exec --loadEngine="$TMP/x.bin"
expect_rc 2 "$KILN" exec --loadEngine="$TMP/tiny.engine" --loadInputs=nosuch:"$TMP/x.bin" --duration=0 --warmUp=0
expect_rc 2 "$KILN" exec --loadEngine="$TMP/tiny.engine" --loadInputs=x:"$TMP/tiny.onnx" --duration=0 --warmUp=0
expect_rc 0 "$KILN" exec --help
echo "ok: kiln exec flags"
