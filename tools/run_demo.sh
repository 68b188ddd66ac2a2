#!/usr/bin/env bash
# The newcomer's main job, from a fresh clone:
#   1. install the requirements (the CPU build of PaddlePaddle only when no `paddle`
#      module is importable, so a GPU machine keeps its paddlepaddle-gpu),
#   2. generate the demo corpus in data/demo/,
#   3. pretrain the small demo model on CPU (a progress bar on a terminal; the whole script
#      takes about 6 minutes on 2 CPU cores after the installs, README "Demo"),
#   4. evaluate zero-shot text-to-video retrieval on the held-out demo videos,
#   5. search those videos for one held-out caption and print the top 5.
# Environment: PYTHON (default python3), DEMO_EPOCHS (default: the config's),
# SKIP_INSTALL=1 to use the current environment as it is, DEMO_OUT (default
# output/ActBert_demo): a folder holding an earlier demo run is refused, not overwritten.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
OUT=${DEMO_OUT:-output/ActBert_demo}

if compgen -G "$OUT/ActBert_demo_*.pd*" >/dev/null || [ -e "$OUT/msrvtt_metrics.json" ]; then
    echo "error: $OUT holds an earlier demo run; remove it (rm -r $OUT) or run with DEMO_OUT=another/folder" >&2
    exit 2
fi

if [ "${SKIP_INSTALL:-0}" != 1 ]; then
    if ! "$PY" -c "import paddle" >/dev/null 2>&1; then
        echo "== installing paddlepaddle (CPU build; install paddlepaddle-gpu first for CUDA)"
        "$PY" -m pip install "paddlepaddle==3.3.1"
    fi
    "$PY" -m pip install -r requirements.txt
fi

echo "== generating the demo corpus in data/demo/"
"$PY" tools/make_demo_data.py --out data/demo

echo "== pretraining the demo model on CPU"
overrides=(-o "output_dir=$OUT")
if [ -n "${DEMO_EPOCHS:-}" ]; then overrides+=(-o "epochs=$DEMO_EPOCHS"); fi
"$PY" main.py -c configs/multimodal/actbert/actbert_demo.yaml "${overrides[@]}" --validate

echo "== zero-shot retrieval on the held-out demo videos"
"$PY" main.py --test -c configs/multimodal/actbert/actbert_msrvtt_demo.yaml \
    -w "$OUT/ActBert_demo_best.pdparams" -o "output_dir=$OUT"

echo "== text-to-video search with the demo model"
PYTHON="$PY" bash tools/demo_search.sh "$OUT" data/demo "$OUT/ActBert_demo_best.pdparams"
