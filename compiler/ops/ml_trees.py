"""Tree ensembles: TreeEnsembleRegressor and TreeEnsembleClassifier (ai.onnx.ml 1 and 3) and
TreeEnsemble (ai.onnx.ml 5).

The trees are attributes, known at compile time. Each op's attributes become one Forest: flat
node tables (feature, threshold, comparison, the two successors, missing-value flag), every
tree's root, and the votes (target, weight) of its leaves. A set membership node becomes a
chain of BRANCH_EQ nodes, as onnxruntime unrolls it. The Forest becomes constant tables and
one kernel: per row and per tree the walk starts at the root and takes exactly `depth` steps
(the longest root-to-leaf path, found at compile time); a leaf is its own successor both ways,
so a walk that reaches its leaf early stays there. The leaf's votes fold into a per-row
accumulator; a second kernel turns the accumulators into scores (aggregate, base values) and
labels, and the post transform runs last. Scores and labels follow onnxruntime (ml.py says
why), including its binary classifier rules; those depend on which classes have votes, which
is decided here from the whole model (a class has votes if some leaf votes for it) where
onnxruntime decides it per row: the two agree when the leaves vote for the same classes, as
in the models scikit-learn, XGBoost and LightGBM export.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..loop.ir import Binary, Cast, Const, Load, Select, Store, cmp, const_int, loops, seq
from .common import ZERO, view
from .ml import (
    ML,
    POST_TRANSFORMS,
    as_dtype,
    emit_argmax_labels,
    emit_post_transform,
    logistic,
    probit,
    rows_of,
    single_score_transform,
)
from .ml_shapes import tree_classifier_shape, tree_regressor_shape
from .registry import register
from .shape import fail

# node modes (ONNX names, and TreeEnsemble's codes by position) -> the comparison taking the
# true branch; a NaN compares false except under BRANCH_NEQ, as in C
BRANCH_MODES = ("BRANCH_LEQ", "BRANCH_LT", "BRANCH_GTE", "BRANCH_GT", "BRANCH_EQ", "BRANCH_NEQ")
_COMPARISONS = ("le", "lt", "ge", "gt", "eq", "ne")
MEMBER = 6
AGGREGATES = ("AVERAGE", "SUM", "MIN", "MAX")     # TreeEnsemble's codes by position
# TreeEnsemble's post_transform codes by position
_POST_CODES = ("NONE", "SOFTMAX", "LOGISTIC", "SOFTMAX_ZERO", "PROBIT")


@dataclass
class Forest:
    """Flat trees under construction. Node k branches on X[feature[k]] compared (mode[k],
    an index into _COMPARISONS) with threshold[k]; a leaf has votes and itself as both
    successors."""
    threshold_dtype: str = "float32"
    weight_dtype: str = "float32"
    feature: list = field(default_factory=list)
    threshold: list = field(default_factory=list)
    mode: list = field(default_factory=list)
    successors: list = field(default_factory=list)    # (true, false) per node
    missing: list = field(default_factory=list)
    votes: list = field(default_factory=list)          # per node, (target, weight) pairs
    roots: list = field(default_factory=list)

    def add(self, feature=0, threshold=0.0, mode=0, missing=False) -> int:
        k = len(self.feature)
        self.feature.append(int(feature))
        self.threshold.append(threshold)
        self.mode.append(mode)
        self.successors.append((k, k))
        self.missing.append(bool(missing))
        self.votes.append([])
        return k

    def depth(self, fail_with) -> int:
        """The most branch nodes on a path from a root; a cycle is an error."""
        depth, state = {}, {}
        for root in self.roots:
            stack = [root]
            while stack:
                k = stack[-1]
                nexts = [s for s in self.successors[k] if s != k]
                if state.get(k) is None:
                    state[k] = "open"
                    if any(state.get(s) == "open" for s in nexts):
                        raise fail_with(f"the trees have a cycle through node {k}")
                    stack.extend(s for s in nexts if s not in depth)
                    continue
                stack.pop()
                if k not in depth:
                    depth[k] = 1 + max(depth[s] for s in nexts) if nexts else 0
                    state[k] = "done"
        return max((depth[r] for r in self.roots), default=0)


def _list(values) -> list:
    return [] if values is None else list(np.asarray(values).reshape(-1))


def _tensor_or(tensor, floats):
    """An *_as_tensor attribute (double) if present, else the float list."""
    if tensor is not None and np.asarray(tensor).size:
        return np.asarray(tensor).reshape(-1)
    return np.asarray(floats if floats is not None else [], np.float32).reshape(-1)


def _float_dtype(*arrays) -> str:
    return "float64" if any(a.dtype == np.float64 for a in arrays) else "float32"


def forest_v3(ctx, treeids, nodeids, modes, features, values, trues, falses, missing,
              votes) -> Forest:
    """The Forest of TreeEnsembleRegressor/Classifier attributes; votes: (tree ids, node ids,
    target ids, weights) of the leaves."""
    n = len(nodeids)
    if not n or any(len(a) != n for a in (treeids, modes, features, values, trues, falses)):
        raise fail(ctx, "the nodes_* attributes are empty or of different lengths")
    index = {(int(t), int(i)): k for k, (t, i) in enumerate(zip(treeids, nodeids))}
    if len(index) != n:
        raise fail(ctx, "a (tree id, node id) pair appears twice")
    f = Forest(threshold_dtype=_float_dtype(values), weight_dtype=_float_dtype(votes[3]))

    def node(t, i):
        if (int(t), int(i)) not in index:
            raise fail(ctx, f"tree {t} has no node {i}")
        return index[int(t), int(i)]
    for k in range(n):
        if modes[k] not in BRANCH_MODES and modes[k] != "LEAF":
            raise fail(ctx, f"unknown node mode {modes[k]!r}")
        leaf = modes[k] == "LEAF"
        f.add(0 if leaf else features[k], values[k],
              0 if leaf else BRANCH_MODES.index(modes[k]), missing[k] if missing else 0)
        if not leaf:
            f.successors[k] = (node(treeids[k], trues[k]), node(treeids[k], falses[k]))
    for t, i, target, weight in zip(*votes):
        f.votes[node(t, i)].append((int(target), weight))
    first = {}
    for k, t in enumerate(treeids):
        first.setdefault(int(t), k)
    f.roots = [first[t] for t in sorted(first)]
    return f


def _member_sets(values):
    """The sets of membership_values, each ended by a NaN."""
    current = []
    for v in values:
        if np.isnan(v):
            yield current
            current = []
        else:
            current.append(v)
    if current:
        yield current


def forest_v5(ctx, a: dict) -> Forest:
    """The Forest of TreeEnsemble attributes: leaves follow the nodes (leaf j is node
    n + j); a membership node becomes one BRANCH_EQ node per member, each sending the
    others on to the next."""
    splits, weights = np.asarray(a["nodes_splits"]), np.asarray(a["leaf_weights"])
    modes, n, leaves = _list(a["nodes_modes"]), len(a["nodes_featureids"]), len(weights)
    f = Forest(threshold_dtype=_float_dtype(splits), weight_dtype=_float_dtype(weights))
    missing = a["nodes_missing_value_tracks_true"] or [0] * n
    for k in range(n):
        if not 0 <= modes[k] <= MEMBER:
            raise fail(ctx, f"unknown node mode {modes[k]}")
        f.add(a["nodes_featureids"][k], splits[k], int(modes[k]), missing[k])
    for target, weight in zip(a["leaf_targetids"], weights):
        f.votes[f.add()].append((int(target), weight))
    sets, chains = _member_sets(_list(a["membership_values"])), {}
    for k in (k for k in range(n) if modes[k] == MEMBER):
        values = next(sets, None) or [np.nan]     # an empty set holds no value
        f.mode[k], f.threshold[k] = BRANCH_MODES.index("BRANCH_EQ"), values[0]
        chains[k] = [k] + [f.add(f.feature[k], v, f.mode[k], missing[k]) for v in values[1:]]

    def target(k, side):
        i, leaf = a[f"nodes_{side}nodeids"][k], a[f"nodes_{side}leafs"][k]
        if not 0 <= i < (leaves if leaf else n):
            raise fail(ctx, f"node {k} has no {'leaf' if leaf else 'node'} {i} as {side} branch")
        return n + i if leaf else i
    for k in range(n):
        chain = chains.get(k, [k])
        for c, nxt in zip(chain, chain[1:] + [target(k, "false")]):
            f.successors[c] = (target(k, "true"), nxt)
    # a root whose branches both name one leaf is a tree of that one leaf (as in onnxruntime;
    # ONNX's reference reads the leaf at the root's index instead)
    f.roots = [target(r, "true") if a["nodes_trueleafs"][r] and a["nodes_falseleafs"][r]
               and a["nodes_truenodeids"][r] == a["nodes_falsenodeids"][r] else r
               for r in a["tree_roots"]]
    return f


# -- the walk ---------------------------------------------------------------------------------
def _identity(aggregate: str, dtype: str) -> float:
    """The accumulator's start: the first vote replaces it."""
    big = float(np.finfo(np.dtype(dtype)).max)
    return {"MIN": big, "MAX": -big}.get(aggregate, 0.0)


_FOLD = {"SUM": lambda a, w: a + w, "AVERAGE": lambda a, w: a + w,
         "MIN": lambda a, w: Binary("min", a, w), "MAX": lambda a, w: Binary("max", a, w)}


@dataclass(frozen=True)
class Votes:
    """The leaves' votes as tables [nodes, width]: weights, and target ids (None when every
    leaf votes for targets 0..width-1 in order). A leaf with fewer votes is padded with
    votes for a scratch target past the real ones; `full`: every leaf votes for every target
    (each row then has a score for each)."""
    weights: object
    ids: object
    width: int
    columns: int     # targets, plus the scratch one if there is padding
    full: bool


def _vote_tables(ctx, f: Forest, targets: int, dt: str) -> Votes:
    leaves = [v for v, nexts, k in zip(f.votes, f.successors, range(len(f.votes)))
              if nexts == (k, k)]
    width = max(1, max(len(v) for v in leaves))
    dense = all([t for t, _ in v] == list(range(width)) for v in leaves)
    padded = any(len(v) < width for v in leaves)
    ids = np.full((len(f.votes), width), targets, np.int64)
    weights = np.zeros((len(f.votes), width), np.dtype(dt))
    for k, votes in enumerate(f.votes):
        for w, (t, weight) in enumerate(votes[:width]):
            if not 0 <= t < targets:
                raise fail(ctx, f"a leaf votes for target {t} of {targets}")
            ids[k, w], weights[k, w] = t, weight
    full = all({t for t, _ in v} == set(range(targets)) for v in leaves)
    return Votes(ctx.constant(weights, "vote_weights"),
                 None if dense else ctx.constant(ids, "vote_targets"),
                 width, targets + padded, full)


def _branch(ctx, f: Forest, x_at, node, x_dt: str):
    """Whether node (an index expression) takes its true branch, comparing in x_dt."""
    x = as_dtype(x_dt, x_at(Load(ctx.constant(np.asarray(f.feature, np.int64), "feature"),
                                 (node,))))
    threshold = ctx.constant(np.asarray(f.threshold, np.dtype(x_dt)), "threshold")
    th = Load(threshold, (node,))
    used = sorted({m for m, nexts in zip(f.mode, f.successors) if nexts[0] != nexts[1]}) or [0]
    taken = cmp(_COMPARISONS[used[-1]], x, th)
    if len(used) > 1:
        modes = Load(ctx.constant(np.asarray(f.mode, np.int32), "mode"), (node,))
        for m in reversed(used[:-1]):
            taken = Select(cmp("eq", modes, Const(m, "int32")), cmp(_COMPARISONS[m], x, th),
                           taken)
    if any(f.missing):
        flags = Load(ctx.constant(np.asarray(f.missing, np.bool_), "missing"), (node,))
        taken = Binary("or", taken, Binary("and", flags, cmp("ne", x, x)))
    return taken


def emit_walk(ctx, f: Forest, X, targets: int, aggregate: str):
    """acc[n, t] = the aggregate of the votes for target t of the leaves row n reaches, and
    has[n, t] whether any voted for it (None when all do); returns (acc, has)."""
    n, features = rows_of(ctx, X)
    if any(not 0 <= feat < features for feat in f.feature):
        raise fail(ctx, f"a node reads a feature beyond the {features} of the input")
    depth = f.depth(lambda message: fail(ctx, message))
    dt = f.weight_dtype
    v = _vote_tables(ctx, f, targets, dt)
    acc = ctx.temp(dt, (n, v.columns), "votes")
    has = None if v.full else ctx.temp("bool", (n, v.columns), "voted")
    cursor = ctx.temp("int64", (n,), "node")
    roots = ctx.constant(np.asarray(f.roots, np.int64), "roots")
    successors = ctx.constant(np.asarray(f.successors, np.int64).reshape(-1, 2), "successors")
    Xv, fold = view(X, n, features), _FOLD[aggregate]
    # float64 when the input or the thresholds are: the other converts exactly
    x_dt = "float64" if "float64" in (X.dtype, f.threshold_dtype) else "float32"

    def row(i):
        node = Load(cursor, (i,))
        taken = _branch(ctx, f, lambda feature: Load(Xv, (i, feature)), node, x_dt)

        def vote(w):
            t = w if v.ids is None else Load(v.ids, (node, w))
            return seq(Store(acc, (i, t), fold(Load(acc, (i, t)), Load(v.weights, (node, w)))),
                       None if has is None else Store(has, (i, t), Const(True, "bool")))

        def tree(r):
            step = Store(cursor, (i,), Load(successors, (node, Select(taken, ZERO, const_int(1)))))
            return seq(Store(cursor, (i,), Load(roots, (r,))),
                       loops([("step", depth)], lambda s: step) if depth else None,
                       loops([("vote", v.width)], vote))

        def init(k):
            return seq(Store(acc, (i, k), Const(_identity(aggregate, dt), dt)),
                       None if has is None else Store(has, (i, k), Const(False, "bool")))
        return seq(loops([("k", v.columns)], init), loops([("tree", len(f.roots))], tree))
    ctx.emit(loops([("n", n)], row), kind="trees", stage="walk")
    return acc, has


# -- scores and labels -------------------------------------------------------------------------
def _scores_buffer(ctx, Y, n: int, k: int):
    """Where the scores are computed and transformed: Y itself, or a float32 temporary
    when Y is half precision (copied into Y at the end by _finish_scores)."""
    if Y.dtype in ("float32", "float64"):
        return view(Y, n, k)
    return ctx.temp("float32", (n, k), "scores")


def _finish_scores(ctx, S, Y) -> None:
    if S.name != Y.name:
        n, k = ctx.shape(S)
        Yv = view(Y, n, k)
        ctx.emit(loops([("n", n), ("k", k)], lambda i, j: Store(
            Yv, (i, j), Cast(Y.dtype, Load(S, (i, j))))), kind="elementwise", stage="cast")


def _base_values(ctx, base, k: int) -> list:
    base = _list(base)
    if len(base) not in (0, k):
        raise fail(ctx, f"{len(base)} base values for {k} targets")
    return base or [0.0] * k


def emit_regression(ctx, f: Forest, X, Y, targets, aggregate: str, base, post: str) -> None:
    """Y[n, t] = the aggregate of the trees' votes for t, plus base[t], post-transformed
    (a single target by PROBIT only)."""
    if aggregate not in AGGREGATES or post not in POST_TRANSFORMS:
        raise fail(ctx, f"unknown aggregate_function {aggregate!r} or post_transform {post!r}")
    n, _ = rows_of(ctx, X)
    k = targets or 1 + max((t for v in f.votes for t, _ in v), default=0)
    acc, has = emit_walk(ctx, f, X, k, aggregate)
    base = _base_values(ctx, base, k)
    B = ctx.constant(np.asarray(base, acc.dtype), "base") if any(base) else None
    S = _scores_buffer(ctx, Y, n, k)

    def score(i, j):
        a = Load(acc, (i, j))
        if aggregate == "AVERAGE":
            a = a / float(len(f.roots))
        a = a if B is None else a + Load(B, (j,))
        if has is not None:   # no vote: the base value of a lone target, else 0 (onnxruntime)
            a = Select(Load(has, (i, j)), a, Load(B, (j,)) if k == 1 and B is not None
                       else Const(0.0, a.dtype))
        return Store(S, (i, j), as_dtype(S.dtype, a))
    ctx.emit(loops([("n", n), ("k", k)], score), kind="elementwise", stage="scores")
    emit_post_transform(ctx, S, post if k > 1 else single_score_transform(post))
    _finish_scores(ctx, S, Y)


def emit_classification(ctx, f: Forest, X, classes, base, post: str, class_ids, weights):
    if post not in POST_TRANSFORMS:
        raise fail(ctx, f"unknown post_transform {post!r}")
    if len(classes) < 2:
        raise fail(ctx, f"{len(classes)} class labels: a classifier needs two at least")
    n, _ = rows_of(ctx, X)
    c, ids = len(classes), {int(t) for t in class_ids}
    if not ids:
        raise fail(ctx, "no leaf votes for any class")
    acc, has = emit_walk(ctx, f, X, c, "SUM")
    labels, Z = ctx.output(0), view(ctx.output(1), n, c)
    if c == 2:
        _binary_classification(ctx, acc, labels, Z, classes, _list(base), post, ids, weights)
        return
    given, base = _list(base), _base_values(ctx, base, c)
    B = ctx.constant(np.asarray(base, acc.dtype), "base") if any(base) else None
    ctx.emit(loops([("n", n), ("k", c)], lambda i, j: Store(Z, (i, j), as_dtype(
        Z.dtype, Load(acc, (i, j)) if B is None else Load(acc, (i, j)) + Load(B, (j,))))),
        kind="elementwise", stage="scores")
    # onnxruntime's argmax passes over the classes without a score (no vote, no base value)
    emit_argmax_labels(ctx, Z, labels, classes, None if given or has is None else
                       lambda i, j: Load(has, (i, j)))
    emit_post_transform(ctx, Z, post)


def _binary_scores(a0, a1, base: list, has0: bool, has1: bool):
    """onnxruntime's two-class scores from the vote sums a0, a1: (both scores, or None when
    only class 0 has votes; the score of class 0 then; the score its label is decided on).
    has0, has1: whether any leaf votes for the class; a class without votes scores 0."""
    zero = Const(0.0, a0.dtype)
    if len(base) == 2:
        if has1:     # onnxruntime adds base[1] to a0 here, and drops base[0]
            s1 = a0 + float(base[1])
            return (-s1 if has0 else zero, s1), None, s1
        s0 = a0 + float(base[0])
        return (s0, zero), None, s0 if has0 else zero
    s0 = a0 + float(base[0]) if base else a0
    if has1:
        return (s0 if has0 else zero, a1), None, a1
    return None, s0, s0


def _second_class(s, post: str, positive: bool):
    """The two scores onnxruntime writes for a lone score s of class 0."""
    if post == "LOGISTIC":
        return logistic(-s), logistic(s)
    if post == "PROBIT":      # onnxruntime leaves the second score unwritten
        return probit(s), Const(0.0, s.dtype)
    return (1.0 - s if positive else -s), s


def _binary_classification(ctx, acc, labels, Z, classes, base, post, ids, weights) -> None:
    """Two classes, as onnxruntime: votes for one class only ("binary case") decide the
    label by the score against 0.5 (all weights positive: probabilities) or 0; votes for
    both give label 1 or 0 (not the class labels) by the sign of the class 1 score."""
    if len(base) > 2:
        raise fail(ctx, f"{len(base)} base values for two classes")
    n, lone = ctx.shape(acc)[0], len(ids) == 1
    positive = all(float(w) >= 0 for w in weights)
    names = [int(c) for c in classes] if lone else [0, 1]
    two = None

    def row(i):
        nonlocal two
        a0, a1 = (as_dtype(Z.dtype, Load(acc, (i, const_int(j)))) for j in (0, 1))
        pair, single, pos = _binary_scores(a0, a1, base, 0 in ids, 1 in ids)
        two = pair is not None
        pair = pair or _second_class(single, post, positive)
        label = Select(cmp("gt", pos, 0.5 if lone and positive else 0.0),
                       const_int(names[1]), const_int(names[0]))
        return seq(Store(labels, (i,), label), Store(Z, (i, ZERO), pair[0]),
                   Store(Z, (i, const_int(1)), pair[1]))
    ctx.emit(loops([("n", n)], row), kind="elementwise", stage="binary")
    if two:
        emit_post_transform(ctx, Z, post)


# -- the ops -----------------------------------------------------------------------------------
def _forest_v3(ctx, a: dict, prefix: str) -> Forest:
    """A Forest from TreeEnsembleRegressor/Classifier attributes; prefix: "target" or
    "class", the prefix of the leaves' votes."""
    weights = _tensor_or(a[f"{prefix}_weights_as_tensor"], a[f"{prefix}_weights"])
    votes = (a[f"{prefix}_treeids"], a[f"{prefix}_nodeids"], a[f"{prefix}_ids"], weights)
    if not len(votes[0]) == len(votes[1]) == len(votes[2]) == len(weights):
        raise fail(ctx, f"the {prefix}_* attributes are of different lengths")
    return forest_v3(ctx, a["nodes_treeids"], a["nodes_nodeids"], a["nodes_modes"],
                     a["nodes_featureids"],
                     _tensor_or(a["nodes_values_as_tensor"], a["nodes_values"]),
                     a["nodes_truenodeids"], a["nodes_falsenodeids"],
                     a["nodes_missing_value_tracks_true"], votes)


@register("TreeEnsembleRegressor", domain=ML, shape=tree_regressor_shape)
def TreeEnsembleRegressor(ctx, X, *, aggregate_function="SUM", base_values=(),
                          base_values_as_tensor=None, n_targets=None, nodes_falsenodeids=(),
                          nodes_featureids=(), nodes_hitrates=(), nodes_hitrates_as_tensor=None,
                          nodes_missing_value_tracks_true=(), nodes_modes=(), nodes_nodeids=(),
                          nodes_treeids=(), nodes_truenodeids=(), nodes_values=(),
                          nodes_values_as_tensor=None, post_transform="NONE", target_ids=(),
                          target_nodeids=(), target_treeids=(), target_weights=(),
                          target_weights_as_tensor=None):
    f = _forest_v3(ctx, locals(), "target")
    base = _tensor_or(base_values_as_tensor, base_values)
    emit_regression(ctx, f, X, ctx.output(0), n_targets, aggregate_function, base,
                    post_transform)


@register("TreeEnsembleClassifier", domain=ML, shape=tree_classifier_shape)
def TreeEnsembleClassifier(ctx, X, *, base_values=(), base_values_as_tensor=None, class_ids=(),
                           class_nodeids=(), class_treeids=(), class_weights=(),
                           class_weights_as_tensor=None, classlabels_int64s=(),
                           classlabels_strings=(), nodes_falsenodeids=(), nodes_featureids=(),
                           nodes_hitrates=(), nodes_hitrates_as_tensor=None,
                           nodes_missing_value_tracks_true=(), nodes_modes=(), nodes_nodeids=(),
                           nodes_treeids=(), nodes_truenodeids=(), nodes_values=(),
                           nodes_values_as_tensor=None, post_transform="NONE"):
    if classlabels_strings:
        raise fail(ctx, "string class labels (classlabels_strings) are not compiled; "
                        "only classlabels_int64s")
    f = _forest_v3(ctx, locals(), "class")
    emit_classification(ctx, f, X, classlabels_int64s,
                        _tensor_or(base_values_as_tensor, base_values), post_transform,
                        class_ids, _tensor_or(class_weights_as_tensor, class_weights))


@register("TreeEnsemble", since=5, domain=ML)
def TreeEnsemble(ctx, X, *, leaf_targetids, leaf_weights, nodes_falseleafs, nodes_falsenodeids,
                 nodes_featureids, nodes_modes, nodes_splits, nodes_trueleafs,
                 nodes_truenodeids, tree_roots, aggregate_function=1, membership_values=None,
                 n_targets=None, nodes_hitrates=None, nodes_missing_value_tracks_true=(),
                 post_transform=0):
    if not 0 <= aggregate_function < len(AGGREGATES) or \
            not 0 <= post_transform < len(_POST_CODES):
        raise fail(ctx, f"unknown aggregate_function {aggregate_function} or post_transform "
                        f"{post_transform}")
    f = forest_v5(ctx, locals())
    emit_regression(ctx, f, X, ctx.output(0), n_targets, AGGREGATES[aggregate_function], (),
                    _POST_CODES[post_transform])
