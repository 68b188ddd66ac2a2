"""Convert a 3D-ResNets-PyTorch checkpoint (kenshohara) into a Paddle ``.pdparams``.

    python tools/convert_resnet3d.py r3d50_K_200ep.pth r3d50_K700.pdparams
    python tools/convert_resnet3d.py r3d18_K_200ep.pth r3d18_K700.pdparams --depth 18

SOURCE is the repository's ``.pth`` (a dict holding ``state_dict``, or a bare state dict;
``module.`` prefixes of DataParallel runs are dropped; read without torch and without running
its pickle, ``paddlevideo.utils.torch_file``) or an ``.npz`` of the same torch names. The model
it must fit is given by ``--depth`` (50), ``--n_classes`` (700), ``--widen_factor`` (1.0),
``--conv1_t_size`` (7), ``--conv1_t_stride`` (1), ``--no_max_pool``, ``--shortcut_type`` (B):
the defaults are Kinetics-700's ``r3d50_K_200ep.pth``. A checkpoint of another depth, width or
model is refused with one line naming a key and both shapes. These settings are recorded in
OUTPUT (``conv1_t_stride`` and ``no_max_pool`` leave no trace in the weights), so that loading
it uses them and refuses a config that contradicts them.

Renaming: BatchNorm ``running_mean``/``running_var`` -> ``_mean``/``_variance``,
``num_batches_tracked`` dropped, ``fc.weight`` transposed to Paddle's [in, out]; every
other name and layout (Conv3d [out, in, t, h, w]) is the same.
"""

import argparse
import os
import sys

import numpy as np

if not __package__:  # run as python tools/<tool>.py: the checkout importable (tools/_path.py)
    import _path  # noqa: F401

from paddlevideo.utils.errors import WeightsError, exit_status  # noqa: E402

RENAMES = ((".running_mean", "._mean"), (".running_var", "._variance"))


def read_torch_state(path):
    """{torch name: np.ndarray} of a ``.pth``/``.pt`` (read without torch) or ``.npz``; every
    floating-point tensor checked finite."""
    from paddlevideo.utils.conversion import check_finite, read_npz
    from paddlevideo.utils.torch_file import torch_state_dict

    path = str(path)
    if not os.path.isfile(path):
        raise WeightsError(f"checkpoint not found: {path}")
    return check_finite(read_npz(path) if path.endswith(".npz") else torch_state_dict(path), path)


def to_paddle(state):
    """Torch names/layouts -> Paddle's (see the module docstring)."""
    out = {}
    for name, array in state.items():
        if name.startswith("module."):
            name = name[len("module."):]
        if name.endswith(".num_batches_tracked"):
            continue
        for old, new in RENAMES:
            if name.endswith(old):
                name = name[: -len(old)] + new
        array = np.asarray(array)
        if name == "fc.weight":
            array = array.T
        out[name] = np.ascontiguousarray(array, dtype=np.float32)
    return out


def convert(source, output, **config):
    """Read ``source``, check it against ResNet3D(**config), write ``output``; returns the model."""
    import paddle

    from paddlevideo.modeling.extractors import recorded
    from paddlevideo.modeling.extractors.resnet3d import ResNet3D, resnet3d_config
    from paddlevideo.modeling.weights import _assign, match_state
    from paddlevideo.utils.conversion import check_outputs, write_atomically
    from paddlevideo.utils.errors import ConfigError

    check_outputs([output], [source])
    state = to_paddle(read_torch_state(source))
    model = ResNet3D(**config)
    what = (f"{source} (for a 3D ResNet-{model.depth}, widen {config.get('widen_factor', 1.0):g}, "
            f"{model.n_classes} classes)")
    try:
        guess = resnet3d_config({k: v.shape for k, v in state.items()})
        hint = (f" (the file looks like depth {guess['depth']}, widen {guess['widen_factor']:g}, "
                f"{guess['n_classes']} classes: pass --depth/--widen_factor/--n_classes)")
    except ConfigError:
        hint = " (not a 3D ResNet checkpoint)"
    try:
        arrays, report = match_state(model, state, what, allow_scratch=False)
    except WeightsError as exc:
        raise WeightsError(f"{exc}{hint}") from None
    if report.unexpected:
        key = report.unexpected[0]
        raise WeightsError(f"{what} does not fit the model: {len(report.unexpected)} unexpected key(s), first "
                           f"'{key}' file {list(state[key].shape)} vs model none{hint}")
    _assign(model, arrays)
    unrevealed = {k: config[k] for k in recorded.RESNET3D_SETTINGS if k in config}
    state = recorded.record(dict(model.state_dict()), "resnet3d", unrevealed)
    write_atomically(output, lambda tmp: paddle.save(state, tmp))
    return model


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("source", help="kenshohara .pth checkpoint, or an .npz of its state dict")
    p.add_argument("output", help="the .pdparams to write")
    p.add_argument("--depth", type=int, default=50)
    p.add_argument("--n_classes", type=int, default=700)
    p.add_argument("--widen_factor", type=float, default=1.0)
    p.add_argument("--conv1_t_size", type=int, default=7)
    p.add_argument("--conv1_t_stride", type=int, default=1)
    p.add_argument("--no_max_pool", action="store_true", help="the model has no max-pool after conv1")
    p.add_argument("--shortcut_type", default="B", choices=("A", "B"))
    return exit_status(run, p.parse_args(argv))


def run(args):
    config = {k: getattr(args, k) for k in ("depth", "n_classes", "widen_factor", "conv1_t_size", "conv1_t_stride",
                                            "no_max_pool", "shortcut_type")}
    model = convert(args.source, args.output, **config)
    print(f"wrote {len(model.state_dict())} tensors of a 3D ResNet-{model.depth} ({model.feature_dim}-d features, "
          f"{model.n_classes} classes) to {args.output}")


if __name__ == "__main__":
    sys.exit(main())
