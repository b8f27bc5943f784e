"""A user's OpenCV loop: every image through one kernel, JPEG out (quality 95, 4:2:0).

python opencv_batch.py KERNEL.txt OUTDIR IN...    (KERNEL.txt: rows of numbers)
"""

import os
import sys

import cv2
import numpy as np

kernel = np.loadtxt(sys.argv[1], ndmin=2)
outdir = sys.argv[2]
for source in sys.argv[3:]:
    image = cv2.imread(source, cv2.IMREAD_UNCHANGED)
    result = cv2.filter2D(image, -1, kernel, borderType=cv2.BORDER_REFLECT_101)
    cv2.imwrite(
        os.path.join(outdir, os.path.basename(source)), result, [cv2.IMWRITE_JPEG_QUALITY, 95]
    )
