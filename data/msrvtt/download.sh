#!/usr/bin/env bash
# Download PaddleVideo's released MSR-VTT test features for ActBERT retrieval (run it yourself;
# nothing in this project runs it for you):
#   bash data/msrvtt/download.sh [TARGET_DIR]         (default: data/msrvtt)
# Files: msrvtt_test.lmdb/ (from msrvtt_test.lmdb.tar: per-video region, box and action
# features as pickled dicts), MSRVTT_JSFUSION_test.csv (the 1k-A queries) and
# bert-base-uncased's vocab.txt. Evaluate with configs/multimodal/actbert/actbert_msrvtt.yaml
# and the published ActBERT.pdparams (see data/README.md).
set -euo pipefail
# shellcheck source=../fetch.sh
source "$(cd "$(dirname "$0")" && pwd)/../fetch.sh"

enter_target "${1:-}" "$(cd "$(dirname "$0")" && pwd)"

fetch "$BASE/MSRVTT_JSFUSION_test.csv" MSRVTT_JSFUSION_test.csv
fetch "$BASE/msrvtt_test.lmdb.tar" msrvtt_test.lmdb.tar
fetch "$VOCAB_URL" vocab.txt
if [ ! -s msrvtt_test.lmdb/data.mdb ]; then
    # PaddleVideo's docs use `tar -zxvf`; plain -x lets tar detect whether it is gzipped.
    tar -xf msrvtt_test.lmdb.tar
fi

# Check with the project's reader: every query's video present, one video decodes safely.
REPO=$(cd "$(dirname "$0")/../.." && pwd)
PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}" python - <<'PY'
from paddlevideo.loader.dataset.msrvtt_dataset import MSRVTTDataset
ds = MSRVTTDataset("MSRVTT_JSFUSION_test.csv", "msrvtt_test.lmdb", "vocab.txt")
v = ds.video(0)
print(f"ok: {ds.num_queries} queries, {ds.num_videos} videos; video 0: image_feat {v['image_feat'].shape}, "
      f"action_feat {v['action_feat'].shape}")
PY
echo "done: files in $PWD"
