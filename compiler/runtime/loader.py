"""Loading a compiled library with cffi: numpy in, numpy out, onnxruntime-like run()."""
from __future__ import annotations

import os
import re
import shutil
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

import cffi
import numpy as np

from .. import dtypes
from ..errors import OnnxcError, RuntimeFailure
from .device import DeviceArray, device_array, is_device_array

# NAME_run_with flags and NAME_device codes (templates/model.h.j2)
RUN_DEVICE_INPUTS, RUN_DEVICE_OUTPUTS = 1, 2
DEVICES = {0: "cpu", 1: "cuda"}
MAX_THREADS = 1024   # ONNXC_MAX_THREADS (runtime_c/onnxc_runtime.h)

_CDEF = """
typedef struct {name}_context {name}_context;
int {name}_create({name}_context **out);
void {name}_destroy({name}_context *ctx);
int {name}_run({name}_context *ctx, const void *const *inputs, void *const *outputs);
int {name}_run_with({name}_context *ctx, const void *const *inputs, void *const *outputs,
                    int flags);
int {name}_device(void);
int {name}_set_num_threads({name}_context *ctx, int num_threads);
int {name}_get_num_threads(const {name}_context *ctx);
const char *{name}_last_error(const {name}_context *ctx);
const char *{name}_status_string(int status);
size_t {name}_workspace_size(void);
int {name}_num_inputs(void);
int {name}_num_outputs(void);
const char *{name}_input_name(int i);
const char *{name}_output_name(int i);
int {name}_input_dtype(int i);
int {name}_output_dtype(int i);
int {name}_input_rank(int i);
int {name}_output_rank(int i);
const int64_t *{name}_input_shape(int i);
const int64_t *{name}_output_shape(int i);
int {name}_num_dims(void);
const char *{name}_dim_name(int d);
int64_t {name}_dim_min(int d);
int64_t {name}_dim_max(int d);
int {name}_input_dim(int i, int axis);
int {name}_output_dim(int i, int axis);
int {name}_set_dims({name}_context *ctx, const int64_t *values);
int {name}_get_input_shape(const {name}_context *ctx, int i, int64_t *shape);
int {name}_get_output_shape(const {name}_context *ctx, int i, int64_t *shape);
const void *{name}_output_data(const {name}_context *ctx, int i);
"""


@dataclass(frozen=True)
class NodeArg:
    """Like onnxruntime's NodeArg: name, shape, type string."""
    name: str
    shape: list
    type: str
    dtype: str


class CompiledModel:
    """A compiled model loaded in this process. One context: one run at a time."""

    def __init__(self, library: str | os.PathLike, name: str | None = None):
        path = Path(library).resolve()
        if not path.is_file():
            raise OnnxcError(f"{library}: no such library")
        self.name = name or path.stem
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", self.name):
            raise OnnxcError(f"{path.name}: not a library onnxc built (bad name)")
        self._ffi = cffi.FFI()
        self._ffi.cdef(_CDEF.format(name=self.name))
        try:
            self._lib = self._ffi.dlopen(_fresh_path(path))
            fn = self._fn
            fn("num_inputs")
        except (OSError, AttributeError) as exc:
            raise OnnxcError(f"{path}: cannot load as an onnxc library ({exc})") from None
        self.path = path
        self._inputs = self._describe("input")
        self._outputs = self._describe("output")
        # what run() checks and allocates, worked out once (a run of a small model takes
        # microseconds: the wrapper should not add more)
        self._expected = [(np.dtype(dtypes.dtype(a.dtype).numpy), tuple(a.shape))
                          for a in self._inputs]
        self._output_types = [(np.dtype(dtypes.dtype(a.dtype).numpy), tuple(a.shape))
                              for a in self._outputs]
        self._run = self._fn("run_with")
        self.device = DEVICES.get(self._fn("device")(), "unknown")
        self.dims = self._describe_dims()
        # (symbol index, axis) pairs of each input: where run() reads the dimensions' values
        self._input_symbols = [[(self._fn("input_dim")(i, a), a) for a in range(len(arg.shape))]
                               for i, arg in enumerate(self._inputs)]
        self._dim_values_c = self._ffi.new("int64_t[]", max(1, len(self.dims)))
        self._inputs = [self._symbolic(arg, syms) for arg, syms in
                        zip(self._inputs, self._input_symbols)]
        self._outputs = [self._symbolic(arg, [(self._fn("output_dim")(i, a), a)
                                              for a in range(len(arg.shape))])
                         for i, arg in enumerate(self._outputs)]
        self._shape_buf = self._ffi.new("int64_t[]", 1 + max(
            [len(a.shape) for a in self._inputs + self._outputs], default=0))
        self._lock = threading.Lock()
        # the input shapes of the last run and the output shapes they gave (_select)
        self._last_input_shapes: tuple | None = None
        self._last_output_shapes: list = []
        self._in_ptrs = self._ffi.new("void *[]", max(1, len(self._inputs)))
        self._out_ptrs = self._ffi.new("void *[]", max(1, len(self._outputs)))
        ctx = self._ffi.new(f"{self.name}_context **")
        self._check(self._fn("create")(ctx), None)
        self._ctx = self._ffi.gc(ctx[0], self._fn("destroy"))
        # outputs whose size the data decides live in the context: read after each run
        self._owned = [self._fn("output_data")(self._ctx, i) != self._ffi.NULL
                       for i in range(len(self._outputs))]

    def _describe_dims(self) -> dict[str, tuple[int, int]]:
        """Symbolic dimension name -> the (low, high) range compiled into the library."""
        return {self._ffi.string(self._fn("dim_name")(d)).decode():
                (int(self._fn("dim_min")(d)), int(self._fn("dim_max")(d)))
                for d in range(self._fn("num_dims")())}

    def _symbolic(self, arg: NodeArg, symbols) -> NodeArg:
        """As onnxruntime shows shapes: a varying axis is its dimension's name, else None."""
        names = list(self.dims)
        shape = [d if d >= 0 else (names[sym] if sym >= 0 else None)
                 for d, (sym, _) in zip(arg.shape, symbols)]
        return NodeArg(arg.name, shape, arg.type, arg.dtype)

    def _fn(self, suffix: str):
        return getattr(self._lib, f"{self.name}_{suffix}")

    def _describe(self, io: str) -> list[NodeArg]:
        args = []
        for i in range(self._fn(f"num_{io}s")()):
            rank = self._fn(f"{io}_rank")(i)
            shape_ptr = self._fn(f"{io}_shape")(i)
            dt = dtypes.from_onnx(self._fn(f"{io}_dtype")(i))
            args.append(NodeArg(self._ffi.string(self._fn(f"{io}_name")(i)).decode(),
                                [int(shape_ptr[d]) for d in range(rank)],
                                dtypes.onnx_type_string(dt), dt))
        return args

    def _check(self, status: int, ctx) -> None:
        if status != 0:
            # without a context, a GPU library keeps why it could not create one
            detail = self._ffi.string(self._fn("last_error")(ctx or self._ffi.NULL)).decode()
            detail = "" if detail == "no context" else detail
            what = self._ffi.string(self._fn("status_string")(status)).decode()
            raise RuntimeFailure(f"{self.name}: {what}{': ' + detail if detail else ''}")

    def get_inputs(self) -> list[NodeArg]:
        return list(self._inputs)

    def get_outputs(self) -> list[NodeArg]:
        return list(self._outputs)

    @property
    def workspace_size(self) -> int:
        return int(self._fn("workspace_size")())

    def set_num_threads(self, n: int) -> None:
        """Threads for the following runs, 1..MAX_THREADS; waits for a run in progress."""
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) \
                or not 1 <= n <= MAX_THREADS:
            raise ValueError(f"thread count must be an integer from 1 to {MAX_THREADS}, "
                             f"got {n!r}")
        with self._lock:   # the run in progress uses the pool this replaces
            self._check(self._fn("set_num_threads")(self._ctx, int(n)), self._ctx)

    def get_num_threads(self) -> int:
        with self._lock:
            return int(self._fn("get_num_threads")(self._ctx))

    def _input_arrays(self, input_feed: dict) -> list[np.ndarray]:
        if len(input_feed) != len(self._inputs) or any(
                a.name not in input_feed for a in self._inputs):
            known = {a.name for a in self._inputs}
            unknown = sorted(set(input_feed) - known)
            if unknown:
                raise ValueError(f"unknown input name(s) {unknown}; the model's inputs are "
                                 f"{sorted(known)}")
            missing = next(a.name for a in self._inputs if a.name not in input_feed)
            raise ValueError(f"input {missing!r} is missing from the feed")
        on_device = [is_device_array(input_feed[a.name]) for a in self._inputs]
        if any(on_device) and (self.device != "cuda" or not all(on_device)):
            raise ValueError("GPU arrays need a library built for a cuda target, and every "
                             "input on the GPU" if self.device == "cuda" else
                             f"{self.name} runs on the CPU: give it numpy arrays, not GPU ones")
        arrays = []
        for arg, (want, shape), gpu in zip(self._inputs, self._expected, on_device):
            value = input_feed[arg.name]
            arr = device_array(value, f"input {arg.name!r}") if gpu else \
                value if isinstance(value, np.ndarray) else np.asarray(value)
            self._check_array(arr, want, shape, f"input {arg.name!r}", arg.shape)
            arrays.append(arr if gpu or arr.flags.c_contiguous else np.ascontiguousarray(arr))
        return arrays

    def _check_array(self, arr, want: np.dtype, shape: tuple, what: str, shown) -> None:
        if arr.dtype != want:
            raise ValueError(f"{what}: expected dtype {want}, got {arr.dtype}")
        if arr.shape != shape and not self._fits(arr.shape, shape):
            raise ValueError(f"{what}: expected shape {shown}, got {list(arr.shape)}")

    def _device_outputs(self, outputs, shapes: list) -> list[DeviceArray]:
        """The caller's GPU arrays the run writes, checked against the shapes it gives."""
        if self.device != "cuda":
            raise ValueError(f"{self.name} runs on the CPU: it cannot write GPU arrays")
        if len(outputs) != len(self._outputs):
            raise ValueError(f"outputs: {len(self._outputs)} GPU arrays expected, got "
                             f"{len(outputs)}")
        arrays = []
        for arg, (want, _), shape, value in zip(self._outputs, self._output_types, shapes,
                                                outputs):
            if shape is None:
                raise ValueError(f"output {arg.name!r}: its size is decided by the data; it "
                                 "cannot be written into a given array")
            arr = device_array(value, f"output {arg.name!r}")
            self._check_array(arr, want, tuple(shape), f"output {arg.name!r}", shape)
            arrays.append(arr)
        return arrays

    @staticmethod
    def _fits(actual: tuple, declared: tuple) -> bool:
        """Same rank, and equal on every axis the library does not leave to run time."""
        return len(actual) == len(declared) and all(
            d < 0 or a == d for a, d in zip(actual, declared))

    def _dim_values(self, arrays: list[np.ndarray]) -> list[int]:
        """The symbolic dimensions' values as the input arrays give them; inputs that
        disagree on a value, or a value outside the compiled range, raise ValueError."""
        names = list(self.dims)
        values: dict[int, tuple[int, str]] = {}
        for arr, arg, symbols in zip(arrays, self._inputs, self._input_symbols):
            for sym, axis in symbols:
                if sym < 0:
                    continue
                seen = values.setdefault(sym, (arr.shape[axis], arg.name))
                if seen[0] != arr.shape[axis]:
                    raise ValueError(f"dimension {names[sym]!r} is {seen[0]} in input "
                                     f"{seen[1]!r} but {arr.shape[axis]} in input {arg.name!r}")
        for sym, (value, where) in sorted(values.items()):
            low, high = self.dims[names[sym]]
            if not low <= value <= high:
                raise ValueError(f"input {where!r}: dimension {names[sym]!r} = {value} is "
                                 f"outside the compiled range {low}..{high}")
        return [values[s][0] for s in range(len(names))]

    def _select(self, arrays) -> list[tuple | None]:
        """Set the context's dimension values from the inputs (under the lock); returns
        the output shapes they give (None: sized by the run itself). The same shapes as
        the last run's set nothing again (a small model runs in microseconds)."""
        if not self.dims:
            return [None if owned else shape
                    for (_, shape), owned in zip(self._output_types, self._owned)]
        shapes = tuple(a.shape for a in arrays)
        if shapes == self._last_input_shapes:
            return self._last_output_shapes
        for d, value in enumerate(self._dim_values(arrays)):
            self._dim_values_c[d] = value
        self._last_input_shapes = None      # a failure below leaves nothing cached
        self._check(self._fn("set_dims")(self._ctx, self._dim_values_c), self._ctx)
        outputs = [None if owned else tuple(self._current_shape(i))
                   for i, owned in enumerate(self._owned)]
        self._last_input_shapes, self._last_output_shapes = shapes, outputs
        return outputs

    def _current_shape(self, i: int) -> list[int]:
        self._check(self._fn("get_output_shape")(self._ctx, i, self._shape_buf), self._ctx)
        return [int(self._shape_buf[a]) for a in range(len(self._output_types[i][1]))]

    def _owned_copy(self, i: int) -> np.ndarray:
        """A copy of output i from the context's memory, in the shape the run gave it."""
        dt, shape = self._output_types[i][0], self._current_shape(i)
        count = int(np.prod(shape, dtype=np.int64))
        data = self._ffi.buffer(self._fn("output_data")(self._ctx, i), count * dt.itemsize)
        return np.frombuffer(data, dt, count).reshape(shape).copy()

    def run(self, output_names, input_feed: dict, run_options=None, outputs=None) -> list:
        """Same contract as onnxruntime.InferenceSession.run. A CUDA model also takes GPU
        arrays as inputs (all of them: read in place), and `outputs`, GPU arrays it writes
        in place and returns, one per output; otherwise outputs are new numpy arrays."""
        arrays = self._input_arrays(input_feed)
        flags = RUN_DEVICE_INPUTS if arrays and isinstance(arrays[0], DeviceArray) else 0
        with self._lock:   # one context runs one call at a time; callers may be threads
            shapes = self._select(arrays)
            if outputs is not None:
                results = self._device_outputs(outputs, shapes)
                flags |= RUN_DEVICE_OUTPUTS
            else:
                results = [None if shape is None else np.empty(shape, dt)
                           for shape, (dt, _) in zip(shapes, self._output_types)]
            self._call(arrays, results, flags)
            results = list(outputs) if outputs is not None else \
                [self._owned_copy(i) if o is None else o for i, o in enumerate(results)]
        if output_names is None:
            return results
        by_name = {a.name: o for a, o in zip(self._outputs, results)}
        missing = [n for n in output_names if n not in by_name]
        if missing:
            raise ValueError(f"unknown output name(s) {missing}; the model's outputs are "
                             f"{list(by_name)}")
        return [by_name[n] for n in output_names]

    def _call(self, arrays: list, results: list, flags: int) -> None:
        ffi, in_ptrs, out_ptrs = self._ffi, self._in_ptrs, self._out_ptrs
        buffers = [ffi.NULL if a is None else ffi.cast("void *", a.pointer)
                   if isinstance(a, DeviceArray) else ffi.from_buffer(a)
                   for a in arrays + results]   # alive through the call
        for i, b in enumerate(buffers[:len(arrays)]):
            in_ptrs[i] = b
        for i, b in enumerate(buffers[len(arrays):]):
            out_ptrs[i] = b
        status = self._run(self._ctx, in_ptrs, out_ptrs, flags)
        if status:
            self._check(status, self._ctx)


# path -> (inode, mtime) of the file first loaded from it in this process
_LOADED: dict[str, tuple[int, int]] = {}


def _fresh_path(path: Path) -> str:
    """dlopen returns the already-loaded object for a path it has seen, even when a rebuild
    replaced the file; a changed file is therefore loaded from a private copy."""
    st = path.stat()
    key, ident = str(path), (st.st_ino, st.st_mtime_ns)
    if _LOADED.setdefault(key, ident) == ident:
        return key
    copy = Path(tempfile.mkdtemp(prefix="onnxc_lib_")) / path.name
    shutil.copy2(path, copy)
    return str(copy)


def load(path, name: str | None = None) -> CompiledModel:
    return CompiledModel(path, name)
