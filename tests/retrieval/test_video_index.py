"""The first stage's video index: exact and approximate kinds, the cached file's round trip,
its invalidation and the refusal of files that are not ours."""

import numpy as np
import pytest

from paddlevideo.retrieval.index import (
    IndexSettings,
    build_index,
    index_fingerprint,
    index_kind,
    load_or_build,
    search_index,
)
from paddlevideo.utils.errors import ConfigError, DataError


def unit_vectors(count, dim=16, seed=0):
    x = np.random.default_rng(seed).normal(size=(count, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_flat_index_is_exact_inner_product():
    videos, queries = unit_vectors(50), unit_vectors(4, seed=1)
    scores, ids = search_index(build_index(videos), queries, 7)
    want = np.argsort(-(queries @ videos.T), axis=1, kind="stable")[:, :7]
    np.testing.assert_array_equal(ids, want)
    np.testing.assert_allclose(scores, np.take_along_axis(queries @ videos.T, want, 1), atol=1e-5)
    # N beyond the collection: every video once, no -1 padding.
    _, ids = search_index(build_index(videos), queries, 80)
    assert ids.shape == (4, 50) and sorted(ids[0]) == list(range(50))


def test_hnsw_above_the_threshold_finds_nearly_all_of_the_exact_top():
    settings = IndexSettings(approximate_above=100)
    assert index_kind(99, settings) == "flat" and index_kind(100, settings) == "hnsw"
    videos, queries = unit_vectors(400), unit_vectors(10, seed=1)
    index = build_index(videos, settings)
    assert hasattr(index, "hnsw")
    _, ids = search_index(index, queries, 20, settings)
    exact = np.argsort(-(queries @ videos.T), axis=1)[:, :20]
    recall = np.mean([len(np.intersect1d(a, b)) / 20 for a, b in zip(ids, exact)])
    assert recall >= 0.95


def test_cache_round_trip_and_invalidation(tmp_path):
    path, videos = tmp_path / "index.npz", unit_vectors(30)
    calls = []

    def vectors():
        calls.append(1)
        return videos

    settings = IndexSettings()
    key = index_fingerprint("stage-a", "collection-1", settings)
    index, t = load_or_build(path, key, vectors, 30, settings)
    assert len(calls) == 1 and t["build_index"] > 0 and path.exists()
    again, t = load_or_build(path, key, vectors, 30, settings)  # read, not built
    assert len(calls) == 1 and t["build_index"] == 0
    queries = unit_vectors(3, seed=2)
    np.testing.assert_array_equal(search_index(again, queries, 5)[1], search_index(index, queries, 5)[1])
    # Another first stage, collection or settings: another fingerprint, so rebuilt and replaced.
    keys = {index_fingerprint("stage-b", "collection-1", settings),
            index_fingerprint("stage-a", "collection-2", settings),
            index_fingerprint("stage-a", "collection-1", IndexSettings(hnsw_m=16))}
    assert key not in keys and len(keys) == 3
    for n, other in enumerate(sorted(keys), start=2):
        load_or_build(path, other, vectors, 30, settings)
        assert len(calls) == n
    load_or_build(path, other, vectors, 29, settings)  # the same key but another count: rebuilt
    assert len(calls) == 5


@pytest.mark.parametrize("content", [b"a checkpoint, not an index", "npz-without-marker", "truncated"])
def test_a_file_that_is_not_our_index_is_refused_and_left_untouched(tmp_path, content):
    path = tmp_path / "index.npz"
    if content == "npz-without-marker":
        np.savez(path, index=np.zeros(3))
    elif content == "truncated":
        load_or_build(path, "k", lambda: unit_vectors(8), 8)
        path.write_bytes(path.read_bytes()[:-30])
    else:
        path.write_bytes(content)
    before = path.read_bytes()
    with pytest.raises(DataError, match="left untouched"):
        load_or_build(path, "another key", lambda: unit_vectors(8), 8)
    assert path.read_bytes() == before


def test_a_first_stage_file_is_not_an_index(tmp_path):
    from paddlevideo.retrieval.marked_file import write_marked

    path = tmp_path / "stage.npz"
    write_marked(path, "actbert-first-stage", "first stage", {"version": 1}, {"x": np.zeros(2)})
    with pytest.raises(DataError, match="not a actbert-video-index file"):
        load_or_build(path, "k", lambda: unit_vectors(8), 8)


def test_index_settings_from_config():
    assert IndexSettings.from_config({"hnsw_m": 16}).hnsw_m == 16
    with pytest.raises(ConfigError, match="unknown key"):
        IndexSettings.from_config({"nlist": 4})
    with pytest.raises(ConfigError, match="ef_search"):
        IndexSettings.from_config({"ef_search": 0})
