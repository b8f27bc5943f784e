"""A user's OpenCV script: enlarge one image by FACTOR, bilinear, PNG out (deflate level 1).

python opencv_resize.py IN OUT FACTOR
"""

import sys

import cv2

source, target, factor = sys.argv[1], sys.argv[2], int(sys.argv[3])
image = cv2.imread(source, cv2.IMREAD_UNCHANGED)
result = cv2.resize(image, None, fx=factor, fy=factor, interpolation=cv2.INTER_LINEAR)
cv2.imwrite(target, result, [cv2.IMWRITE_PNG_COMPRESSION, 1])
