"""The ai.onnx.ml ops of scikit-learn exports: linear models, scalers and encoders (the tree
ensembles are in ml_trees.py).

Where onnxruntime departs from ONNX's reference (the two scores of a binary classifier, the
post transform of a single score, the norms of Normalizer, the scores of targets without
votes), the lowerings follow onnxruntime: it is what exported models are checked against.
Scores are float32 as the schemas say, and an integer or double input is converted to float
before the arithmetic, as onnxruntime does. String labels, keys and values have no buffer
type here: those models are refused.
"""
from __future__ import annotations

import math

import numpy as np

from .. import dtypes
from ..loop.ir import (
    Binary,
    Cast,
    Const,
    Load,
    Select,
    Store,
    Unary,
    cmp,
    const_int,
    loops,
    seq,
)
from ..loop.symbolic import product
from .common import ZERO, nest, view
from .indexing import wrap_index
from .matmul import gemm_kernels
from .ml_shapes import (
    array_feature_extractor_shape,
    linear_classifier_shape,
    linear_regressor_shape,
    same_shape_and_type,
    same_shape_float,
)
from .registry import register
from .shape import fail, scalar_const

ML = "ai.onnx.ml"
POST_TRANSFORMS = ("NONE", "LOGISTIC", "SOFTMAX", "SOFTMAX_ZERO", "PROBIT")
_F = "float32"


def as_dtype(dtype: str, e):
    return e if e.dtype == dtype else Cast(dtype, e)


def rows_of(ctx, X) -> tuple[int, int]:
    """(N, F) of a model input of shape [N, F], or [F] for one row."""
    shape = ctx.shape(X)
    if len(shape) not in (1, 2):
        raise fail(ctx, f"input of shape {shape}, expected [N, F] or [F]")
    return (1, shape[0]) if len(shape) == 1 else shape


def check_post_transform(ctx, post: str) -> str:
    if post not in POST_TRANSFORMS:
        raise fail(ctx, f"unknown post_transform {post!r}")
    return post


def single_score_transform(post: str) -> str:
    """onnxruntime transforms a lone score (one target) by PROBIT only: LOGISTIC and the
    softmaxes leave it as it is."""
    return post if post == "PROBIT" else "NONE"


# -- post transforms ---------------------------------------------------------------------------
def logistic(v):
    return Unary("sigmoid", v)


def probit(v):
    """sqrt(2) * erfinv(2v - 1), with erfinv by Winitzki's approximation (a = 0.147): that is
    what onnxruntime computes, and it differs from the exact inverse in the third digit."""
    x = v * 2.0 - 1.0
    w = Unary("log", (1.0 - x) * (1.0 + x))
    a = 2.0 / (math.pi * 0.147) + w * 0.5
    root = Unary("sqrt", Unary("sqrt", a * a - w * (1.0 / 0.147)) - a)
    return Select(cmp("lt", x, 0.0), -root, root) * math.sqrt(2.0)


def emit_post_transform(ctx, S, post: str, stage: str = "post") -> None:
    """S[n, :] = post(S[n, :]) in place, for a float buffer S of shape [N, K]."""
    if post == "NONE":
        return
    n, k = ctx.shape(S)
    if post in ("LOGISTIC", "PROBIT"):
        fn = logistic if post == "LOGISTIC" else probit
        ctx.emit(nest((n, k), lambda i, j: Store(S, (i, j), fn(Load(S, (i, j))))),
                 kind="elementwise", stage=stage)
        return
    # Softmax over each row; SOFTMAX_ZERO leaves the (near) zeros out of the sum and scales
    # them by exp(-max) instead, as onnxruntime does.
    top, total = ctx.temp(S.dtype, (n,), "max"), ctx.temp(S.dtype, (n,), "sum")

    def row(i):
        m, s = Load(top, (i,)), Load(total, (i,))

        def y(j):
            return Load(S, (i, j))

        def exp_step(j):
            e = Unary("exp", y(j) - m)
            if post == "SOFTMAX":
                return seq(Store(S, (i, j), e), Store(total, (i,), s + y(j)))
            big = Binary("or", cmp("gt", y(j), 1e-7), cmp("lt", y(j), -1e-7))
            return seq(Store(total, (i,), s + Select(big, e, Const(0.0, S.dtype))),
                       Store(S, (i, j), Select(big, e, y(j) * Unary("exp", -m))))
        return seq(Store(top, (i,), y(ZERO)),
                   loops([("k_max", k)], lambda j: Store(top, (i,), Binary("max", m, y(j)))),
                   Store(total, (i,), Const(0.0, S.dtype)),
                   loops([("k_exp", k)], exp_step),
                   loops([("k", k)], lambda j: Store(S, (i, j), y(j) / s)))
    ctx.emit(loops([("n", n)], row), kind="reduce", stage=stage)


# -- labels ------------------------------------------------------------------------------------
def emit_argmax_labels(ctx, S, labels, classes, valid=None) -> None:
    """labels[n] = classes[the first largest S[n, k]] among the k where valid(n, k) (a bool
    expression; all k without it)."""
    n, k = ctx.shape(S)
    table = ctx.constant(np.asarray(classes, np.int64), "classes")
    lowest = Const(-float(np.finfo(np.float32).max), S.dtype)
    best = ctx.temp(S.dtype, (n,), "best")

    def score(i, j):
        return Load(S, (i, j)) if valid is None else Select(valid(i, j), Load(S, (i, j)), lowest)

    def row(i):
        def step(j):
            better = cmp("gt", score(i, j), Load(best, (i,)))
            # the index first: its condition reads the best value before this step
            return seq(Store(labels, (i,), Select(better, j, Load(labels, (i,)))),
                       Store(best, (i,), Select(better, score(i, j), Load(best, (i,)))))
        return seq(Store(best, (i,), score(i, ZERO)), Store(labels, (i,), const_int(0)),
                   loops([("k", k)], step),
                   Store(labels, (i,), Load(table, (Load(labels, (i,)),))))
    ctx.emit(loops([("n", n)], row), kind="reduce", stage="label")


# -- linear models -----------------------------------------------------------------------------
def emit_linear_scores(ctx, X, S, coefficients, intercepts) -> int:
    """S[N, T] = float(X) @ coefficients[T, F]^T + intercepts; returns T."""
    n, f = rows_of(ctx, X)
    coef = np.asarray(coefficients, np.float32)
    if f == 0 or coef.size == 0 or coef.size % f:
        raise fail(ctx, f"{coef.size} coefficients do not fill rows of {f} features")
    t = coef.size // f
    bias = np.asarray(intercepts if len(intercepts) else np.zeros(t), np.float32)
    if bias.size != t:
        raise fail(ctx, f"{bias.size} intercepts for {t} targets")
    if ctx.shape(S) != (n, t):
        raise fail(ctx, f"scores of shape {ctx.shape(S)}, expected {(n, t)}")
    W = ctx.constant(np.ascontiguousarray(coef.reshape(t, f).T), "coefficients")
    B = ctx.constant(bias, "intercepts")
    Xv = view(X, n, f)
    gemm_kernels(ctx, S, lambda i, kk: as_dtype(_F, Load(Xv, (i, kk))),
                 lambda kk, j: Load(W, (kk, j)), [], n, t, f, init=lambda i, j: Load(B, (j,)))
    return t


@register("LinearRegressor", domain=ML, shape=linear_regressor_shape)
def LinearRegressor(ctx, X, *, coefficients=(), intercepts=(), targets=1,
                    post_transform="NONE"):
    post = check_post_transform(ctx, post_transform)
    n, _ = rows_of(ctx, X)
    Y = view(ctx.output(0), n, targets)
    if emit_linear_scores(ctx, X, Y, coefficients, intercepts) != targets:
        raise fail(ctx, f"the coefficients are not {targets} rows of features")
    emit_post_transform(ctx, Y, post if targets > 1 else single_score_transform(post))


@register("LinearClassifier", domain=ML, shape=linear_classifier_shape)
def LinearClassifier(ctx, X, *, coefficients, classlabels_ints=(), classlabels_strings=(),
                     intercepts=(), multi_class=0, post_transform="NONE"):
    if classlabels_strings:
        raise fail(ctx, "string class labels (classlabels_strings) are not compiled; "
                        "only classlabels_ints")
    post = check_post_transform(ctx, post_transform)
    labels, Z = ctx.output(0), ctx.output(1)
    n, f = rows_of(ctx, X)
    classes = list(classlabels_ints)
    t = len(coefficients) // max(f, 1)
    if t > 1:
        if len(classes) != t:
            raise fail(ctx, f"{len(classes)} class labels for {t} score columns")
        Z = view(Z, n, t)
        emit_linear_scores(ctx, X, Z, coefficients, intercepts)
        emit_argmax_labels(ctx, Z, labels, classes)
        emit_post_transform(ctx, Z, post)
        return
    if len(classes) != 2:
        raise fail(ctx, f"one row of coefficients needs two class labels, got {len(classes)}")
    S = ctx.temp(_F, (n, 1), "score")
    emit_linear_scores(ctx, X, S, coefficients, intercepts)
    _binary_linear_outputs(ctx, S, labels, view(Z, n, 2), classes, post)


def _binary_linear_outputs(ctx, S, labels, Z, classes, post: str) -> None:
    """One score s per row: label classes[1] when s > 0; scores [1 - s, s], or
    [logistic(-s), logistic(s)] under LOGISTIC (onnxruntime's second class)."""
    n = ctx.shape(S)[0]
    neg, pos = (scalar_const("int64", c) for c in classes)

    def row(i):
        s = Load(S, (i, ZERO))
        if post == "LOGISTIC":
            pair = (logistic(-s), logistic(s))
        elif post == "PROBIT":     # onnxruntime writes an ill-formed pair here
            pair = (probit(1.0 - s), probit(s))
        else:
            pair = (1.0 - s, s)
        return seq(Store(labels, (i,), Select(cmp("gt", s, 0.0), pos, neg)),
                   Store(Z, (i, ZERO), pair[0]), Store(Z, (i, const_int(1)), pair[1]))
    ctx.emit(loops([("n", n)], row), kind="elementwise", stage="binary")


# -- per-feature transforms --------------------------------------------------------------------
def _per_column(ctx, values, columns: int, default, what: str, dtype: str):
    """values[j] for column j: one value for every column, or one per column."""
    values = np.asarray(values if len(values) else [default]).reshape(-1)
    if values.size == 1:
        return lambda j: scalar_const(dtype, values[0])
    if values.size != columns:
        raise fail(ctx, f"{values.size} {what} values for {columns} columns")
    table = ctx.constant(values.astype(dtypes.dtype(dtype).numpy), what)
    return lambda j: Load(table, (j,))


def _columns(ctx, X) -> int:
    shape = ctx.shape(X)
    if len(shape) not in (1, 2):
        raise fail(ctx, f"input of shape {shape}, expected [N, C] or [C]")
    return shape[-1]


def _emit_by_column(ctx, X, fn) -> None:
    """Y[..., j] = fn(X[..., j], j)."""
    Y = ctx.output(0)
    ctx.emit(nest(ctx.shape(X), lambda *v: Store(Y, tuple(v), fn(Load(X, tuple(v)), v[-1]))),
             kind="elementwise")


@register("Scaler", domain=ML, shape=same_shape_float)
def Scaler(ctx, X, *, offset=(), scale=()):
    c = _columns(ctx, X)
    dt = "float64" if X.dtype == "float64" else _F
    off = _per_column(ctx, offset, c, 0.0, "offset", dt)
    mul = _per_column(ctx, scale, c, 1.0, "scale", dt)
    _emit_by_column(ctx, X, lambda x, j: as_dtype(_F, (as_dtype(dt, x) - off(j)) * mul(j)))


@register("Imputer", domain=ML, shape=same_shape_and_type)
def Imputer(ctx, X, *, imputed_value_floats=(), imputed_value_int64s=(),
            replaced_value_float=0.0, replaced_value_int64=0):
    is_float = dtypes.dtype(X.dtype).is_float
    values = imputed_value_floats if is_float else imputed_value_int64s
    replaced = replaced_value_float if is_float else replaced_value_int64
    if not len(values):
        raise fail(ctx, f"no imputed values for a {X.dtype} input")
    value = _per_column(ctx, values, _columns(ctx, X), 0, "imputed", X.dtype)

    def fn(x, j):
        missing = cmp("ne", x, x) if is_float and math.isnan(replaced) else \
            cmp("eq", x, scalar_const(X.dtype, replaced))
        return Select(missing, value(j), x)
    _emit_by_column(ctx, X, fn)


@register("Binarizer", domain=ML)
def Binarizer(ctx, X, *, threshold=0.0):
    dt = X.dtype if X.dtype in (_F, "float64") else "float64"
    one, zero = scalar_const(X.dtype, 1), scalar_const(X.dtype, 0)
    _emit_by_column(ctx, X, lambda x, j: Select(
        cmp("gt", as_dtype(dt, x), scalar_const(dt, threshold)), one, zero))


# Normalizer: norm -> (first value of the running norm, its step, the divisor it gives)
_NORMS = {
    "MAX": (lambda x0: x0, lambda s, x: Binary("max", s, x), lambda s: s),
    "L1": (lambda x0: Const(0.0, _F), lambda s, x: s + Unary("abs", x), lambda s: s),
    "L2": (lambda x0: Const(0.0, _F), lambda s, x: s + x * x, lambda s: Unary("sqrt", s)),
}


@register("Normalizer", domain=ML, shape=same_shape_float)
def Normalizer(ctx, X, *, norm="MAX"):
    """Divides each row ([N, C], or [C] for one row) by its norm; a zero norm leaves the row
    as it is. MAX is the largest value, not the largest magnitude (as in onnxruntime)."""
    if norm not in _NORMS:
        raise fail(ctx, f"unknown norm {norm!r} (expected MAX, L1 or L2)")
    first, step, divisor = _NORMS[norm]
    c = _columns(ctx, X)
    a = product(ctx.shape(X)) // max(c, 1)
    Xv, Yv, s = view(X, a, c), view(ctx.output(0), a, c), ctx.temp(_F, (a,), "norm")

    def row(i):
        def x(k):
            return as_dtype(_F, Load(Xv, (i, k)))
        acc, d = Load(s, (i,)), divisor(Load(s, (i,)))
        return seq(Store(s, (i,), first(x(ZERO))),
                   loops([("k_norm", c)], lambda k: Store(s, (i,), step(acc, x(k)))),
                   loops([("k", c)], lambda k: Store(Yv, (i, k), Select(
                       cmp("ne", acc, 0.0), x(k) / d, x(k)))))
    ctx.emit(loops([("i", a)], row), kind="reduce")


# -- lookups -----------------------------------------------------------------------------------
@register("ArrayFeatureExtractor", domain=ML, shape=array_feature_extractor_shape)
def ArrayFeatureExtractor(ctx, X, indices):
    """Z[..., j] = X[..., indices.flat[j]]; a 1-D X gives one row. Indices are run-time data,
    wrapped into the last axis (wrap_index) instead of rejected."""
    shape, out = ctx.shape(X), ctx.output(0)
    if not shape:
        raise fail(ctx, "the input is a scalar: it has no features to extract")
    f, outer = shape[-1], product(shape[:-1])
    k = product(ctx.shape(indices))
    if product(ctx.shape(out)) != outer * k:
        raise fail(ctx, f"output of shape {ctx.shape(out)}, expected {outer} rows of {k}")
    Xv, Zv, Iv = view(X, outer, f), view(out, outer, k), view(indices, k)
    ctx.emit(loops([("i", outer), ("j", k)], lambda i, j: Store(
        Zv, (i, j), Load(Xv, (i, wrap_index(Load(Iv, (j,)), f))))), kind="elementwise")


def _label_table(ctx, keys, values, key_dtype: str, value_dtype: str):
    """Sorted unique keys (the first of repeated keys wins, as in onnxruntime's map), their
    values, and the value of a NaN key (None when there is none)."""
    keys = np.asarray(keys).reshape(-1)
    values = np.asarray(values).reshape(-1)
    if keys.dtype.kind in "OSU" or values.dtype.kind in "OSU":
        raise fail(ctx, "string keys or values are not compiled; only numeric ones")
    if keys.size != values.size:
        raise fail(ctx, f"{keys.size} keys for {values.size} values")
    keys = keys.astype(dtypes.dtype(key_dtype).numpy)
    values = values.astype(dtypes.dtype(value_dtype).numpy)
    nan = np.isnan(keys) if keys.dtype.kind == "f" else np.zeros(keys.size, bool)
    nan_value = values[np.argmax(nan)] if nan.any() else None
    keys, first = np.unique(keys[~nan], return_index=True)   # the first index of each key
    return keys, values[~nan][first], nan_value


def _lower_bound_steps(K, P, x, at, n: int) -> list:
    """Stores leaving P[at] = the number of keys below x, by binary lifting over the sorted
    constant K of n keys: a fixed number of steps, each load clamped into K."""
    stmts = [Store(P, at, const_int(0))]
    step = 1 << max(n.bit_length() - 1, 0)
    while step:
        cand = Load(P, at) + const_int(step)
        key = Load(K, (Binary("min", cand - const_int(1), const_int(n - 1)),))
        below = Binary("and", cmp("le", cand, const_int(n)), cmp("lt", key, x))
        stmts.append(Store(P, at, Select(below, cand, Load(P, at))))
        step >>= 1
    return stmts


def _nan_key(x, nan_value, y):
    """y, or the value of the NaN key where x is NaN (NaN equals no key in a comparison)."""
    if nan_value is None:
        return y
    return Select(cmp("ne", x, x), scalar_const(y.dtype, nan_value), y)


@register("LabelEncoder", since=2, domain=ML)
def LabelEncoder(ctx, X, *, default_float=-0.0, default_int64=-1, default_string="_Unused",
                 default_tensor=None, keys_floats=(), keys_int64s=(), keys_strings=(),
                 keys_tensor=None, values_floats=(), values_int64s=(), values_strings=(),
                 values_tensor=None):
    """Y = the value of the key equal to X, or the default; numeric keys and values only."""
    if keys_strings or values_strings:
        raise fail(ctx, "string keys or values are not compiled; only numeric ones")
    Y = ctx.output(0)
    keys = next((k for k in (keys_tensor, keys_int64s, keys_floats)
                 if k is not None and len(k)), ())
    values = next((v for v in (values_tensor, values_int64s, values_floats)
                   if v is not None and len(v)), ())
    default = default_tensor if default_tensor is not None else \
        default_float if dtypes.dtype(Y.dtype).is_float else default_int64
    K, V, nan_value = _label_table(ctx, keys, values, X.dtype, Y.dtype)
    fallback = scalar_const(Y.dtype, np.asarray(default).reshape(-1)[0])
    size = product(ctx.shape(X))
    Xv, Yv = view(X, size), view(Y, size)
    if not K.size:    # no key but NaN, if any
        ctx.emit(loops([("i", size)], lambda i: Store(Yv, (i,), _nan_key(
            Load(Xv, (i,)), nan_value, fallback))), kind="elementwise")
        return
    P = ctx.temp("int64", (size,), "position")
    Kc, Vc = ctx.constant(K, "keys"), ctx.constant(V, "values")

    def element(i):
        x, at = Load(Xv, (i,)), (i,)
        last = Binary("min", Load(P, at), const_int(K.size - 1))
        found = cmp("eq", Load(Kc, (last,)), x)
        y = _nan_key(x, nan_value, Select(found, Load(Vc, (last,)), fallback))
        return seq(*_lower_bound_steps(Kc, P, x, at, K.size), Store(Yv, at, y))
    ctx.emit(loops([("i", size)], element), kind="elementwise")
