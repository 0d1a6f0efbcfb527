"""Generated COCO annotations decoded by pycocotools, to cross-check srpnet's own decoders.

    pip install pycocotools
    python reproductions/reference/coco_masks.py OUT.json [--cases 2000] [--seed 0]

Writes OUT.json with three lists of cases, each with pycocotools' decoded mask as a row-major
string of '0'/'1' (`mask`):
  polygons: random star-shaped polygons (3..12 vertices, float coordinates inside the image)
            rasterised by `frPyObjects` + `decode`;
  compressed: random masks encoded by `encode` (the compressed `counts` string) and decoded back;
  plain: the same masks as uncompressed run lengths (`counts` list), decoded by pycocotools.
`tests/data_coco.rs` runs it when Python has pycocotools, decodes the same annotations with
`src/data/coco.rs`, and reports the disagreement. Exits 3 when pycocotools is missing.
"""

import argparse
import json
import math
import random
import sys

try:
    import numpy as np
    from pycocotools import mask as mask_utils
except ImportError as e:  # the Rust test skips on this code
    print(f"pycocotools is not installed ({e}): pip install pycocotools", file=sys.stderr)
    sys.exit(3)


def row_major(m):
    return "".join("1" if v else "0" for v in np.asarray(m, dtype=np.uint8).reshape(-1))


def star_polygon(rng, h, w):
    cx, cy = rng.uniform(0, w), rng.uniform(0, h)
    k = rng.randint(3, 12)
    angles = sorted(rng.uniform(0, 2 * math.pi) for _ in range(k))
    reach = rng.uniform(1.0, max(h, w) / 2)
    poly = []
    for a in angles:
        r = reach * rng.uniform(0.3, 1.0)
        x = min(max(cx + r * math.cos(a), 0.0), float(w))
        y = min(max(cy + r * math.sin(a), 0.0), float(h))
        poly += [round(x, 2), round(y, 2)]
    return poly


def random_mask(rng, h, w):
    m = np.zeros((h, w), dtype=np.uint8)
    for _ in range(rng.randint(0, 5)):
        y0, x0 = rng.randrange(h), rng.randrange(w)
        y1, x1 = rng.randint(y0, h), rng.randint(x0, w)
        m[y0:y1, x0:x1] ^= 1
    return m


def runs_column_major(m):
    flat = np.asarray(m, dtype=np.uint8).reshape(-1, order="F")
    counts, value, run = [], 0, 0
    for v in flat:
        if v != value:
            counts.append(run)
            value, run = v, 0
        run += 1
    counts.append(run)
    return counts


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--cases", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    rng = random.Random(a.seed)
    polygons, compressed, plain = [], [], []
    for _ in range(a.cases):
        h, w = rng.randint(4, 80), rng.randint(4, 80)
        poly = star_polygon(rng, h, w)
        m = mask_utils.decode(mask_utils.merge(mask_utils.frPyObjects([poly], h, w)))
        polygons.append({"h": h, "w": w, "polygon": poly, "mask": row_major(m)})
    for _ in range(a.cases):
        h, w = rng.randint(1, 80), rng.randint(1, 80)
        m = random_mask(rng, h, w)
        enc = mask_utils.encode(np.asfortranarray(m))
        compressed.append({
            "h": h, "w": w, "counts": enc["counts"].decode("ascii"),
            "mask": row_major(mask_utils.decode(enc)),
        })
        counts = runs_column_major(m)
        rle = mask_utils.frPyObjects({"counts": counts, "size": [h, w]}, h, w)
        plain.append({"h": h, "w": w, "counts": counts, "mask": row_major(mask_utils.decode(rle))})
    from importlib.metadata import version
    with open(a.out, "w") as f:
        json.dump({
            "pycocotools": version("pycocotools"),
            "polygons": polygons, "compressed": compressed, "plain": plain,
        }, f)


if __name__ == "__main__":
    main()
