"""Run-time symbols (RuntimeDim): the extents the data decides, as the passes see them."""
from __future__ import annotations

import dataclasses

import pytest
from onnxc.errors import IRError
from onnxc.loop.symbolic import dims_of
from onnxc.loop.verify import verify_program
from onnxc.lower.pipeline import compile_program
from onnxc.targets import get_target

from tests.ops.test_data_sized import reader_model


@pytest.fixture(scope="module")
def programs():
    target = get_target("host")
    return {name: compile_program(reader_model(shape), target)[1]
            for name, shape in (("static", [3, 4]), ("symbolic", ["rows", 4]))}


def test_one_symbol_per_extent_with_its_bound(programs):
    (static,) = programs["static"].runtime_dims
    assert static.bound == 12 and dims_of(static.source) == (1,)
    (symbolic,) = programs["symbolic"].runtime_dims
    assert str(symbolic.bound) != "12" and symbolic.var.name.startswith("len0_idx")


def test_memory_is_planned_at_the_bound(programs):
    """Static input shapes: a static arena, whatever the count."""
    assert isinstance(programs["static"].arena_size, int)
    var = programs["static"].runtime_dims[0].var
    assert any(var in dims_of(b) for b in programs["static"].outputs)


def test_outputs_over_a_run_time_symbol_are_owned_by_the_context(programs):
    """Transpose's and the Gather's outputs name the count; ReduceMax's [2] does not."""
    prog = programs["static"]
    owned = {name for name, _, _ in prog.extents}
    assert owned == {"out_y", "out_picked"} == {name for name, _ in prog.output_offsets}


def test_a_reader_before_the_producer_is_refused(programs):
    """verify_program: a kernel may name a run-time symbol only after the kernel that
    stores it."""
    prog = programs["static"]
    reordered = dataclasses.replace(prog, kernels=prog.kernels[::-1])
    with pytest.raises(IRError, match="len0_idx"):
        verify_program(reordered)
