"""A user's OpenCV script: one image, one kernel, one PNG out (deflate level 1).

    python opencv_filter.py IN OUT KERNEL.txt     (KERNEL.txt: rows of numbers, numpy.loadtxt)

Borders are reflected without repeating the edge (BORDER_REFLECT_101), as convcli's default.
"""

import sys

import cv2
import numpy as np

source, target, kernel = sys.argv[1:4]
image = cv2.imread(source, cv2.IMREAD_UNCHANGED)
result = cv2.filter2D(image, -1, np.loadtxt(kernel, ndmin=2), borderType=cv2.BORDER_REFLECT_101)
cv2.imwrite(target, result, [cv2.IMWRITE_PNG_COMPRESSION, 1])
