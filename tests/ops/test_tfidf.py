"""TfIdfVectorizer: n-gram counts with skips over integer tokens, compared with onnxruntime."""
from __future__ import annotations

import itertools

import numpy as np
import onnxc
import pytest
from onnxc import ModelError

from tests.ops.harness import check_node, node_model

VOCAB = 5     # tokens from a small vocabulary, so that n-grams repeat


def pool_attrs(seed: int, per_length=(4, 6, 5), mode="TF", weighted=False, **attrs):
    """A pool of distinct n-grams of lengths 1, 2, 3 (per_length of each) over the vocabulary,
    their output columns shuffled (two of them shared), and weights when asked (one per
    n-gram)."""
    rng = np.random.default_rng(seed)
    pool, counts = [], []
    for n, k in enumerate(per_length, 1):
        counts.append(len(pool))
        grams = list(itertools.product(range(VOCAB), repeat=n))
        for g in rng.choice(len(grams), k, replace=False):
            pool.extend(grams[g])
    total = sum(per_length)
    indexes = rng.permutation(total)
    indexes[indexes == total - 1] = 0        # two n-grams count in column 0
    attrs = dict(mode=mode, pool_int64s=pool, ngram_counts=counts,
                 ngram_indexes=[int(i) for i in indexes], **attrs)
    if weighted:
        attrs["weights"] = [float(w) for w in rng.uniform(0.5, 3.0, total)]
    return attrs


def tokens(shape, dtype, seed: int):
    return np.random.default_rng(seed).integers(0, VOCAB + 1, shape).astype(dtype)


@pytest.mark.parametrize("dtype", [np.int32, np.int64])
@pytest.mark.parametrize("shape", [(12,), (3, 9)])
@pytest.mark.parametrize("lo, hi, skip", [(1, 1, 0), (1, 2, 0), (2, 2, 3), (1, 3, 2),
                                          (2, 3, 1), (3, 3, 4)])
def test_tf(tmp_path, dtype, shape, lo, hi, skip):
    attrs = pool_attrs(lo + hi + skip, min_gram_length=lo, max_gram_length=hi,
                       max_skip_count=skip)
    check_node(tmp_path, "TfIdfVectorizer", [tokens(shape, dtype, skip)], attrs)


@pytest.mark.parametrize("mode", ["IDF", "TFIDF"])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("shape", [(10,), (4, 7)])
def test_idf_and_tfidf(tmp_path, mode, weighted, shape):
    attrs = pool_attrs(len(shape), mode=mode, weighted=weighted, min_gram_length=1,
                       max_gram_length=3, max_skip_count=2)
    check_node(tmp_path, "TfIdfVectorizer", [tokens(shape, np.int64, len(shape))], attrs)


def test_no_pool_gram_of_the_lengths_asked(tmp_path):
    """No 2-grams in the pool, 2-grams asked: all counts are zero."""
    attrs = pool_attrs(0, per_length=(4, 0, 3), min_gram_length=2, max_gram_length=2,
                       max_skip_count=1)
    y, = check_node(tmp_path, "TfIdfVectorizer", [tokens((2, 6), np.int32, 0)], attrs)
    assert not y.any()


def test_rows_shorter_than_the_grams(tmp_path):
    attrs = pool_attrs(1, min_gram_length=3, max_gram_length=3, max_skip_count=3)
    check_node(tmp_path, "TfIdfVectorizer", [tokens((3, 2), np.int64, 1)], attrs)


def test_pool_strings_is_refused(tmp_path):
    attrs = dict(mode="TF", min_gram_length=1, max_gram_length=1, max_skip_count=0,
                 pool_strings=["a", "b"], ngram_counts=[0], ngram_indexes=[0, 1])
    model = node_model("TfIdfVectorizer", [np.zeros(4, np.int64)], attrs)
    with pytest.raises(ModelError, match=r"tfidfvectorizer_node.*pool_strings"):
        onnxc.compile(model, out_dir=tmp_path)


def test_pool_values_beyond_int32_match_no_int32_token(tmp_path):
    attrs = dict(mode="TF", min_gram_length=1, max_gram_length=2, max_skip_count=1,
                 pool_int64s=[1, 2, 2 ** 32 + 1, 1, 2, 2 ** 32 + 2, 2], ngram_counts=[0, 3],
                 ngram_indexes=[0, 1, 2, 3, 4])
    x = np.array([[1, 2, 1, 2], [2, 1, 1, 2]], np.int32)
    check_node(tmp_path, "TfIdfVectorizer", [x], attrs)


@pytest.mark.parametrize("change, message", [
    (dict(pool_int64s=[1, 2, 1]), "twice"),
    (dict(weights=[1.0, 2.0]), "weights"),
    (dict(mode="BM25"), "mode"),
])
def test_bad_attributes_are_refused(tmp_path, change, message):
    attrs = dict(mode="TF", min_gram_length=1, max_gram_length=1, max_skip_count=0,
                 pool_int64s=[1, 2, 3], ngram_counts=[0], ngram_indexes=[0, 1, 2])
    model = node_model("TfIdfVectorizer", [np.zeros(4, np.int64)], {**attrs, **change})
    with pytest.raises(ModelError, match=message):
        onnxc.compile(model, out_dir=tmp_path)
