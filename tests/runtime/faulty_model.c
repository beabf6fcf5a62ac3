/* A stand-in model library with the API the .npy driver calls, whose run reads one float past
   its input: tests/test_sanitize.py checks that `onnxc verify --sanitize` reports it. One
   float32 input and one output of shape [4]. */
#include <stdint.h>
#include <stdlib.h>

#define API __attribute__((visibility("default")))
static const int64_t SHAPE[1] = {4};

API int faulty_num_inputs(void) { return 1; }
API int faulty_num_outputs(void) { return 1; }
API int faulty_input_dtype(int i) { return i == 0 ? 1 : -1; }
API int faulty_output_dtype(int i) { return i == 0 ? 1 : -1; }
API int faulty_input_rank(int i) { return i == 0 ? 1 : -1; }
API int faulty_output_rank(int i) { return i == 0 ? 1 : -1; }
API const int64_t *faulty_input_shape(int i) { return i == 0 ? SHAPE : NULL; }
API const int64_t *faulty_output_shape(int i) { return i == 0 ? SHAPE : NULL; }
API int faulty_create(void **ctx) { *ctx = malloc(1); return *ctx == NULL; }
API void faulty_destroy(void *ctx) { free(ctx); }
API const char *faulty_last_error(const void *ctx) { (void)ctx; return ""; }

/* Sums a window of 4 floats starting at each index: the last three read past the input. */
API int faulty_run(void *ctx, const void *const *inputs, void *const *outputs) {
  (void)ctx;
  const float *x = inputs[0];
  float *y = outputs[0];
  for (int i = 0; i < 4; i++) y[i] = x[i] + x[i + 3];
  return 0;
}
