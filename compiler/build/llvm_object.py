"""LLVM IR to an object file with llvmlite's target machine: the triple, CPU and features of
the target (the host's own CPU for a target built with -march=native, as the C compiler is),
optimized by LLVM's default O3 pipeline."""
from __future__ import annotations

import functools

from ..errors import BuildError
from ..targets import Target

OPT_LEVEL = 3
NATIVE_FLAG = "-march=native"


@functools.cache
def _llvm():
    import llvmlite.binding as llvm
    llvm.initialize_all_targets()
    llvm.initialize_all_asmprinters()
    return llvm


def cpu_and_features(target: Target) -> tuple[str, str]:
    llvm = _llvm()
    if NATIVE_FLAG in target.cflags:
        return llvm.get_host_cpu_name(), llvm.get_host_cpu_features().flatten()
    return target.cpu, ",".join(f"+{f}" for f in target.features)


def target_machine(target: Target):
    llvm = _llvm()
    cpu, features = cpu_and_features(target)
    try:
        found = llvm.Target.from_triple(target.triple)
    except RuntimeError as exc:
        raise BuildError(f"LLVM has no target for {target.triple!r}: {exc}") from None
    return found.create_target_machine(cpu=cpu, features=features, opt=OPT_LEVEL, reloc="pic",
                                       codemodel="default")


def data_layout(target: Target) -> str:
    return str(target_machine(target).target_data)


def compile_object(module_text: str, target: Target) -> bytes:
    """Parse, verify, optimize and emit the module as an object file for the target."""
    llvm = _llvm()
    try:
        module = llvm.parse_assembly(module_text)
        module.verify()
    except RuntimeError as exc:
        raise BuildError(f"the LLVM backend printed invalid IR: {exc}") from None
    machine = target_machine(target)
    tuning = llvm.create_pipeline_tuning_options(speed_level=OPT_LEVEL)
    tuning.loop_vectorization = True
    tuning.slp_vectorization = True
    builder = llvm.create_pass_builder(machine, tuning)
    builder.getModulePassManager().run(module, builder)
    return machine.emit_object(module)
