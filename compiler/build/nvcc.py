"""nvcc: a model's CUDA kernels built into the GPU image (a fatbin) its library embeds.

Device code only: the host side is C the host compiler builds, and the library loads the
image through the CUDA driver at run time, so nvcc needs no GPU and the library links no
CUDA library."""
from __future__ import annotations

import glob
import os
import shutil
import site
import subprocess
from pathlib import Path

from ..errors import BuildError
from ..targets import Target

NVCC_FLAGS = ("-fatbin", "-O3", "-std=c++17")
STRICT_FLAGS = ("-Werror", "all-warnings")


def find_nvcc() -> str:
    """$ONNXC_NVCC, nvcc on the PATH, $CUDA_HOME's, /usr/local/cuda's, or the one the
    nvidia-cuda-nvcc pip package installs."""
    candidates = [os.environ.get("ONNXC_NVCC"), shutil.which("nvcc"),
                  os.environ.get("CUDA_HOME") and os.path.join(os.environ["CUDA_HOME"],
                                                               "bin", "nvcc"),
                  "/usr/local/cuda/bin/nvcc",
                  *(path for folder in [*site.getsitepackages(), site.getusersitepackages()]
                    for path in sorted(glob.glob(os.path.join(folder, "nvidia", "cu*", "bin",
                                                              "nvcc"))))]
    found = next((c for c in candidates if c and os.access(c, os.X_OK)), None)
    if found is None:
        raise BuildError("nvcc not found: install the CUDA toolkit, or pip install "
                         "nvidia-cuda-nvcc nvidia-cuda-runtime nvidia-cuda-crt nvidia-nvvm, "
                         "or set ONNXC_NVCC")
    return found


def gencode(target: Target) -> str:
    """Machine code for the target's GPU, plus its PTX for newer GPUs to compile at load."""
    cc = target.gpu.compute_capability
    return f"-gencode=arch=compute_{cc},code=[sm_{cc},compute_{cc}]"


def build_image(source: Path, image: Path, target: Target, include: Path,
                strict: bool = False) -> Path:
    cmd = [find_nvcc(), *NVCC_FLAGS, *(STRICT_FLAGS if strict else ()), gencode(target),
           "-I", str(include), "-o", str(image), str(source)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise BuildError(f"nvcc failed on {source.name}:\n{' '.join(cmd)}\n"
                         f"{(proc.stderr + proc.stdout)[-4000:]}")
    return image
