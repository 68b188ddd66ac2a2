#!/usr/bin/env bash
# The demo's last step: search the held-out demo videos for one held-out caption and print
# the top 5. The caption is the first test query that the evaluation (main.py --test, which
# wrote <output>/msrvtt_ranks_t2v.csv) ranked right, so the right video is expected first.
#   bash tools/demo_search.sh OUTPUT_DIR DATA_DIR CHECKPOINT
# Environment: PYTHON (default python3).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
OUT=$1 DATA=$2 WEIGHTS=$3

pick=$("$PY" - "$OUT/msrvtt_ranks_t2v.csv" <<'PYEOF'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1], encoding="utf-8")))
row = next((r for r in rows if r["rank"] == "1"), rows[0])
print(row["video_id"])
print(row["caption"])
PYEOF
)
EXPECTED=$(printf '%s\n' "$pick" | sed -n 1p)
CAPTION=$(printf '%s\n' "$pick" | sed -n 2p)

echo "== searching the ${DATA} test videos for \"$CAPTION\" (it describes $EXPECTED)"
"$PY" tools/search.py -c configs/multimodal/actbert/actbert_msrvtt_demo.yaml -w "$WEIGHTS" \
    --override "DATASET.test.vocab_file=$DATA/vocab.txt" --videos "$DATA/msrvtt_test.lmdb" \
    --query "$CAPTION" --top 5 --json "$OUT/search_results.json" --no-progress
