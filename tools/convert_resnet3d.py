"""Convert a 3D-ResNets-PyTorch checkpoint (kenshohara) into a Paddle ``.pdparams``.

    python tools/convert_resnet3d.py r3d50_K_200ep.pth r3d50_K700.pdparams
    python tools/convert_resnet3d.py r3d18_K_200ep.pth r3d18_K700.pdparams --depth 18

SOURCE is the repository's ``.pth`` (a dict holding ``state_dict``, or a bare state dict;
``module.`` prefixes of DataParallel runs are dropped; reading it needs torch) or an
``.npz`` of the same torch names (no torch needed). The model it must fit is given by
``--depth`` (50), ``--n_classes`` (700), ``--widen_factor`` (1.0), ``--conv1_t_size`` (7),
``--shortcut_type`` (B): the defaults are Kinetics-700's ``r3d50_K_200ep.pth``. A checkpoint
of another depth, width or model is refused with one line naming a key and both shapes.

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
    """{torch name: np.ndarray} of a ``.pth``/``.pt`` (torch imported here only) or ``.npz``."""
    path = str(path)
    if not os.path.isfile(path):
        raise WeightsError(f"checkpoint not found: {path}")
    if path.endswith(".npz"):
        try:
            with np.load(path) as data:
                return {k: data[k] for k in data.files}
        except (OSError, ValueError) as exc:
            raise WeightsError(f"{path} is not a readable .npz ({exc})") from None
    try:
        import torch
    except ImportError:
        raise WeightsError(f"reading {path} needs PyTorch (pip install torch), or give an .npz of its "
                           "state dict") from None
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types on foreign files
        raise WeightsError(f"{path} is not a PyTorch checkpoint ({type(exc).__name__}: {exc})") from None
    if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or not all(hasattr(v, "numpy") for v in obj.values()):
        raise WeightsError(f"{path}: expected a state dict or a checkpoint dict with 'state_dict'")
    return {k: v.detach().cpu().numpy() for k, v in obj.items()}


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

    from paddlevideo.modeling.extractors.resnet3d import ResNet3D, resnet3d_config
    from paddlevideo.modeling.weights import _assign, match_state
    from paddlevideo.utils.errors import ConfigError

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
    paddle.save(model.state_dict(), str(output))
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
    p.add_argument("--shortcut_type", default="B", choices=("A", "B"))
    return exit_status(run, p.parse_args(argv))


def run(args):
    config = {k: getattr(args, k) for k in ("depth", "n_classes", "widen_factor", "conv1_t_size", "conv1_t_stride",
                                            "shortcut_type")}
    model = convert(args.source, args.output, **config)
    print(f"wrote {len(model.state_dict())} tensors of a 3D ResNet-{model.depth} ({model.feature_dim}-d features, "
          f"{model.n_classes} classes) to {args.output}")


if __name__ == "__main__":
    sys.exit(main())
