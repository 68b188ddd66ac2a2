"""Checkpoints: PaddleVideo's file names, atomic writes, and a resume checkpoint.

Files in ``output_dir``:
- ``{model_name}_epoch_{e:05d}.pdparams`` / ``.pdopt``: model / optimiser state after
  epoch ``e`` (PaddleVideo's names; the weights load with ``-w``, both with ``resume_epoch``);
- ``{model_name}_best.pdparams``: the model with the best validation metric;
- ``{model_name}_resume.pdckpt``: everything ``--resume`` needs to continue exactly
  (model, optimiser with its schedule, loss scaler, epoch, step, RNG states of python,
  numpy and paddle for every rank, and the data sampler's position).

Every file is written by ``outfile.atomic_path``: to a unique temporary name in the same
directory, flushed to disk and renamed over the target; the rename is atomic, so a crash
or ``kill -9`` leaves either the previous file or the new one, never a torn one.
"""

import functools
import os
import random
import shutil

import numpy as np
import paddle

from .errors import ActBertError, ConfigError, WeightsError
from .outfile import atomic_path, remove_stale_temporaries

RESUME_FORMAT = "actbert-resume-v1"


class CheckpointError(ActBertError, OSError):
    """A checkpoint could not be written (disk full, no permission, I/O error)."""


def atomic_save(obj, path):
    """``paddle.save(obj, path)`` that never leaves a partial file at ``path`` (``atomic_path``).

    A failed write (disk full, quota, I/O error) raises ``CheckpointError`` naming the
    file and the free space, and leaves the previous file at ``path`` as it was. After
    a successful write, temporary files of the same target left by killed processes
    (``{path}.tmp<pid>…`` of a pid no longer running) are removed.
    """
    try:
        with atomic_path(path) as tmp:
            paddle.save(obj, tmp)
    except OSError as exc:
        raise CheckpointError(f"cannot write checkpoint {path}: {exc.strerror or exc} "
                              f"({_free_space(path)} free in {os.path.dirname(path) or '.'}); "
                              f"the previous {os.path.basename(path)}, if any, is kept") from None
    remove_stale_temporaries(path)


def _free_space(path):
    try:
        free = shutil.disk_usage(os.path.dirname(os.path.abspath(path))).free
    except OSError:
        return "unknown space"
    return f"{free / 2**20:.1f} MiB"


def check_file(path, flag):
    """Raise WeightsError unless ``path`` (given with the command-line ``flag``) is a file."""
    if os.path.isdir(path):
        raise WeightsError(f"{flag} {path}: is a directory; give a checkpoint file (e.g. a .pdparams)")
    if not os.path.isfile(path):
        raise WeightsError(f"{flag} {path}: file not found")


def epoch_paths(output_dir, model_name, epoch):
    """(``.pdparams``, ``.pdopt``) paths of the checkpoint of ``epoch`` (1-based)."""
    stem = os.path.join(output_dir, f"{model_name}_epoch_{epoch:05d}")
    return stem + ".pdparams", stem + ".pdopt"


def best_path(output_dir, model_name):
    return os.path.join(output_dir, f"{model_name}_best.pdparams")


def resume_path(output_dir, model_name):
    return os.path.join(output_dir, f"{model_name}_resume.pdckpt")


def save_epoch(model, optimizer, output_dir, model_name, epoch):
    params, opt = epoch_paths(output_dir, model_name, epoch)
    atomic_save(model.state_dict(), params)
    atomic_save(portable_optimizer_state(optimizer, model), opt)  # structured names: see load_epoch


def save_best(model, output_dir, model_name):
    atomic_save(model.state_dict(), best_path(output_dir, model_name))


def capture_rng():
    """This process's python, numpy and paddle random states (CPU, and GPU if used)."""
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "paddle_cpu": paddle.get_rng_state("cpu")}
    if paddle.device.get_device().startswith("gpu"):
        state["paddle_device"] = paddle.get_rng_state()
    return state


def restore_rng(state):
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    paddle.set_rng_state(state["paddle_cpu"], "cpu")
    if "paddle_device" in state and paddle.device.get_device().startswith("gpu"):
        paddle.set_rng_state(state["paddle_device"])


def save_resume(path, state):
    """Write a resume checkpoint (``state`` as built by the trainer) atomically."""
    atomic_save(dict(state, format=RESUME_FORMAT), path)


def load_resume(path):
    """Read a resume checkpoint, or raise WeightsError saying what ``path`` is instead."""
    if os.path.isdir(path):
        raise WeightsError(f"--resume {path}: is a directory; give a *_resume.pdckpt file")
    if not os.path.isfile(path):
        raise WeightsError(f"--resume: no checkpoint file at {path}")
    state = _load(path, "--resume")
    if not isinstance(state, dict) or state.get("format") != RESUME_FORMAT:
        raise WeightsError(
            f"--resume: {path} is not a resume checkpoint (expected a *_resume.pdckpt written by training; "
            f"use -w for .pdparams weights)"
        )
    return state


def check_state_dict(model, state, source):
    """Raise WeightsError unless ``state`` has exactly ``model``'s parameter names and shapes."""
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    if missing or unexpected:
        raise WeightsError(
            f"{source} does not fit the model: {len(missing)} missing keys (e.g. {missing[:3]}), "
            f"{len(unexpected)} unexpected keys (e.g. {unexpected[:3]})"
        )
    for key, value in own.items():
        if list(value.shape) != list(state[key].shape):
            raise WeightsError(
                f"{source} does not fit the model: '{key}' has shape {list(state[key].shape)}, "
                f"model expects {list(value.shape)}"
            )


def check_writable(output_dir):
    """Raise ConfigError unless ``output_dir`` can be created and written to."""
    try:
        os.makedirs(output_dir, exist_ok=True)
        probe = os.path.join(output_dir, f".write_test{os.getpid()}")
        with open(probe, "w") as f:
            f.write("ok")
        os.remove(probe)
    except OSError as exc:
        raise ConfigError(f"output_dir {output_dir} is not writable: {exc.strerror or exc}") from None


def _parameter_of(key, names):
    """The parameter name in ``names`` that optimiser-state ``key`` is (the master weight) or
    starts as (``{name}_{accumulator}``), the longest if several ('fc_1.w_0' before 'fc_1.w');
    None if none."""
    if key in names:
        return key
    for i in range(len(key) - 1, 0, -1):
        if key[i] == "_" and key[:i] in names:
            return key[:i]
    return None


def _rename_keys(state, mapping):
    """Rename ``state``'s keys ``{old}_{suffix}`` (and master-weight keys) by ``mapping`` old -> new."""

    def rename(key):
        old = _parameter_of(key, mapping)
        return key if old is None else mapping[old] + key[len(old):]

    out = {}
    for key, value in state.items():
        out[rename(key)] = {rename(k): v for k, v in value.items()} if key == "master_weights" else value
    return out


def portable_optimizer_state(optimizer, model):
    """The optimiser state keyed by parameter *structured* names (``fc.weight_moment1_0``).

    Paddle keys optimiser state by internal parameter names (``linear_3.w_0``), which
    depend on how many layers the process created before; structured names do not, so
    the state loads into a model built in another process or a second time in this one.
    """
    return _rename_keys(optimizer.state_dict(), {p.name: n for n, p in model.named_parameters()})


def load_epoch(model, optimizer, output_dir, model_name, epoch):
    """Load ``{model_name}_epoch_{epoch:05d}.pdparams`` / ``.pdopt`` (PaddleVideo's
    ``resume_epoch``) into ``model`` and ``optimizer`` (with its learning-rate schedule).

    This project writes the optimiser state keyed by structured parameter names
    (``backbone.bert….weight_moment1_0``), which hold in any process. PaddleVideo keys it by
    Paddle's internal names (``linear_3.w_0_moment1_0``), which depend on the order the program
    created its layers: such a file loads only if they all name parameters of this model as
    built here; otherwise it is refused rather than half-applied.
    """
    params_path, opt_path = epoch_paths(output_dir, model_name, epoch)
    where = f"resume_epoch={epoch}"
    for path in (params_path, opt_path):
        if not os.path.isfile(path):
            raise WeightsError(f"{where}: {path} not found (save_interval must have saved that epoch; "
                               f"--resume {resume_path(output_dir, model_name)} continues from the last save)")
    params = _load(params_path, where)
    check_state_dict(model, params, f"{where} ({params_path})")
    state = _load(opt_path, where)
    internal = {p.name for p in model.parameters()}
    structured = {n for n, _ in model.named_parameters()}
    keys = [k for k in state if k not in ("LR_Scheduler", "master_weights")]
    if keys and all(_parameter_of(k, internal) for k in keys):
        load_optimizer = optimizer.set_state_dict
    elif keys and all(_parameter_of(k, structured) for k in keys):
        load_optimizer = functools.partial(load_portable_optimizer_state, optimizer, model)
    else:
        unknown = next((k for k in keys if not _parameter_of(k, internal) and not _parameter_of(k, structured)),
                       "(no parameter state)")
        raise WeightsError(f"{where}: {opt_path} does not fit this model's optimiser (entry '{unknown}' names no "
                           "parameter of it; written by another program?). Start without resume_epoch, or use "
                           "-w with the .pdparams to keep only the weights")
    model.set_state_dict(params)
    load_optimizer(state)


def _load(path, where):
    """``paddle.load(path)``; a file it cannot parse is a WeightsError naming ``where`` it came from."""
    try:
        return paddle.load(path)
    except Exception as exc:  # paddle raises assorted types for a file it cannot parse
        raise WeightsError(f"{where}: {path} is not a readable checkpoint ({type(exc).__name__}: {exc})") from None


def load_portable_optimizer_state(optimizer, model, state):
    optimizer.set_state_dict(_rename_keys(state, {n: p.name for n, p in model.named_parameters()}))
