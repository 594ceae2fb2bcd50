"""Gathers real photographs shipped inside registry packages into one folder as lossless PNG
(RGB), and writes reference.csv: each photo's PDQ hash and quality from Meta's own C++
implementation (the pdqhash package compiles it) on exactly those pixels. Run by
scripts/eval-photos; usage: python eval_photos_prepare.py OUT_DIR [OPENCV_EXAMPLES_DIR].

The sources: scikit-image's and scikit-learn's wheels (PyPI), and, when its folder is given,
the sample data of Debian's opencv-doc package (scenes, street signs, buildings, objects on
a table, a chessboard photographed in 13 poses by a stereo pair)."""

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

# opencv-doc's photographs of real scenes, every one in the package but: renders, drawings,
# the painting and synthetic shapes; copies made worse on purpose (ela_modified is an edited
# copy of ela_original; licenseplate_motion, text_defocus and text_motion are blurred on
# purpose); the second frame of a video pair (basketball2, rubberwhale2: the same picture a
# frame later). Other shots of one scene stay, as different photos that must not match:
# aero1/aero3, aloeL/aloeR, graf1/graf3, leuvenA/leuvenB, left/right, box/box_in_scene, and
# the chessboard photographed in 13 poses by two cameras (left01–14, right01–14).
OPENCV_DATA = [
    "aero1.jpg", "aero3.jpg", "aloeL.jpg", "aloeR.jpg", "apple.jpg", "baboon.jpg", "basketball1.png",
    "board.jpg", "box.png", "box_in_scene.png", "building.jpg", "butterfly.jpg", "chicky_512.png",
    "ela_original.jpg", "fruits.jpg", "graf1.png", "graf3.png", "home.jpg", "left.jpg", "right.jpg",
    "leuvenA.jpg", "leuvenB.jpg", "messi5.jpg", "orange.jpg", "rubberwhale1.png", "smarties.png",
    "squirrel_cls.jpg", "stuff.jpg", "sudoku.png",
] + [f"{side}{i:02}.jpg" for side in ("left", "right") for i in (1, 2, 3, 4, 5, 6, 7, 8, 9, 11, 12, 13, 14)]
OPENCV_OTHER = [
    "alphamat/input_images/plant.jpg", "hfs/data/000.jpg", "hfs/data/001.jpg", "hfs/data/002.jpg",
] + [f"text/scenetext0{i}.jpg" for i in range(1, 7)]


def main(out, opencv=None):
    os.makedirs(out, exist_ok=True)
    sources = [(os.path.join(os.path.dirname(skimage.__file__), "data", n), n) for n in SKIMAGE]
    sources += [(os.path.join(os.path.dirname(sklearn.__file__), "datasets", "images", n), n) for n in SKLEARN]
    if opencv:
        sources += [(os.path.join(opencv, "data", n), "opencv-" + n) for n in OPENCV_DATA]
        sources += [(os.path.join(opencv, n), "opencv-" + n.replace("/", "-")) for n in OPENCV_OTHER]
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
    main(*sys.argv[1:3])
