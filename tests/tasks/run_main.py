"""``main.py`` with the test stand-ins registered: ``python tests/tasks/run_main.py -c ...``."""

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.dirname(os.path.dirname(HERE))]

import main  # noqa: E402  (stdlib only: Paddle is imported by main.main after the thread set-up)

if __name__ == "__main__":
    args = main.parse_args(sys.argv[1:])
    main.set_cpu_threads(main._configured_threads(args))
    import standin  # noqa: F401,E402  (registers TinyPretrain, TinyNoisyDataset)

    sys.exit(main.main(sys.argv[1:]))
