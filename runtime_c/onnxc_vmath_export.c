/* onnxc_vmath.h's functions out of line, for kernels compiled by the LLVM backend.
 *
 * The C backend inlines onnxc_vmath.h into its kernels; the LLVM backend's kernels call these
 * instead, so both backends compute the same bits. Vector functions take pointers, not
 * vectors: passing a 64-byte vector by value has different ABIs in GCC and LLVM on a CPU
 * without 512-bit registers, while pointers mean the same everywhere. Hidden: each library
 * carries its own copy.
 */
#include <stdint.h>

#include "onnxc_vmath.h"

#define ONNXC_EXPORT __attribute__((visibility("hidden")))

#define ONNXC_X_VECTOR(F, S, VF)                                           \
  ONNXC_EXPORT void onnxc_x_##F##_##S(float *out, const float *in) {       \
    onnxc_store_##S(out, onnxc_##F##_##S(onnxc_load_##S(in)));             \
  }
#define ONNXC_X_WIDTHS(F)                \
  ONNXC_X_VECTOR(F, v4f, onnxc_v4f)      \
  ONNXC_X_VECTOR(F, v8f, onnxc_v8f)      \
  ONNXC_X_VECTOR(F, v16f, onnxc_v16f)

ONNXC_X_WIDTHS(exp)
ONNXC_X_WIDTHS(log)
ONNXC_X_WIDTHS(tanh)
ONNXC_X_WIDTHS(sigmoid)
ONNXC_X_WIDTHS(erf)

/* scalars pass by value: their ABI is the same in every compiler */
ONNXC_EXPORT float onnxc_x_sigmoid_f(float x) { return onnxc_sigmoid_f(x); }
ONNXC_EXPORT double onnxc_x_sigmoid_d(double x) { return onnxc_sigmoid_d(x); }
ONNXC_EXPORT float onnxc_x_round_tf32(float x) { return onnxc_round_tf32(x); }
ONNXC_EXPORT int64_t onnxc_x_ipow(int64_t base, int64_t exp_) { return onnxc_ipow(base, exp_); }

#define ONNXC_X_STORAGE(NAME, STORED)                                                  \
  ONNXC_EXPORT float onnxc_x_##NAME##_to_f32(STORED v) { return onnxc_##NAME##_to_f32(v); } \
  ONNXC_EXPORT STORED onnxc_x_f32_to_##NAME(float f) { return onnxc_f32_to_##NAME(f); }

ONNXC_X_STORAGE(f16, uint16_t)
ONNXC_X_STORAGE(bf16, uint16_t)
ONNXC_X_STORAGE(f8e4m3fn, uint8_t)
ONNXC_X_STORAGE(f8e4m3fnuz, uint8_t)
ONNXC_X_STORAGE(f8e5m2, uint8_t)
ONNXC_X_STORAGE(f8e5m2fnuz, uint8_t)
ONNXC_X_STORAGE(f8e8m0, uint8_t)
ONNXC_X_STORAGE(f4e2m1, uint8_t)
