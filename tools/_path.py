"""``python tools/<tool>.py`` from a checkout: the checkout's root on ``sys.path``.

Run as a script, a tool has its own folder (tools/) first on ``sys.path``, so the package
beside it is not importable. Each tool imports this module first when it runs without a
package (``__package__`` empty); ``python -m tools.<tool>`` and imports as ``tools.<tool>``
(tests) do not need it. It is the one place the tools touch ``sys.path``.
"""

import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)
