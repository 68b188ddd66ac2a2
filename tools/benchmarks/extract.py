"""Feature extraction throughput on this machine, full-width models with random weights.

    OMP_NUM_THREADS=2 MKL_DEBUG_CPU_TYPE=5 python tools/benchmark.py extract [--rounds 3] [--det-images 2]

- decode: frames/s of PyAV, decord and OpenCV (those installed) on the same synthetic H.264
  video (640x360, 30 fps, 10 s), every frame converted to RGB; sides alternate round by
  round, median of the rounds; the ratio is to PyAV (the decoder tools/extract_features.py uses);
- detector: images/s of the VG Faster R-CNN (R101-C4, 2048-d) on 360x640 frames (resized to
  600x1067 -> capped 563x1000), FLOPs per image (``bench_detector``);
- 3D CNN: clips/s of the 3D ResNet-50 (Kinetics-700 layout) on batches of 16x112x112 windows,
  FLOPs per window (convolutions and fc, multiply-add = 2);
- pipeline: clips/s of ``tools/extract_features.py``'s per-video path (decode, 3 detector
  frames, action windows, selection) on a synthetic 640x360 video cut into 4 s clips (one by
  default: the full-width detector takes minutes per image on 2 CPU cores; 7 windows -> 5 kept);
- FLOPs per clip and estimates for one GPU and for HowTo100M's 136M clips (assumed sustained
  rate, printed with the figures).
"""

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import paddle
import paddle.nn as nn

from paddlevideo.extraction.inputs import VideoJob
from paddlevideo.extraction.pipeline import ExtractionSettings, Extractor
from paddlevideo.loader.store.synthetic import write_video
from paddlevideo.modeling.extractors.frcnn_vg import FRCNNVG, bench_detector, random_init
from paddlevideo.modeling.extractors.resnet3d import ResNet3D

HOWTO100M_CLIPS = 136e6
GPU_TFLOPS = 7.5  # assumed sustained fp32 rate of a V100-class GPU on convolutions (as the eval estimate)


def _pyav(path):
    import av

    with av.open(str(path)) as c:
        s = c.streams.video[0]
        s.thread_type = "AUTO"
        return sum(1 for f in c.decode(s) if f.to_ndarray(format="rgb24") is not None)


def _decord(path):
    import decord

    vr = decord.VideoReader(str(path), num_threads=2)
    n = 0
    for i in range(len(vr)):
        vr[i].asnumpy()
        n += 1
    return n


def _opencv(path):
    import cv2

    cap = cv2.VideoCapture(str(path))
    n = 0
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
        n += 1
    cap.release()
    return n


def bench_decode(path, rounds):
    sides = {}
    for name, fn, module in (("PyAV", _pyav, "av"), ("decord", _decord, "decord"), ("OpenCV", _opencv, "cv2")):
        try:
            __import__(module)
            sides[name] = fn
        except ImportError:
            package = "opencv-python-headless" if module == "cv2" else module
            print(f"decode: {name} not installed (pip install {package})")
    rates = {name: [] for name in sides}
    for _ in range(rounds):
        for name, fn in sides.items():
            start = time.perf_counter()
            n = fn(path)
            rates[name].append(n / (time.perf_counter() - start))
    return {name: statistics.median(r) for name, r in rates.items()}


def conv3d_flops(model, clip_shape):
    macs = [0]

    def hook(layer, inputs, output):
        if isinstance(layer, nn.Conv3D):
            macs[0] += int(np.prod(output.shape)) * int(np.prod(layer.weight.shape[1:]))
        elif isinstance(layer, nn.Linear):
            macs[0] += int(np.prod(output.shape)) * int(layer.weight.shape[0])

    handles = [m.register_forward_post_hook(hook) for m in model.sublayers() if isinstance(m, (nn.Conv3D, nn.Linear))]
    with paddle.no_grad():
        model(paddle.zeros([1, *clip_shape]))
    for h in handles:
        h.remove()
    return 2 * macs[0]


def bench_action(batch, rounds):
    paddle.seed(0)
    model = ResNet3D(depth=50, n_classes=700)
    model.eval()
    flops = conv3d_flops(model, (3, 16, 112, 112))
    x = paddle.rand([batch, 3, 16, 112, 112])
    with paddle.no_grad():
        model(x)  # warm-up
        times = []
        for _ in range(rounds):
            start = time.perf_counter()
            model(x)
            times.append(time.perf_counter() - start)
    return batch / statistics.median(times), flops, model


def bench_pipeline(folder, detector, action_model, seconds=4.0, window=4.0):
    video = write_video(folder / "pipeline.mp4", seconds=seconds, fps=30, height=360, width=640, seed=1)
    settings = ExtractionSettings(inputs=[str(video)], out="-", detector_weights="-", action_weights="-",
                                  window=window, batch_size=4, detector_batch=3)
    extractor = Extractor(detector, action_model, settings)
    start = time.perf_counter()
    clips = extractor.video(VideoJob(str(video)))
    elapsed = time.perf_counter() - start
    return len(clips) / elapsed, len(clips), sum(c.n_actions for c in clips) / len(clips)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--det-images", type=int, default=2, help="detector images timed (after one warm-up)")
    p.add_argument("--action-batch", type=int, default=4)
    p.add_argument("--pipeline-seconds", type=float, default=4.0, help="length of the pipeline's video (4 s clips)")
    p.add_argument("--skip-pipeline", action="store_true")
    args = p.parse_args(argv)
    paddle.set_device("cpu")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        video = write_video(tmp / "decode.mp4", seconds=10, fps=30, height=360, width=640, seed=0)
        decode = bench_decode(video, args.rounds)
        for name, rate in decode.items():
            print(f"decode {name:7s}: {rate:8.1f} frames/s (640x360 H.264, RGB out; {rate / decode['PyAV']:.2f}x PyAV)")
        det = bench_detector(n_images=args.det_images, image_hw=(360, 640), batch_size=1, warmup=1)
        print(f"detector: {det['images_per_s']:.3f} images/s ({det['seconds'] / det['images']:.2f} s/image), "
              f"{det['gflops_per_image']:.1f} GFLOP/image, input {det['image_hw']} -> {det['resized_hw']}, "
              f"{det['boxes_per_image']} boxes, {det['feature_dim']}-d")
        act_rate, act_flops, action_model = bench_action(args.action_batch, args.rounds)
        print(f"3D ResNet-50: {act_rate:.2f} windows/s (batch {args.action_batch}), "
              f"{act_flops / 1e9:.1f} GFLOP per 16x112x112 window")
        windows = 5  # a 4 s clip at 30 fps: 120 frames // 16 = 7, at most 5
        clip_flops = 3 * det["gflops_per_image"] * 1e9 + windows * act_flops
        print(f"FLOPs per clip (3 detector frames + {windows} action windows): {clip_flops / 1e9:.0f} GFLOP "
              f"(detector {3 * det['gflops_per_image']:.0f}, actions {windows * act_flops / 1e9:.0f})")
        if not args.skip_pipeline:
            paddle.seed(0)
            detector = FRCNNVG.from_config(None)
            random_init(detector, seed=0)
            detector.eval()
            rate, n, acts = bench_pipeline(tmp, detector, action_model, seconds=args.pipeline_seconds)
            print(f"pipeline: {rate:.5f} clips/s on this CPU ({1 / rate:.0f} s per clip; {n} clip(s) of 4 s, "
                  f"{acts:.1f} action windows each)")
        gpu_rate = GPU_TFLOPS * 1e12 / clip_flops
        print(f"estimate, one GPU at {GPU_TFLOPS} TFLOP/s sustained: {gpu_rate:.1f} clips/s (compute only; it needs "
              f"~{gpu_rate * 120 / max(decode['PyAV'], 1):.1f} decoding processes at the rate above, "
              "120 frames a clip), "
              f"HowTo100M 136M clips: {HOWTO100M_CLIPS / gpu_rate / 86400:.0f} GPU-days "
              f"({HOWTO100M_CLIPS / gpu_rate / 86400 / 8:.0f} days on 8 GPUs)")
    return 0
