"""onnxc: pip install . installs the `onnxc` package (from compiler/), its templates, target
descriptions and C runtime (copied into the package), and the `onnxc` command."""
import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent
DATA_DIRS = ("templates", "targets", "runtime_c")


class BuildWithData(build_py):
    """Copy the top-level data folders into the built package."""

    def run(self):
        super().run()
        for name in DATA_DIRS:
            dest = Path(self.build_lib) / "onnxc" / name
            shutil.rmtree(dest, ignore_errors=True)
            shutil.copytree(HERE / name, dest, ignore=shutil.ignore_patterns("__pycache__"))


setup(
    name="onnxc",
    version="0.1.0",
    description="Ahead-of-time compiler from ONNX models to standalone native libraries",
    packages=["onnxc"] + [f"onnxc.{p}" for p in ("frontend", "graph", "ops", "loop", "schedule",
                                                 "lower", "backend", "build", "runtime",
                                                 "models")],
    package_dir={"onnxc": "compiler"},
    package_data={"onnxc.models": ["*.onnx"]},
    python_requires=">=3.10",
    # llvmlite: the LLVM backend (--backend llvm), imported only when that backend is used
    install_requires=["onnx>=1.16", "numpy>=1.24", "jinja2>=3.0", "cffi>=1.15",
                      "llvmlite>=0.50"],
    extras_require={
        # the cross toolchain (clang, lld, libc headers) for the aarch64 targets
        "cross": ["ziglang>=0.13"],
        # pytest-xdist: the suite runs on every core (-n auto); it compiles thousands of models
        "test": ["pytest>=7", "pytest-xdist>=3", "onnxruntime>=1.17", "ruff", "torch==2.13.0",
                 "scikit-learn", "skl2onnx", "ziglang>=0.13"],
        "bench": ["onnxruntime>=1.17", "torch==2.13.0"],
    },
    entry_points={"console_scripts": ["onnxc=onnxc.cli:main"]},
    cmdclass={"build_py": BuildWithData},
)
