"""Convert PaddleVideo's HowTo100M sample into the pretraining store, or verify a store.

    python tools/howto100m_to_lmdb.py data/howto100m/actbert_train_data.npy \\
        --captions data/howto100m/caption_train.json --out data/howto100m/train_store
    python tools/howto100m_to_lmdb.py --verify data/howto100m/train_store

Conversion is restartable: run the same command again after a crash and the clips
already committed are skipped (clip id = ``<image_id>#<item index>``); ``--out`` is
"create or continue", so an existing store is appended to. The store records whether
the conversion finished, and ends with a verify pass (counts, header, every record
decoded and checked); ``--verify`` of an interrupted one reports "incomplete".

The caption JSON is the reference's pool of mismatched captions. The store draws
those from its own clips, so the JSON is only checked (and can still be used by
keeping ``RandomCap.caption_path`` in the config).
"""

import argparse
import sys

if not __package__:  # run as python tools/<tool>.py: the checkout importable (tools/_path.py)
    import _path  # noqa: F401

from paddlevideo.loader.pipelines.multimodal import caption_pool  # noqa: E402
from paddlevideo.loader.store import StoreWriter, clip_from_npy_item, verify_store  # noqa: E402
from paddlevideo.loader.store.lmdb_store import DEFAULT_MAX_SHARD_BYTES, DEFAULT_TOP_K  # noqa: E402
from paddlevideo.loader.store.npy_source import load_npy_items  # noqa: E402
from paddlevideo.utils import DataError, get_logger, setup_logger  # noqa: E402
from paddlevideo.utils.errors import exit_status  # noqa: E402
from paddlevideo.utils.progress import progress_bar  # noqa: E402


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("npy", nargs="?", help="PaddleVideo's actbert_train_data.npy")
    p.add_argument("--captions", help="caption JSON (caption_train.json); checked, not copied")
    p.add_argument("--out", help="store folder to create, or an existing store to continue (new clips are "
                                 "appended); a non-empty folder that is not a store is refused")
    p.add_argument("--top_k", type=int, default=DEFAULT_TOP_K, help="classes kept per region distribution")
    p.add_argument("--renormalise", action="store_true", help="rescale kept top-k values to the original total")
    p.add_argument("--max_shard_mb", type=float, default=DEFAULT_MAX_SHARD_BYTES / 2**20, help="shard size cap")
    p.add_argument("--commit_every", type=int, default=500, help="clips per LMDB transaction")
    p.add_argument("--skip_bad", action="store_true", help="log and skip bad items instead of stopping")
    p.add_argument("--verify", metavar="STORE", help="only verify an existing store")
    p.add_argument("--no_progress", action="store_true", help="no progress bar")
    return p.parse_args(argv)


def convert(args):
    """Append every item of ``args.npy`` to the store ``args.out``; returns (added, skipped_existing, bad)."""
    log = get_logger()
    items = load_npy_items(args.npy)
    if args.captions:
        log.info("caption JSON %s: %d entries (negatives are drawn from the store's clips)",
                 args.captions, len(caption_pool(args.captions)))
    indices = progress_bar(range(len(items)), requested=not args.no_progress, desc="convert", unit="clip")
    added = existing = bad = 0
    with StoreWriter(args.out, top_k=args.top_k, renormalise=args.renormalise,
                     max_shard_bytes=int(args.max_shard_mb * 2**20), commit_every=args.commit_every) as writer:
        if writer.num_committed:
            log.info("%s holds %d clips already; continuing", args.out, writer.num_committed)
        for i in indices:
            where = f"{args.npy}: item {i}"
            try:
                image_id = items[i][6] if len(items[i]) > 6 else "?"
                clip = clip_from_npy_item(items[i], where, clip_id=f"{image_id}#{i}")
                if writer.add(clip, where):
                    added += 1
                else:
                    existing += 1
            except DataError as exc:
                if not args.skip_bad:
                    raise
                bad += 1
                log.warning("skipping %s", exc)
    return added, existing, bad


def main(argv=None):
    args = parse_args(argv)
    setup_logger(level="INFO")
    return exit_status(run, args)


def run(args):
    if args.verify:
        report = verify_store(args.verify, progress=not args.no_progress)
    else:
        if not args.npy or not args.out:
            raise DataError("give the .npy file and --out STORE (or --verify STORE)")
        added, existing, bad = convert(args)
        get_logger().info("added %d clips, %d already present, %d bad item(s) skipped", added, existing, bad)
        report = verify_store(args.out, progress=not args.no_progress)
    if report["complete"] is False:
        raise DataError(f"{args.verify or args.out}: incomplete: {report['clips']} clips so far, all good (the "
                        f"conversion did not finish; run it again to continue)")
    print(f"ok: {report['clips']} clips in {report['shards']} shard(s), {report['bytes'] / 1e6:.1f} MB, "
          f"dims {report['dims']}, top_k {report['top_k']}")


if __name__ == "__main__":
    sys.exit(main())
