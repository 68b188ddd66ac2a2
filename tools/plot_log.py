"""Plot each loss part of a training log as a PNG.

    python tools/plot_log.py output/ActBert/train.log            # -> output/ActBert/loss_curve.png
    python tools/plot_log.py train.log -o curves.png
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from paddlevideo.utils.errors import ActBertError  # noqa: E402
from paddlevideo.utils.plot import plot_losses  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("log", help="a training log written by main.py (train.log)")
    parser.add_argument("-o", "--output", help="PNG path (default: loss_curve.png beside the log)")
    args = parser.parse_args(argv)
    out = args.output or os.path.join(os.path.dirname(os.path.abspath(args.log)), "loss_curve.png")
    try:
        plot_losses(args.log, out)
    except ActBertError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
