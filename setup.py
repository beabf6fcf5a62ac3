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
    python_requires=">=3.11",
    # Version ranges: the releases the test suite has passed with (.ci/run installs into a new
    # virtual environment, so a release outside them shows there first). ml_dtypes holds the
    # 8/4/2-bit types (0.5.4 and 0.7 both pass; the low-bit tests compute their own expected
    # values); onnx decides the node suite and the reference semantics; llvmlite the LLVM
    # backend (LLVM 22), imported only when that backend is used.
    install_requires=["onnx>=1.23.2,<1.24", "ml_dtypes>=0.5.4,<0.8", "numpy>=2.4,<2.5",
                      "protobuf>=7.36,<8", "jinja2>=3.1,<4", "cffi>=2.0,<3",
                      "llvmlite>=0.50,<0.51"],
    extras_require={
        # the cross toolchain (clang, lld, libc headers) for the aarch64 targets
        "cross": ["ziglang>=0.17,<0.18"],
        # pytest-xdist: the suite runs on every core (-n auto); it compiles thousands of models.
        # onnxruntime is the reference of every numeric test; torch exports the benchmark
        # models; scikit-learn and skl2onnx make the sklearn model tests' models.
        "test": ["pytest>=9.0,<10", "pytest-xdist>=3.8,<4", "onnxruntime>=1.32,<1.33",
                 "ruff==0.17.6", "torch==2.13.0", "scikit-learn>=1.9,<1.10",
                 "skl2onnx>=1.20,<1.21", "ziglang>=0.17,<0.18"],
        "bench": ["onnxruntime>=1.32,<1.33", "torch==2.13.0"],
    },
    entry_points={"console_scripts": ["onnxc=onnxc.cli:main"]},
    cmdclass={"build_py": BuildWithData},
)
