"""Recurrent layers: RNN, GRU and LSTM (opsets 7 and 14, layout 0 and 1).

Two kernels per node. The first projects every step's input at once, proj = X·W^T + Wb
(a batched GEMM over the directions, which the matmul schedule tiles and vectorizes). The
second is the recurrence: per direction, a serial loop over the time steps holding
  (a) the gate pre-activations of the step, acc[b, g] = proj[t, b, g] + Rb[g] + H[b]·R[g],
      in a scratch block with one column per row g of W (gate-major, as in W);
  (b) the elementwise cell update over (b, j) (recurrent_cells.py), in place in acc;
  (c) the stores of Y[t] and of the running state H (and C), which live in scratch buffers
      between steps and go to Y_h (Y_c) after the last step.
GRU's hidden gate needs the reset gate first: its recurrent part (r ⊙ H)·Rh, or
r ⊙ (H·Rh + Rbh) with linear_before_reset, goes to a second block after r is computed.
Each step reads the state the one before wrote, so the schedule leaves that kernel serial.

Step s of a reverse direction is time T - 1 - s. With sequence_lens (read at run time), a
step at or past a batch entry's length leaves that entry's state as it is and writes zeros
to Y: forward entries run over [0, len), reverse ones from len - 1 down to 0, and Y_h holds
the state after the last valid step (zeros for a zero length, as onnxruntime gives).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from ..loop.ir import Cast, Const, Load, Select, Store, cmp, const_int, loops, seq
from .common import view
from .matmul import gemm_kernels
from .recurrent_cells import (
    Cell,
    activation_functions,
    clipper,
    gru_reset,
    gru_update,
    lstm_update,
    rnn_update,
)
from .registry import register
from .shape import fail

_DIRECTIONS = {"forward": 1, "reverse": 1, "bidirectional": 2}


@dataclass(frozen=True)
class _Kind:
    gates: int               # rows of W per hidden unit
    activations: tuple       # the default functions of one direction
    update: Callable         # the cell update (recurrent_cells.py)


_KINDS = {"RNN": _Kind(1, ("Tanh",), rnn_update),
          "GRU": _Kind(3, ("Sigmoid", "Tanh"), gru_update),
          "LSTM": _Kind(4, ("Sigmoid", "Tanh", "Tanh"), lstm_update)}


def _plus(e, k: int):
    return e if k == 0 else e + const_int(k)


class _Recurrence:
    """One RNN/GRU/LSTM node: its checked sizes, buffers and the statements of its kernel."""

    def __init__(self, ctx, op: str, ins: dict, attrs: dict):
        self.ctx, self.op, self.kind = ctx, op, _KINDS[op]
        self.ins, self.extra = ins, {k: attrs[k] for k in ("linear_before_reset",
                                                           "input_forget") if k in attrs}
        self.direction, self.layout = attrs["direction"], attrs["layout"]
        if self.direction not in _DIRECTIONS:
            raise fail(ctx, f"direction {self.direction!r}, expected one of "
                            f"{', '.join(_DIRECTIONS)}")
        if self.layout not in (0, 1):
            raise fail(ctx, f"layout {self.layout}, expected 0 or 1")
        self.dirs = _DIRECTIONS[self.direction]
        self._check_sizes(attrs.get("hidden_size"))
        names = attrs["activations"] or self.kind.activations * self.dirs
        if op == "RNN" and self.dirs == 1 and len(names) == 2:
            names = names[:1]    # the schema's default lists two, whatever the direction
        self.acts = activation_functions(names, attrs["activation_alpha"],
                                         attrs["activation_beta"], len(self.kind.activations),
                                         self.dirs, lambda m: fail(ctx, m))
        self.clip = clipper(attrs["clip"])
        outs = list(ctx.outputs) + [None] * 3
        self.Y, self.Y_h, self.Y_c = outs[0], outs[1], outs[2] if op == "LSTM" else None
        self._check_outputs()
        G, H = self.kind.gates, self.hidden
        dt = self.dtype
        self._r_t = None      # R transposed, made on first use when R is constant
        self.proj = ctx.temp(dt, (self.dirs, self.steps * self.batch, G * H), "input_gates")
        self.acc = ctx.temp(dt, (self.batch, G * H), "gates")
        self.h = ctx.temp(dt, (self.batch, H), "h")
        self.c = ctx.temp(dt, (self.batch, H), "c") if op == "LSTM" else None
        self.rec = ctx.temp(dt, (self.batch, H), "hidden_gate") if op == "GRU" else None

    # -- checks --------------------------------------------------------------------------------
    def _check_sizes(self, hidden_size) -> None:
        ctx, ins = self.ctx, self.ins
        X, R = ins["X"], ins["R"]
        self.dtype = X.dtype
        if X.dtype not in ("float32", "float64"):
            raise fail(ctx, f"dtype {X.dtype} is not supported (float32, float64)")
        x = ctx.shape(X)
        if len(x) != 3:
            raise fail(ctx, f"X of shape {x}, expected rank 3")
        (self.steps, self.batch) = (x[0], x[1]) if self.layout == 0 else (x[1], x[0])
        self.inputs = x[2]
        r = ctx.shape(R)
        if len(r) != 3:
            raise fail(ctx, f"R of shape {r}, expected rank 3")
        H = self.hidden = r[2]
        if hidden_size is not None and hidden_size != H:
            raise fail(ctx, f"hidden_size {hidden_size} but R of shape {r}")
        D, G = self.dirs, self.kind.gates
        state = (D, self.batch, H) if self.layout == 0 else (self.batch, D, H)
        want = {"W": (D, G * H, self.inputs), "R": (D, G * H, H), "B": (D, 2 * G * H),
                "sequence_lens": (self.batch,), "initial_h": state, "initial_c": state,
                "P": (D, 3 * H)}
        for name, shape in want.items():
            buf = ins.get(name)
            if buf is None:
                continue
            if ctx.shape(buf) != shape:
                raise fail(ctx, f"{name} of shape {ctx.shape(buf)}, expected {shape} "
                                f"(X {x}, {self.direction}, hidden size {H}, layout "
                                f"{self.layout})")
            if buf.dtype not in (("int32", "int64") if name == "sequence_lens" else (X.dtype,)):
                raise fail(ctx, f"{name} of dtype {buf.dtype} with X of dtype {X.dtype}")
        lens = ctx.const(ins.get("sequence_lens"))
        if lens is not None and (lens == self.steps).all():   # every step valid: no masks
            self.ins = {**ins, "sequence_lens": None}

    def _check_outputs(self) -> None:
        T, B, D, H = self.steps, self.batch, self.dirs, self.hidden
        lay = self.layout
        want = ((self.Y, (T, D, B, H) if lay == 0 else (B, T, D, H)),
                (self.Y_h, (D, B, H) if lay == 0 else (B, D, H)),
                (self.Y_c, (D, B, H) if lay == 0 else (B, D, H)))
        for buf, shape in want:
            if buf is not None and self.ctx.shape(buf) != shape:
                raise fail(self.ctx, f"output of shape {self.ctx.shape(buf)}, expected {shape}")

    # -- indexing ------------------------------------------------------------------------------
    def row_at(self, t, b):
        """The row of X (seen as [steps * batch, inputs]) of step t, batch entry b."""
        return t * const_int(self.batch) + b if self.layout == 0 else \
            b * const_int(self.steps) + t

    def y_at(self, t, d: int, b, j):
        d = const_int(d)
        return (t, d, b, j) if self.layout == 0 else (b, t, d, j)

    def state_at(self, d: int, b, j):
        d = const_int(d)
        return (d, b, j) if self.layout == 0 else (b, d, j)

    def zero(self):
        return Const(0.0, self.dtype)

    def length(self, b):
        lens = self.ins.get("sequence_lens")
        return None if lens is None else Cast("int64", Load(lens, (b,)))

    def _bj(self, body):
        return loops([("b", self.batch), ("j", self.hidden)], body)

    # -- the kernel ----------------------------------------------------------------------------
    def body(self):
        return seq(*(self._direction(d) for d in range(self.dirs)))

    def _direction(self, d: int):
        reverse = self.direction == "reverse" or d == 1
        last = const_int(self.steps - 1)
        steps = loops([("s", self.steps)],
                      lambda s: self._step(d, last - s if reverse else s))
        final = self._bj(lambda b, j: self._final(d, b, j)) \
            if self.Y_h is not None or self.Y_c is not None else None
        return seq(self._bj(lambda b, j: self._initial(d, b, j)), steps, final)

    def _initial(self, d, b, j):
        stores = []
        for buf, name in ((self.h, "initial_h"), (self.c, "initial_c")):
            if buf is None:
                continue
            src = self.ins.get(name)
            value = self.zero() if src is None else Load(src, self.state_at(d, b, j))
            stores.append(Store(buf, (b, j), value))
        return seq(*stores)

    def _final(self, d, b, j):
        length = self.length(b)
        stores = []
        for out, state in ((self.Y_h, self.h), (self.Y_c, self.c)):
            if out is None:
                continue
            value = Load(state, (b, j))
            if length is not None:
                value = Select(cmp("gt", length, const_int(0)), value, self.zero())
            stores.append(Store(out, self.state_at(d, b, j), value))
        return seq(*stores)

    def _step(self, d: int, t):
        G, H = self.kind.gates, self.hidden
        if self.op != "GRU":
            return seq(self._product(d, t, 0, G * H, self.acc, 0, x=True, h=True),
                       self._update(d, t))
        # z and r whole, the hidden gate's input part, r, then its recurrent part
        if self.extra.get("linear_before_reset", 0):
            scale = None
        else:
            def scale(b, k):
                return Load(self.acc, (b, _plus(k, H)))
        return seq(self._product(d, t, 0, 2 * H, self.acc, 0, x=True, h=True),
                   self._product(d, t, 2 * H, H, self.acc, 2 * H, x=True, h=False),
                   self._bj(lambda b, j: gru_reset(self._cell(d, b, j))),
                   self._product(d, t, 2 * H, H, self.rec, 0, x=False, h=True, scale=scale),
                   self._update(d, t))

    def _product(self, d, t, first: int, rows: int, dst, col: int, x: bool, h: bool,
                 scale=None):
        """dst[b, col + r], for row g = first + r of W and R: when x, X_t[b]·W[g] + Wb[g]
        (from the input projection); when h, plus Rb[g] + (scale ⊙ H[b])·R[g]. The sum
        runs k outside r, so that the innermost loop is a contiguous row update."""
        B = self.ins["B"]
        GH, dc = self.kind.gates * self.hidden, const_int(d)

        def init(b, r):
            g = _plus(r, first)
            terms = [Load(self.proj, (dc, self.row_at(t, b), g))] if x else []
            if h and B is not None:
                terms.append(Load(B, (dc, _plus(g, GH))))
            value = self.zero() if not terms else terms[0] if len(terms) == 1 else \
                terms[0] + terms[1]
            return Store(dst, (b, _plus(r, col)), value)

        def per_entry(b):
            def src(k):
                state = Load(self.h, (b, k))
                return state if scale is None else scale(b, k) * state

            def accumulate(k, r):
                at = (b, _plus(r, col))
                return Store(dst, at, Load(dst, at) + src(k) * self._recurrent_weight(
                    dc, k, _plus(r, first)))
            return seq(loops([("r", rows)], lambda r: init(b, r)),
                       loops([("k", self.hidden), ("r", rows)], accumulate) if h else None)
        return loops([("b", self.batch)], per_entry)

    def _recurrent_weight(self, d, k, g):
        """R[d, g, k]; constant weights are read from R transposed at compile time."""
        R = self.ins["R"]
        value = self.ctx.const(R)
        if value is None:
            return Load(R, (d, g, k))
        if self._r_t is None:
            self._r_t = self.ctx.constant(np.ascontiguousarray(value.transpose(0, 2, 1)),
                                          "recurrence_t")
        return Load(self._r_t, (d, k, g))

    def project_inputs(self) -> None:
        """proj[d, row, g] = Wb[d, g] + X[row]·W[d, g] for all steps at once, before the
        recurrence: a batched GEMM (rows in X's own order) that the matmul schedule tiles.
        Constant weights are transposed now so that the GEMM reads them along its rows."""
        X, W, B = self.ins["X"], self.ins["W"], self.ins["B"]
        rows, GH = self.steps * self.batch, self.kind.gates * self.hidden
        x = view(X, rows, self.inputs)
        w = self.ctx.const(W)
        if w is None:
            def weight(d, k, j):
                return Load(W, (d, j, k))
        else:
            wt = self.ctx.constant(np.ascontiguousarray(w.transpose(0, 2, 1)), "weight_t")

            def weight(d, k, j):
                return Load(wt, (d, k, j))
        init = None if B is None else (lambda d, i, j: Load(B, (d, j)))
        gemm_kernels(self.ctx, self.proj, lambda d, i, k: Load(x, (i, k)), weight,
                     [("dir", self.dirs)], rows, GH, self.inputs, init)

    def _cell(self, d, b, j) -> Cell:
        P = self.ins.get("P")
        H = self.hidden

        def put(col, value):
            return Store(self.acc, (b, _plus(j, col)), value)
        return Cell(acc=lambda col: Load(self.acc, (b, _plus(j, col))), put=put, hidden=H,
                    acts=self.acts[d], clip=self.clip, h=Load(self.h, (b, j)),
                    c=None if self.c is None else Load(self.c, (b, j)),
                    rec=None if self.rec is None else Load(self.rec, (b, j)),
                    peep=(lambda n: None) if P is None else
                    (lambda n: Load(P, (const_int(d), _plus(j, n * H)))))

    def _update(self, d, t):
        """The cell update, then the new state kept where the step is valid and stored to Y
        (zeros where it is not)."""
        def body(b, j):
            cell = self._cell(d, b, j)
            stmts, h_col, c_col = self.kind.update(cell, **self.extra)
            length = self.length(b)
            valid = None if length is None else cmp("lt", t, length)

            def keep(new, old):
                return new if valid is None else Select(valid, new, old)
            new_h = cell.acc(h_col)
            commits = [Store(self.h, (b, j), keep(new_h, cell.h))]
            if c_col is not None:
                commits.append(Store(self.c, (b, j), keep(cell.acc(c_col), cell.c)))
            if self.Y is not None:
                commits.append(Store(self.Y, self.y_at(t, d, b, j),
                                     keep(new_h, self.zero())))
            return seq(stmts, *commits)
        return self._bj(body)


def _emit(ctx, op: str, ins: dict, attrs: dict) -> None:
    node = _Recurrence(ctx, op, ins, attrs)
    node.project_inputs()
    ctx.emit(node.body(), kind="recurrent", stage="steps")


@register("RNN", since=7)
def RNN(ctx, X, W, R, B=None, sequence_lens=None, initial_h=None, *, activation_alpha=(),
        activation_beta=(), activations=(), clip=None, direction="forward", hidden_size=None,
        layout=0):
    _emit(ctx, "RNN", dict(X=X, W=W, R=R, B=B, sequence_lens=sequence_lens,
                           initial_h=initial_h), locals())


@register("GRU", since=7)
def GRU(ctx, X, W, R, B=None, sequence_lens=None, initial_h=None, *, activation_alpha=(),
        activation_beta=(), activations=(), clip=None, direction="forward", hidden_size=None,
        layout=0, linear_before_reset=0):
    _emit(ctx, "GRU", dict(X=X, W=W, R=R, B=B, sequence_lens=sequence_lens,
                           initial_h=initial_h), locals())


@register("LSTM", since=7)
def LSTM(ctx, X, W, R, B=None, sequence_lens=None, initial_h=None, initial_c=None, P=None, *,
         activation_alpha=(), activation_beta=(), activations=(), clip=None,
         direction="forward", hidden_size=None, input_forget=0, layout=0):
    _emit(ctx, "LSTM", dict(X=X, W=W, R=R, B=B, sequence_lens=sequence_lens,
                            initial_h=initial_h, initial_c=initial_c, P=P), locals())
