"""Random clips in the released and store formats, for tests and benchmarks (no meaning)."""

import numpy as np

from .record import Clip

WORDS = ("cut", "the", "onion", "pour", "water", "into", "a", "pan", "stir", "slowly", "add", "salt", "fold",
         "paper", "tighten", "screw", "paint", "wall", "whisk", "eggs")


def random_caption(rng, low=4, high=12):
    return " ".join(rng.choice(WORDS, size=int(rng.integers(low, high))))


def random_clip(rng, index, feature_size=2048, num_classes=1601, action_feature_size=2048, max_boxes=36,
                max_actions=5, captions=3):
    """A valid Clip with a dense, row-normalised ``image_target`` [N, C]."""
    n = int(rng.integers(1, max_boxes + 1))
    a = int(rng.integers(1, max_actions + 1))
    h, w = 360.0, 640.0
    x1, y1 = rng.uniform(0, w - 2, n), rng.uniform(0, h - 2, n)
    x2, y2 = rng.uniform(x1 + 1, w), rng.uniform(y1 + 1, h)
    target = rng.random((n, num_classes), dtype=np.float32) ** 8  # peaked, like detector softmaxes
    target /= target.sum(axis=1, keepdims=True)
    return Clip(
        clip_id=f"clip{index:07d}", video_id=f"video{index // 4:06d}",
        captions=[random_caption(rng) for _ in range(captions)], image_h=h, image_w=w,
        boxes=np.stack([x1, y1, x2, y2], axis=1).astype(np.float32),
        image_feature=rng.random((n, feature_size), dtype=np.float32),
        image_target=target,
        action_feature=rng.random((a, action_feature_size), dtype=np.float32),
        action_target=rng.integers(0, 700, a).astype(np.int64),
    )


def npy_item(clip):
    """The 11-field item of PaddleVideo's ``actbert_train_data.npy`` holding ``clip``."""
    return (clip.image_feature, clip.dense_target(), clip.boxes, clip.n_boxes, clip.image_h, clip.image_w,
            clip.video_id, "!".join(clip.captions), clip.action_feature, clip.action_target, clip.n_actions)


def write_npy(path, clips):
    """Write ``clips`` as PaddleVideo's object-array ``.npy``."""
    items = np.empty(len(clips), dtype=object)
    for i, clip in enumerate(clips):
        items[i] = npy_item(clip)
    np.save(path, items, allow_pickle=True)
    return path


def _long_caption(rng, words):
    return " ".join(rng.choice(WORDS, size=words))


def released_clip(rng, index, feature_size=2048, num_classes=1601, action_feature_size=2048, action_classes=700):
    """A clip as the released HowTo100M features come, drawn toward the extremes that break things.

    Boxes 0 (the format allows it), 1, 36 or in between; actions 1 (often: a single action that
    masking zeroes leaves the clip without any action signal), 5 or in between; one to four
    captions of 1 to 60 words (past the 36 token slots); post-ReLU features with exact zeros
    and, now and then, an all-zero feature row; region class distributions that are detector
    softmaxes cut to their top classes, the rest exact zeros, some one-hot.
    """
    n = int(rng.choice([0, 1, 36, int(rng.integers(2, 36))], p=[0.1, 0.2, 0.3, 0.4]))
    a = int(rng.choice([1, 5, int(rng.integers(2, 5))], p=[0.45, 0.25, 0.3]))
    h, w = float(rng.choice([240, 360, 720])), float(rng.choice([320, 640, 1280]))
    x1, y1 = rng.uniform(0, w - 2, n), rng.uniform(0, h - 2, n)
    x2, y2 = rng.uniform(x1 + 1, w), rng.uniform(y1 + 1, h)

    def relu_features(rows, width):
        feat = np.maximum(rng.normal(0.0, 1.0, (rows, width)), 0).astype(np.float32)
        feat[rng.random(rows) < 0.1] = 0.0
        return feat

    target = np.zeros((n, num_classes), dtype=np.float32)
    for i in range(n):
        k = int(rng.choice([1, 10, 100]))
        classes = rng.choice(num_classes, size=k, replace=False)
        target[i, classes] = rng.dirichlet(np.full(k, 0.3)).astype(np.float32)
    captions = [_long_caption(rng, int(rng.choice([1, int(rng.integers(2, 20)), 60])))
                for _ in range(int(rng.integers(1, 5)))]
    return Clip(
        clip_id=f"clip{index:07d}", video_id=f"video{index // 4:06d}", captions=captions, image_h=h, image_w=w,
        boxes=np.stack([x1, y1, x2, y2], axis=1).astype(np.float32).reshape(n, 4),
        image_feature=relu_features(n, feature_size), image_target=target,
        action_feature=relu_features(a, action_feature_size),
        action_target=rng.integers(0, action_classes, a).astype(np.int64),
    )


def write_video(path, seconds=2.0, fps=15, height=120, width=160, seed=0, shapes=2):
    """An H.264 ``.mp4`` of ``shapes`` coloured squares moving over a grey background (PyAV).

    ``seconds * fps`` frames (at least 1). Returns ``path``."""
    import av

    rng = np.random.default_rng(seed)
    colours = rng.integers(0, 256, (shapes, 3))
    start = rng.uniform(0, 1, (shapes, 2)) * (width, height)
    speed = rng.uniform(-3, 3, (shapes, 2)) * (width / 160)
    side = max(4, height // 6)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=int(fps))
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for i in range(max(1, int(round(seconds * fps)))):
            image = np.full((height, width, 3), 90, np.uint8)
            for colour, (x, y), (dx, dy) in zip(colours, start, speed):
                cx, cy = int(x + dx * i) % width, int(y + dy * i) % height
                image[max(0, cy - side):cy + side, max(0, cx - side):cx + side] = colour
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path
