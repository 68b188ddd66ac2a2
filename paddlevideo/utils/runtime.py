"""Where this process runs: its rank and the world size, the process group, the device.

The one place that answers these for every entry point (training, test, scoring, logging).
"""

import os

from .errors import ConfigError


def rank_and_world():
    """(rank, world size) under ``paddle.distributed.launch``; (0, 1) for a single process.

    Read from the launcher's environment, so it answers before the process group is joined
    and in processes that never join it (the logger, the tools).
    """
    world = int(os.environ.get("PADDLE_TRAINERS_NUM", 1) or 1)
    if world <= 1:
        return 0, 1
    return int(os.environ.get("PADDLE_TRAINER_ID", os.environ.get("PADDLE_RANK_IN_NODE", 0)) or 0), world


def join_process_group():
    """(rank, world size); joins the process group (gloo on CPU, NCCL on GPU) when launched
    with several processes and not joined yet."""
    import paddle.distributed as dist

    rank, world = rank_and_world()
    if world > 1 and not dist.is_initialized():
        dist.init_parallel_env()
    return rank, world


def select_device(requested=None):
    """Set and return the device: ``requested`` (the config's ``device``: cpu, gpu, gpu:N), else a
    GPU when Paddle has CUDA and one is visible, else the CPU."""
    import paddle

    if requested:
        try:
            paddle.set_device(requested)
        except (ValueError, RuntimeError) as exc:
            raise ConfigError(f"device '{requested}' is not available: {exc}") from None
    else:
        has_gpu = paddle.is_compiled_with_cuda() and paddle.device.cuda.device_count() > 0
        paddle.set_device("gpu" if has_gpu else "cpu")
    return paddle.get_device()
