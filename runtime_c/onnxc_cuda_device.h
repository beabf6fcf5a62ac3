/* onnxc device helpers for generated CUDA kernels (header only).
 *
 * The scalar helpers the C kernels call (storage floats, sub-byte integers, NaN-propagating
 * max/min, integer pow) come from onnxc_scalar.h as device functions; this adds the ones the
 * CPU builds from vector code, and a bit cast C++ accepts.
 */
#ifndef ONNXC_CUDA_DEVICE_H
#define ONNXC_CUDA_DEVICE_H

#include <math.h>
#include <stdint.h>

#include "onnxc_scalar.h"

/* 1 / (1 + e^-x) without forming inf / inf: exp of a non-positive number never overflows. */
static __device__ __forceinline__ float onnxc_sigmoid_f(float x) {
  float e = expf(-fabsf(x));
  return x >= 0.0f ? 1.0f / (1.0f + e) : e / (1.0f + e);
}

/* The bits of x read as To (ONNX BitCast); memcpy is how C++ defines type punning. */
template <typename To, typename From>
static __device__ __forceinline__ To onnxc_bitcast(From x) {
  static_assert(sizeof(To) == sizeof(From), "a bit cast keeps the width");
  To y;
  memcpy(&y, &x, sizeof y);
  return y;
}

#endif /* ONNXC_CUDA_DEVICE_H */
