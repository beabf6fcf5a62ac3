/* Uses every onnxc_vmath.h function; test_runtime_c.py compiles it for several
   targets to check that the header builds warning-free everywhere. */
#include "onnxc_vmath.h"
#define USE(S) \
  void use_##S(float *o, const float *a, const float *b) { \
    onnxc_##S x = onnxc_load_##S(a), y = onnxc_load_##S(b); \
    x = onnxc_exp_##S(x) + onnxc_log_##S(y) + onnxc_tanh_##S(x) + onnxc_erf_##S(x) \
      + onnxc_sigmoid_##S(x) + onnxc_sqrt_##S(x) + onnxc_abs_##S(x) + onnxc_max_##S(x, y) \
      + onnxc_min_##S(x, y) + onnxc_floor_##S(x) + onnxc_ceil_##S(x) + onnxc_round_##S(x) \
      + onnxc_select_##S(x < y, x, y) + onnxc_broadcast_##S(a[0]); \
    onnxc_store_##S(o, x); \
  }
USE(v4f) USE(v8f) USE(v16f)
float use_scalar(float x) {
  return onnxc_exp_f(x) + onnxc_log_f(x) + onnxc_tanh_f(x) + onnxc_sigmoid_f(x) + onnxc_erf_f(x);
}
