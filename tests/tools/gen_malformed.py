#!/usr/bin/python3
"""Write malformed ONNX models (one defect each) into OUTDIR for tests/cli/robust_malformed.sh.

Uses Debian's python3-onnx only to build protobufs (no checker: the point is invalid models).
Each file is <case>.onnx; the expected error text lives in the shell script next to the case name.
"""
import os
import random
import sys

import onnx
from onnx import TensorProto, helper


def tensor(name, dtype, dims, raw):
    t = TensorProto()
    t.name = name
    t.data_type = dtype
    t.dims.extend(dims)
    t.raw_data = raw
    return t


def model(nodes, inputs, outputs, inits=(), opset=17):
    g = helper.make_graph(nodes, "g", inputs, outputs, initializer=list(inits))
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 8
    return m


def vi(name, dims, dtype=TensorProto.FLOAT):
    return helper.make_tensor_value_info(name, dtype, dims)


def main(out):
    X, Y = vi("X", [1, 4]), vi("Y", None)
    relu = helper.make_node("Relu", ["X"], ["Y"], name="relu")
    w = tensor("W", TensorProto.FLOAT, [2, 2], bytes(16))
    cases = {
        "missing_input": model([helper.make_node("Add", ["X", "B"], ["Y"], name="add")], [X], [Y]),
        "cycle": model([helper.make_node("Add", ["X", "b"], ["a"], name="A"),
                        helper.make_node("Relu", ["a"], ["b"], name="B")],
                       [X], [vi("b", None)]),
        "self_loop": model([helper.make_node("Add", ["X", "a"], ["a"], name="loop")], [X], [vi("a", None)]),
        "dangling_output": model([relu], [X], [Y, vi("nowhere", None)]),
        "unknown_op": model([helper.make_node("FrobnicateV7", ["X"], ["Y"], name="frob")], [X], [Y]),
        "raw_data_mismatch": model([relu], [X], [Y], [tensor("W", TensorProto.FLOAT, [2, 2], bytes(12))]),
        "absurd_dims": model([relu], [X], [Y], [tensor("W", TensorProto.FLOAT, [1 << 40, 1 << 40], bytes(4))]),
        "huge_dims_tiny_data": model([relu], [X], [Y], [tensor("W", TensorProto.FLOAT, [1 << 20, 1 << 20], bytes(4))]),
        "negative_dim": model([relu], [vi("X", [1, -7])], [Y]),
        "rank9": model([relu], [X], [Y], [tensor("R9", TensorProto.FLOAT, [1] * 9, bytes(4))]),
        "string_initializer": model([relu], [X], [Y], [helper.make_tensor("S", TensorProto.STRING, [2], [b"a", b"b"])]),
        "no_op_type": model([helper.make_node("", ["X"], ["Y"], name="blank")], [X], [Y]),
        "duplicate_output": model([relu, helper.make_node("Relu", ["X"], ["Y"], name="relu2")], [X], [Y]),
    }
    ext = tensor("W", TensorProto.FLOAT, [2, 2], b"")
    ext.ClearField("raw_data")
    ext.data_location = TensorProto.EXTERNAL
    ext.external_data.add(key="location", value="../outside.bin")
    cases["external_escape"] = model([relu], [X], [Y], [ext])
    short = TensorProto()
    short.CopyFrom(ext)
    del short.external_data[:]
    short.external_data.add(key="location", value="short.bin")
    cases["external_short"] = model([relu], [X], [Y], [short])
    link = TensorProto()
    link.CopyFrom(short)
    link.external_data[0].value = "link.bin"  # the shell script makes link.bin point outside the folder
    cases["external_symlink"] = model([relu], [X], [Y], [link])
    with open(os.path.join(out, "short.bin"), "wb") as f:
        f.write(bytes(8))
    for name, m in cases.items():
        with open(os.path.join(out, name + ".onnx"), "wb") as f:
            f.write(m.SerializeToString())
    rng = random.Random(1234)  # fixed seed: the same bytes every run
    with open(os.path.join(out, "random_bytes.onnx"), "wb") as f:
        f.write(bytes(rng.randrange(256) for _ in range(3000)))
    # field 7 (graph) encoded as a varint instead of a message
    with open(os.path.join(out, "wrong_wire_type.onnx"), "wb") as f:
        f.write(bytes([0x08, 0x08, 0x38, 0x05]))


if __name__ == "__main__":
    main(sys.argv[1])
