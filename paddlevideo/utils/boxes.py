"""Box arithmetic shared by the data pipeline and the region extractor (numpy only)."""

import numpy as np


def normalised_locations(boxes, image_h, image_w):
    """Box locations as the model reads them.

    Args:
        boxes: [N, 4] x1, y1, x2, y2 in pixels.
    Returns:
        float32 [N, 5]: x1/w, y1/h, x2/w, y2/h, (y2-y1)(x2-x1)/(w h).
    """
    boxes = np.asarray(boxes, dtype=np.float32)
    w, h = np.float32(image_w), np.float32(image_h)
    loc = np.empty((len(boxes), 5), dtype=np.float32)
    loc[:, [0, 2]] = boxes[:, [0, 2]] / w
    loc[:, [1, 3]] = boxes[:, [1, 3]] / h
    loc[:, 4] = (boxes[:, 3] - boxes[:, 1]) * (boxes[:, 2] - boxes[:, 0]) / (w * h)
    return loc
