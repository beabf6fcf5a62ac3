"""The pieces of RNN, GRU and LSTM (ops/recurrent.py) that are not loops: the activation
functions the `activations` attribute names, and the cell update of each op as statements
over one element (b, j) of the batch and hidden axes.

A cell update reads the gate pre-activations from the per-step scratch block `acc`
([batch, gates * hidden], one column per row of W) and writes its intermediate values back
into slots it no longer needs, so that every value is computed once (the loop IR has no
local variables). It returns the slot of the new hidden state (and of the new cell state).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from ..loop.ir import Binary, Const, Expr, Select, Store, Unary, cmp, seq


def _c(value: float, x: Expr) -> Const:
    return Const(float(value), x.dtype)


def _softplus(x, a, b):
    # log(1 + e^x) without overflow: max(x, 0) + log(1 + e^-|x|)
    return Binary("max", x, _c(0, x)) + Unary("log", _c(1, x) + Unary("exp", -Unary("abs", x)))


# lower-case name -> (takes alpha, takes beta, default alpha, default beta, f(x, alpha, beta)).
# Names are matched without case and alpha/beta are consumed in the order of the functions
# that take them, both as onnxruntime does; its defaults are those of LeakyRelu (0.01),
# HardSigmoid (0.2, 0.5) and Elu (1.0), and 0 elsewhere.
ACTIVATIONS: dict[str, tuple[bool, bool, float, float, Callable]] = {
    "relu": (False, False, 0.0, 0.0, lambda x, a, b: Binary("max", x, _c(0, x))),
    "tanh": (False, False, 0.0, 0.0, lambda x, a, b: Unary("tanh", x)),
    "sigmoid": (False, False, 0.0, 0.0, lambda x, a, b: Unary("sigmoid", x)),
    "affine": (True, True, 0.0, 0.0, lambda x, a, b: x * _c(a, x) + _c(b, x)),
    "leakyrelu": (True, False, 0.01, 0.0,
                  lambda x, a, b: Select(cmp("ge", x, _c(0, x)), x, x * _c(a, x))),
    "thresholdedrelu": (True, False, 0.0, 0.0,
                        lambda x, a, b: Select(cmp("gt", x, _c(a, x)), x, _c(0, x))),
    "scaledtanh": (True, True, 0.0, 0.0,
                   lambda x, a, b: Unary("tanh", x * _c(b, x)) * _c(a, x)),
    "hardsigmoid": (True, True, 0.2, 0.5, lambda x, a, b: Binary(
        "min", Binary("max", x * _c(a, x) + _c(b, x), _c(0, x)), _c(1, x))),
    "elu": (True, False, 1.0, 0.0, lambda x, a, b: Select(
        cmp("ge", x, _c(0, x)), x, (Unary("exp", x) - _c(1, x)) * _c(a, x))),
    "softsign": (False, False, 0.0, 0.0, lambda x, a, b: x / (_c(1, x) + Unary("abs", x))),
    "softplus": (False, False, 0.0, 0.0, _softplus),
}

Activation = Callable[[Expr], Expr]


def activation_functions(names, alphas, betas, per_direction: int, directions: int,
                         error) -> list[list[Activation]]:
    """The activation functions of each direction; `error(message)` makes the exception to
    raise."""
    names = list(names)
    if len(names) != per_direction * directions:
        raise error(f"{len(names)} activations, expected {per_direction * directions} "
                    f"({per_direction} per direction)")
    alphas, betas = iter(alphas or ()), iter(betas or ())
    funcs = []
    for name in names:
        entry = ACTIVATIONS.get(str(name).lower())
        if entry is None:
            raise error(f"unknown activation {name!r}; expected one of "
                        f"{', '.join(sorted(ACTIVATIONS))} (any case)")
        takes_alpha, takes_beta, alpha, beta, fn = entry
        alpha = next(alphas, alpha) if takes_alpha else alpha
        beta = next(betas, beta) if takes_beta else beta
        funcs.append(lambda x, fn=fn, a=float(alpha), b=float(beta): fn(x, a, b))
    return [funcs[d * per_direction:(d + 1) * per_direction] for d in range(directions)]


@dataclass(frozen=True)
class Cell:
    """What a cell update works with, at one element (b, j) of one step.

    acc(col) loads acc[b, j + col]; put(col, value) stores it. rec is the recurrent part of
    GRU's hidden gate (rec[b, j]); h and c the states before the step; peep(n) the n-th
    peephole weight of j (None without P); clip bounds a pre-activation."""
    acc: Callable[[int], Expr]
    put: Callable[[int, Expr], Store]
    hidden: int
    acts: list
    clip: Callable[[Expr], Expr]
    h: Expr
    c: Expr | None = None
    rec: Expr | None = None
    peep: Callable[[int], Expr | None] = lambda n: None


def rnn_update(cell: Cell, **_) -> tuple:
    """Ht = f(clip(acc))."""
    (f,) = cell.acts
    return seq(cell.put(0, f(cell.clip(cell.acc(0))))), 0, None


def gru_reset(cell: Cell) -> Store:
    """r = f(clip(acc_r)), stored before the recurrent part of the hidden gate reads it."""
    return cell.put(cell.hidden, cell.acts[0](cell.clip(cell.acc(cell.hidden))))


def gru_update(cell: Cell, linear_before_reset: int = 0, **_) -> tuple:
    """z and the hidden gate h (r already done), then Ht = (1 - z) h + z Ht-1 into r's slot."""
    f, g = cell.acts
    z, r, h = 0, cell.hidden, 2 * cell.hidden
    one = Const(1.0, cell.h.dtype)
    rec = cell.acc(r) * cell.rec if linear_before_reset else cell.rec
    return seq(cell.put(z, f(cell.clip(cell.acc(z)))),
               cell.put(h, g(cell.clip(cell.acc(h) + rec))),
               cell.put(r, (one - cell.acc(z)) * cell.acc(h) + cell.acc(z) * cell.h)), r, None


def _peephole(cell: Cell, n: int, state: Expr, x: Expr) -> Expr:
    p = cell.peep(n)
    return x if p is None else x + p * state


def lstm_update(cell: Cell, input_forget: int = 0, **_) -> tuple:
    """Gates i, o, f, c (columns in that order; peepholes i, o, f): Ct = f Ct-1 + i g(c)
    into c's slot, Ht = o h(Ct) into i's slot."""
    f, g, h = cell.acts
    H = cell.hidden
    i, o, fg, c = 0, H, 2 * H, 3 * H
    one = Const(1.0, cell.h.dtype)
    forget = one - cell.acc(i) if input_forget else \
        f(cell.clip(_peephole(cell, 2, cell.c, cell.acc(fg))))
    return seq(
        cell.put(i, f(cell.clip(_peephole(cell, 0, cell.c, cell.acc(i))))),
        cell.put(fg, forget),
        cell.put(c, g(cell.clip(cell.acc(c)))),
        cell.put(c, cell.acc(fg) * cell.c + cell.acc(i) * cell.acc(c)),
        cell.put(o, f(cell.clip(_peephole(cell, 1, cell.acc(c), cell.acc(o))))),
        cell.put(i, cell.acc(o) * h(cell.acc(c)))), i, c


def clipper(clip) -> Callable[[Expr], Expr]:
    if clip is None:
        return lambda x: x
    bound = float(clip)
    return lambda x: Binary("min", Binary("max", x, Const(-bound, x.dtype)),
                            Const(bound, x.dtype))
