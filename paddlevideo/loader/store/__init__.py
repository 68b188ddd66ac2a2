"""The pretraining store: LMDB shards of safe, self-describing clip records."""

from .lmdb_store import FORMAT_VERSION, PretrainStore, StoreWriter, shard_paths, verify_store
from .npy_source import NpyClips, clip_from_npy_item
from .record import Clip, decode_clip, encode_clip, top_k, validate_clip

__all__ = [
    "FORMAT_VERSION", "Clip", "NpyClips", "PretrainStore", "StoreWriter", "clip_from_npy_item", "decode_clip",
    "encode_clip", "shard_paths", "top_k", "validate_clip", "verify_store",
]
