"""Compare `kiln detect --json` output with ONNX Runtime's reference detections.

usage: compare_detections.py REFERENCE.json GOT.json [IMAGE ...]
Every reference detection (of the named images, default all) must be found with the same class, IoU >= 0.9
in photo pixels and |score difference| <= 0.02; no unmatched extra detection may score above 0.3.
"""
import json, sys
ref = json.load(open(sys.argv[1]))["images"]
if len(sys.argv) > 3:
    ref = {k: v for k, v in ref.items() if k in sys.argv[3:]}
got = json.load(open(sys.argv[2]))["images"]
def iou(a, b):
    iw = min(a[2], b[2]) - max(a[0], b[0]); ih = min(a[3], b[3]) - max(a[1], b[1])
    if iw <= 0 or ih <= 0: return 0.0
    i = iw * ih
    return i / ((a[2]-a[0])*(a[3]-a[1]) + (b[2]-b[0])*(b[3]-b[1]) - i)
bad, n, worst_iou, worst_ds = [], 0, 1.0, 0.0
for name, r in sorted(ref.items()):
    g = got.get(name)
    if g is None: bad.append(f"{name}: missing"); continue
    used = set()
    for rd in r["detections"]:
        n += 1
        cands = [(iou(rd["box"], gd["box"]), k) for k, gd in enumerate(g["detections"])
                 if gd["cls"] == rd["cls"] and k not in used]
        if not cands: bad.append(f"{name}: {rd['name']} {rd['score']} not found"); continue
        best, k = max(cands)
        ds = abs(g["detections"][k]["score"] - rd["score"])
        if best < 0.9 or ds > 0.02:
            bad.append(f"{name}: {rd['name']} {rd['score']} best match IoU {best:.3f}, score diff {ds:.4f}"); continue
        used.add(k); worst_iou = min(worst_iou, best); worst_ds = max(worst_ds, ds)
    for k, gd in enumerate(g["detections"]):
        if k not in used and gd["score"] > 0.3:
            bad.append(f"{name}: extra {gd['name']} {gd['score']} {gd['box']}")
print(f"detect_reference: {n - len([b for b in bad if 'extra' not in b])}/{n} reference detections matched; "
      f"min IoU {worst_iou:.4f}, max |score diff| {worst_ds:.4f}")
for b in bad: print("  " + b)
sys.exit(1 if bad else 0)
