"""Which frames a clip needs (detector frames, action windows) and one decoding pass to get them."""

import os
from dataclasses import dataclass, field

from ..utils.errors import DataError
from .inputs import ClipSpec

WINDOW_FRAMES = 16  # frames per action window (the 3D ResNet's input length)
TRUNCATED_SLACK = 0.5  # seconds of declared duration without frames tolerated at a video's end


@dataclass
class ClipFrames:
    """Frames gathered for one clip: the detector's frames and the action windows (preprocessed)."""

    spec: ClipSpec
    region_times: list
    window_times: list  # per window, WINDOW_FRAMES target times
    region: list = field(default_factory=list)  # uint8 [H, W, 3]
    windows: list = field(default_factory=list)  # per window, list of uint8 frames


def plan_clip(spec, fps, region_frames, max_actions):
    """The frame times (seconds) one clip needs, all inside [start, end).

    ``region_frames`` detector frames at the centres of equal parts of the clip, and n =
    frames // 16 action windows (1 to ``max_actions``) of 16 consecutive frames at the
    video's rate, one centred in each of n equal parts; a window that would run past the end
    is moved back to end with the clip, and a clip shorter than 16 frames gets only its own
    frames (``finish_windows`` loop-pads them to 16), never the next clip's.
    """
    length = spec.end - spec.start
    n_frames = max(1, int(round(length * fps)))
    regions = [spec.start + (k + 0.5) * length / region_frames for k in range(region_frames)]
    n_windows = max(1, min(max_actions, n_frames // WINDOW_FRAMES))
    span = WINDOW_FRAMES / fps
    windows = []
    for k in range(n_windows):
        centre = spec.start + (k + 0.5) * length / n_windows
        first = max(spec.start, min(centre - span / 2, spec.end - span))
        times = [first + j / fps for j in range(WINDOW_FRAMES)]
        windows.append([t for t in times if t < spec.end] or times[:1])
    return ClipFrames(spec, regions, windows)


def open_video(path):
    """(container, stream, fps, duration s) of a video file; DataError if it is not a usable video."""
    import av

    if not os.path.isfile(path):
        raise DataError(f"{path}: file not found")
    if os.path.getsize(path) == 0:
        raise DataError(f"{path}: empty file (0 bytes)")
    try:
        container = av.open(path)
    except (av.error.FFmpegError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: not a readable video ({exc})") from None
    if not container.streams.video:
        container.close()
        raise DataError(f"{path}: holds no video stream")
    stream = container.streams.video[0]
    stream.thread_type = "AUTO"
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    fps = float(rate) if rate else 0.0
    if stream.duration is not None and stream.time_base is not None:
        duration = float(stream.duration * stream.time_base)
    elif container.duration is not None:
        duration = container.duration / 1e6
    else:
        duration = 0.0
    if not fps > 0:
        container.close()
        raise DataError(f"{path}: no frame rate in the video stream")
    if stream.frames and stream.frames < 2 or 0 < duration < 1.5 / fps:
        container.close()
        raise DataError(f"{path}: a single frame, not a video")
    return container, stream, fps, duration


def decode_clips(path, plans, fps):
    """Fill ``plans`` (ClipFrames, sorted by start) from one pass over the video.

    A request for time t takes the first frame whose timestamp is >= t - half a frame.
    Returns the number of decoded frames. Frames are kept only where requested. DataError if
    decoding fails or the file is cut short (``_cut_short``).
    """
    import av

    requests = []  # (time, plan index, kind, window, slot)
    for p, plan in enumerate(plans):
        for slot, t in enumerate(plan.region_times):
            requests.append((t, p, "r", 0, slot))
        plan.windows = [[None] * WINDOW_FRAMES for _ in plan.window_times]
        plan.region = [None] * len(plan.region_times)
        for w, times in enumerate(plan.window_times):
            for slot, t in enumerate(times):
                requests.append((t, p, "a", w, slot))
    requests.sort(key=lambda r: r[0])
    half = 0.5 / fps
    container, stream, _, duration = open_video(path)
    decoded, pointer, last, seeked = 0, 0, None, False
    try:
        first = requests[0][0] if requests else 0.0
        seeked = bool(first > 2.0 and stream.time_base)
        if seeked:
            container.seek(int((first - 1.0) / stream.time_base), stream=stream, backward=True)
        start_time = float(stream.start_time * stream.time_base) if stream.start_time is not None else 0.0
        for frame in container.decode(stream):
            decoded += 1
            t = (float(frame.pts * stream.time_base) - start_time) if frame.pts is not None else decoded / fps
            last = t
            if pointer < len(requests) and requests[pointer][0] <= t + half:
                image = frame.to_ndarray(format="rgb24")
                while pointer < len(requests) and requests[pointer][0] <= t + half:
                    _, p, kind, w, slot = requests[pointer]
                    if kind == "r":
                        plans[p].region[slot] = image
                    else:
                        plans[p].windows[w][slot] = image
                    pointer += 1
            if pointer >= len(requests):
                break
    except av.error.FFmpegError as exc:
        raise DataError(f"{path}: decoding failed after {decoded} frame(s) ({exc})") from None
    finally:
        container.close()
    if pointer < len(requests) and last is not None and _cut_short(stream, decoded, seeked, last, duration, fps):
        raise DataError(f"{path}: truncated: its frames end at {last:.2f} s of the {duration:.2f} s its header "
                        "declares (an interrupted download or copy?)")
    return decoded


def _cut_short(stream, decoded, seeked, last, duration, fps):
    """Whether frames ran out well before the end the header declares: a file cut short is
    refused rather than extracted as if whole. When the pass started at the first frame, the
    header's frame count must also be short of it: a variable-rate video may hold its last
    frame for seconds, and an edit list may drop a few frames, without anything missing."""
    gap = duration - last > TRUNCATED_SLACK + 2 / fps
    if stream.frames and not seeked:
        return gap and decoded < stream.frames
    return gap


def finish_windows(plan):
    """Drop missing frames: region frames past the end go, an action window is loop-padded
    from its frames (as the public loader pads short clips); empty windows go."""
    plan.region = [f for f in plan.region if f is not None]
    windows = []
    for frames in plan.windows:
        got = [f for f in frames if f is not None]
        if got:
            windows.append([got[j % len(got)] for j in range(WINDOW_FRAMES)])
    plan.windows = windows
    return bool(plan.region) and bool(plan.windows)
