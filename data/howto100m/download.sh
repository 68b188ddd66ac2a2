#!/usr/bin/env bash
# Download PaddleVideo's released HowTo100M sample for ActBERT pretraining (run it yourself;
# nothing in this project runs it for you):
#   bash data/howto100m/download.sh [TARGET_DIR]      (default: data/howto100m)
# Files: actbert_train_data.npy (clip features, a pickled NumPy object array),
# caption_train.json, caption_val.json (caption pools), and bert-base-uncased's vocab.txt.
# Then convert the .npy into the project's LMDB store (see data/README.md):
#   python tools/howto100m_to_lmdb.py --help
set -euo pipefail
# shellcheck source=../fetch.sh
source "$(cd "$(dirname "$0")" && pwd)/../fetch.sh"

enter_target "${1:-}" "$(cd "$(dirname "$0")" && pwd)"

fetch "$BASE/actbert_train_data.npy" actbert_train_data.npy
fetch "$BASE/caption_train.json" caption_train.json
fetch "$BASE/caption_val.json" caption_val.json
fetch "$VOCAB_URL" vocab.txt

# Light checks: a readable object array of 11-field clips, JSON caption lists, a 30522-line vocab.
python - <<'PY'
import json
import numpy as np
items = np.load("actbert_train_data.npy", allow_pickle=True)
assert items.ndim == 1 and len(items[0]) == 11, "actbert_train_data.npy: expected clips of 11 fields"
for name in ("caption_train.json", "caption_val.json"):
    pool = json.load(open(name, encoding="utf-8"))
    assert isinstance(pool, list) and pool, f"{name}: expected a non-empty JSON list"
lines = sum(1 for _ in open("vocab.txt", encoding="utf-8"))
assert lines == 30522, f"vocab.txt: expected 30522 lines (bert-base-uncased), got {lines}"
print(f"ok: {len(items)} clips, {len(json.load(open('caption_train.json')))} train captions, vocab 30522")
PY
echo "done: files in $PWD"
