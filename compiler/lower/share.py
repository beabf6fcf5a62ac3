"""share_identical_kernels: a kernel whose code equals an earlier one's, up to the names of
the buffers it reads and writes (a transformer's or a ResNet's repeated layers), runs that
kernel's function with its own buffers: the library holds each distinct kernel once, so the C
compiler sees a fraction of the code (bert4's four layers print one set of kernels)."""
from __future__ import annotations

import dataclasses

from ..loop.ir import Buffer, For, Kernel, Program, Var
from ..loop.visit import transform, walk


def _code_key(k: Kernel):
    """The kernel with its buffers and its loops' variables (some are named after buffers)
    renamed by order of first use: equal keys, equal code."""
    buffers: dict[str, Buffer] = {}
    loop_vars: dict[Var, Var] = {}
    for n in walk(k.body):
        buf = getattr(n, "buffer", None)
        if isinstance(buf, Buffer) and buf.name not in buffers:
            buffers[buf.name] = dataclasses.replace(buf, name=f"b{len(buffers)}")
        if isinstance(n, For) and n.var not in loop_vars:
            loop_vars[n.var] = Var(f"v{len(loop_vars)}", n.var.dtype)

    def rename(n):
        if isinstance(n, Var):
            return loop_vars.get(n, n)
        buf = getattr(n, "buffer", None)
        return dataclasses.replace(n, buffer=buffers[buf.name]) if isinstance(buf, Buffer) else n
    return k.op_type, transform(k.body, rename)


def share_identical_kernels(prog: Program, on_gpu: bool = False) -> Program:
    """Each kernel whose code an earlier kernel has gets code_of = that kernel's name. GPU
    kernels keep their own (each launch is configured apart)."""
    if on_gpu:
        return prog
    first: dict = {}
    kernels = []
    for k in prog.kernels:
        owner = first.setdefault(_code_key(k), k.name)
        kernels.append(k if owner == k.name else dataclasses.replace(k, code_of=owner))
    return dataclasses.replace(prog, kernels=tuple(kernels))
