"""Gathers the real photographs that scikit-image and scikit-learn ship inside their packages
into one folder as lossless PNG (RGB), and writes reference.csv: each photo's PDQ hash and
quality from Meta's own C++ implementation (the pdqhash package compiles it) on exactly
those pixels. Run by scripts/eval-photos; usage: python eval_photos_prepare.py OUT_DIR."""

import os
import sys

import numpy as np
import pdqhash
import skimage
import sklearn
from PIL import Image

# Photographs only (no drawings, text pages, masks or synthetic images). The motorcycle pair is
# a stereo pair: the same scene from two points of view, two different shots.
SKIMAGE = [
    "astronaut.png", "brick.png", "camera.png", "chelsea.png", "coffee.png", "coins.png",
    "grass.png", "gravel.png", "hubble_deep_field.jpg", "ihc.png", "moon.png",
    "motorcycle_left.png", "motorcycle_right.png", "retina.jpg", "rocket.jpg",
]
SKLEARN = ["china.jpg", "flower.jpg"]


def main(out):
    os.makedirs(out, exist_ok=True)
    sources = [(os.path.join(os.path.dirname(skimage.__file__), "data", n), n) for n in SKIMAGE]
    sources += [(os.path.join(os.path.dirname(sklearn.__file__), "datasets", "images", n), n) for n in SKLEARN]
    lines = []
    for path, name in sources:
        rgb = np.asarray(Image.open(path).convert("RGB"))
        png = os.path.splitext(name)[0] + ".png"
        Image.fromarray(rgb).save(os.path.join(out, png))
        bits, quality = pdqhash.compute(rgb)
        # pdqhash gives the bits most significant first, as Meta's tools print the hash in hex.
        value = int("".join(str(int(b)) for b in bits), 2)
        lines.append(f"{value:064x},{quality},{png}")
    with open(os.path.join(out, "reference.csv"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print(f"{len(lines)} photos in {out}", file=sys.stderr)


if __name__ == "__main__":
    main(sys.argv[1])
