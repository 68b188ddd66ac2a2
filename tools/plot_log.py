"""Plot each loss part of a training log as a PNG.

    python tools/plot_log.py output/ActBert/train.log            # -> output/ActBert/loss_curve.png
    python tools/plot_log.py train.log -o curves.png
"""

import argparse
import os
import sys

if not __package__:  # run as python tools/<tool>.py: the checkout importable (tools/_path.py)
    import _path  # noqa: F401

from paddlevideo.utils.errors import exit_status  # noqa: E402
from paddlevideo.utils.plot import plot_losses  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("log", help="a training log written by main.py (train.log)")
    parser.add_argument("-o", "--output", help="PNG path (default: loss_curve.png beside the log)")
    return exit_status(run, parser.parse_args(argv))


def run(args):
    out = args.output or os.path.join(os.path.dirname(os.path.abspath(args.log)), "loss_curve.png")
    plot_losses(args.log, out)
    print(f"wrote {out}")


if __name__ == "__main__":
    sys.exit(main())
