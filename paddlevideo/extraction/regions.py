"""A clip's regions: the boxes of its detector frames, ranked and merged across frames."""

import numpy as np

BACKGROUND = 1600  # index of the detector's background class (the last of 1601)


def iou(box, boxes):
    """IoU of one box [4] with boxes [N, 4] (x1, y1, x2, y2)."""
    x1 = np.maximum(box[0], boxes[:, 0])
    y1 = np.maximum(box[1], boxes[:, 1])
    x2 = np.minimum(box[2], boxes[:, 2])
    y2 = np.minimum(box[3], boxes[:, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    return inter / np.maximum(area + areas - inter, 1e-9)


def select_regions(detections, max_boxes=36, merge_iou=0.5):
    """The clip's regions from per-frame detector outputs (see the module docstring).

    detections: list of dicts with ``boxes`` [N, 4], ``features`` [N, D], ``cls_prob``
    [N, 1601]. Returns (boxes [M, 4], features [M, D], cls_prob [M, 1601]), M <= max_boxes,
    best first.
    """
    boxes = np.concatenate([np.asarray(d["boxes"], np.float32).reshape(-1, 4) for d in detections])
    feats = np.concatenate([np.asarray(d["features"], np.float32) for d in detections])
    probs = np.concatenate([np.asarray(d["cls_prob"], np.float32) for d in detections])
    if not len(boxes):
        return boxes, feats, probs
    objects = np.delete(probs, BACKGROUND, axis=1) if probs.shape[1] > BACKGROUND else probs
    score, label = objects.max(axis=1), objects.argmax(axis=1)
    order = np.argsort(-score, kind="stable")
    kept = []
    for i in order:
        if len(kept) == max_boxes:
            break
        same = [k for k in kept if label[k] == label[i]]
        if same and (iou(boxes[i], boxes[same]) > merge_iou).any():
            continue
        kept.append(i)
    kept = np.array(kept, dtype=np.int64)
    return boxes[kept], feats[kept], probs[kept]
