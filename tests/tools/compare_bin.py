#!/usr/bin/env python3
"""Compare raw little-endian tensors: relative L2 error of ACTUAL against REF.

  compare_bin.py ACTUAL.bin REF.bin [--tol 1e-5] [--dtype float32] [--split N --index I]

--split N --index I compares the I-th of N equal chunks of ACTUAL (one image of a batched output) with
REF. Prints "rel_l2=<value>"; exits 0 when rel_l2 <= tol, 1 when above (or sizes differ / NaN), 2 on
bad arguments. Relative L2 = ||a - r|| / max(||r||, tiny), computed in float64.
"""
import argparse
import sys

import numpy as np


def main():
    p = argparse.ArgumentParser()
    p.add_argument("actual")
    p.add_argument("ref")
    p.add_argument("--tol", type=float, default=1e-5)
    p.add_argument("--dtype", default="float32")
    p.add_argument("--split", type=int, default=1)
    p.add_argument("--index", type=int, default=0)
    a = p.parse_args()
    dt = np.dtype(a.dtype).newbyteorder("<")
    act = np.fromfile(a.actual, dtype=dt).astype(np.float64)
    ref = np.fromfile(a.ref, dtype=dt).astype(np.float64)
    if a.split < 1 or not 0 <= a.index < a.split or act.size % a.split:
        print(f"bad --split/--index for {act.size} elements", file=sys.stderr)
        return 2
    n = act.size // a.split
    act = act[a.index * n:(a.index + 1) * n]
    if act.size != ref.size:
        print(f"size mismatch: {act.size} vs {ref.size} elements", file=sys.stderr)
        return 1
    den = max(float(np.linalg.norm(ref)), 1e-30)
    rel = float(np.linalg.norm(act - ref)) / den
    print(f"rel_l2={rel:.3e}")
    return 0 if np.isfinite(rel) and rel <= a.tol else 1


if __name__ == "__main__":
    sys.exit(main())
