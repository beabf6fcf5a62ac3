/* A C11 program that runs a model compiled by onnxc and prints every output value.
 *
 *   onnxc_example_c [--dims V0,V1,...] [input0.bin [input1.bin ...]]
 *
 * A model with symbolic dimensions (batch, sequence, ...) runs at the values --dims gives, in
 * the order NAME_dim_name lists them (default: each one's smallest value): one library serves
 * every shape, and NAME_get_input_shape / NAME_get_output_shape give the buffers' sizes.
 *
 * Input k is read from the k-th file (raw, dense, row-major, in the input's dtype) when one is
 * given, else filled deterministically: element i of input k is sin(i + k) for floats and
 * (i + k) % 7 - 3 for integers. Each output value is printed on its own line (%.9g for floats);
 * lines starting with '#' describe the model. Every call's status is checked.
 *
 * The model is named by the generated onnxc_model.h: ONNXC_FN(run) is <name>_run.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "onnxc_model.h"

/* Element size of an ONNX TensorProto.DataType code; 0 for a dtype this example does not know. */
static size_t dtype_size(int code) {
  switch (code) {
    case 1: case 6: case 12: return 4;       /* float, int32, uint32 */
    case 2: case 3: case 9: return 1;        /* uint8, int8, bool */
    case 4: case 5: return 2;                /* uint16, int16 */
    case 7: case 11: case 13: return 8;      /* int64, double, uint64 */
    default: return 0;
  }
}

static size_t element_count(int rank, const int64_t *shape) {
  size_t n = 1;
  for (int d = 0; d < rank; ++d) n *= (size_t)shape[d];
  return n;
}

static void fill(void *data, int code, size_t n, int k) {
  for (size_t i = 0; i < n; ++i) {
    double x = sin((double)i + k);
    long long v = (long long)((i + (size_t)k) % 7) - 3;
    switch (code) {
      case 1: ((float *)data)[i] = (float)x; break;
      case 11: ((double *)data)[i] = x; break;
      case 2: ((uint8_t *)data)[i] = (uint8_t)(v + 3); break;
      case 3: ((int8_t *)data)[i] = (int8_t)v; break;
      case 4: ((uint16_t *)data)[i] = (uint16_t)(v + 3); break;
      case 5: ((int16_t *)data)[i] = (int16_t)v; break;
      case 6: ((int32_t *)data)[i] = (int32_t)v; break;
      case 7: ((int64_t *)data)[i] = (int64_t)v; break;
      case 9: ((uint8_t *)data)[i] = (uint8_t)(v > 0); break;
      case 12: ((uint32_t *)data)[i] = (uint32_t)(v + 3); break;
      case 13: ((uint64_t *)data)[i] = (uint64_t)(v + 3); break;
      default: break;
    }
  }
}

static void print_value(const void *data, int code, size_t i) {
  switch (code) {
    case 1: printf("%.9g\n", (double)((const float *)data)[i]); break;
    case 11: printf("%.17g\n", ((const double *)data)[i]); break;
    case 2: printf("%u\n", (unsigned)((const uint8_t *)data)[i]); break;
    case 3: printf("%d\n", (int)((const int8_t *)data)[i]); break;
    case 4: printf("%u\n", (unsigned)((const uint16_t *)data)[i]); break;
    case 5: printf("%d\n", (int)((const int16_t *)data)[i]); break;
    case 6: printf("%ld\n", (long)((const int32_t *)data)[i]); break;
    case 7: printf("%lld\n", (long long)((const int64_t *)data)[i]); break;
    case 9: printf("%d\n", ((const uint8_t *)data)[i] ? 1 : 0); break;
    case 12: printf("%lu\n", (unsigned long)((const uint32_t *)data)[i]); break;
    case 13: printf("%llu\n", (unsigned long long)((const uint64_t *)data)[i]); break;
    default: break;
  }
}

static int read_file(const char *path, void *data, size_t bytes) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    fprintf(stderr, "error: cannot open %s\n", path);
    return 0;
  }
  size_t got = fread(data, 1, bytes, f);
  int extra = fgetc(f) != EOF;
  fclose(f);
  if (got != bytes || extra) {
    fprintf(stderr, "error: %s must hold exactly %zu bytes\n", path, bytes);
    return 0;
  }
  return 1;
}

static void describe(const char *io, int i, const char *name, int code, int rank,
                     const int64_t *shape) {
  printf("# %s %d \"%s\": dtype %d shape [", io, i, name, code);
  for (int d = 0; d < rank; ++d) printf(d ? ", %lld" : "%lld", (long long)shape[d]);
  printf("]\n");
}

/* Allocates the buffers at the context's dimension values, describing each tensor; returns 0
   on failure. */
static int prepare(ONNXC_CONTEXT *ctx, void **inputs, void **outputs, int argc, char **argv) {
  int64_t shape[16];
  for (int k = 0; k < ONNXC_FN(num_inputs)(); ++k) {
    int code = ONNXC_FN(input_dtype)(k), rank = ONNXC_FN(input_rank)(k);
    if (rank > 16 || ONNXC_FN(get_input_shape)(ctx, k, shape) != ONNXC_OK) return 0;
    size_t n = element_count(rank, shape), size = dtype_size(code);
    describe("input", k, ONNXC_FN(input_name)(k), code, rank, shape);
    if (size == 0) { fprintf(stderr, "error: input %d has dtype %d\n", k, code); return 0; }
    inputs[k] = calloc(n ? n : 1, size);
    if (!inputs[k]) { fprintf(stderr, "error: out of memory\n"); return 0; }
    if (k + 1 < argc) {
      if (!read_file(argv[k + 1], inputs[k], n * size)) return 0;
    } else {
      fill(inputs[k], code, n, k);
    }
  }
  for (int k = 0; k < ONNXC_FN(num_outputs)(); ++k) {
    int code = ONNXC_FN(output_dtype)(k), rank = ONNXC_FN(output_rank)(k);
    if (rank > 16 || ONNXC_FN(get_output_shape)(ctx, k, shape) != ONNXC_OK) return 0;
    size_t n = element_count(rank, shape), size = dtype_size(code);
    describe("output", k, ONNXC_FN(output_name)(k), code, rank, shape);
    if (size == 0) { fprintf(stderr, "error: output %d has dtype %d\n", k, code); return 0; }
    outputs[k] = calloc(n ? n : 1, size);
    if (!outputs[k]) { fprintf(stderr, "error: out of memory\n"); return 0; }
  }
  return 1;
}

static int run(ONNXC_CONTEXT *ctx, int argc, char **argv) {
  int n_in = ONNXC_FN(num_inputs)(), n_out = ONNXC_FN(num_outputs)();
  void **inputs = calloc((size_t)n_in + 1, sizeof *inputs);
  void **outputs = calloc((size_t)n_out + 1, sizeof *outputs);
  int ok = inputs && outputs && prepare(ctx, inputs, outputs, argc, argv);
  int status = ok ? ONNXC_FN(run)(ctx, (const void *const *)inputs, outputs) : ONNXC_ERR_ALLOC;
  if (ok && status != ONNXC_OK) {
    fprintf(stderr, "error: %s_run: %s: %s\n", ONNXC_MODEL_NAME_STRING,
            ONNXC_FN(status_string)(status), ONNXC_FN(last_error)(ctx));
  }
  for (int k = 0; ok && status == ONNXC_OK && k < n_out; ++k) {
    int code = ONNXC_FN(output_dtype)(k);
    int64_t shape[16];
    ONNXC_FN(get_output_shape)(ctx, k, shape);
    size_t n = element_count(ONNXC_FN(output_rank)(k), shape);
    for (size_t i = 0; i < n; ++i) print_value(outputs[k], code, i);
  }
  for (int k = 0; inputs && k < n_in; ++k) free(inputs[k]);
  for (int k = 0; outputs && k < n_out; ++k) free(outputs[k]);
  free(inputs);
  free(outputs);
  return ok ? status : -1;
}

/* Sets the symbolic dimensions from "V0,V1,...". */
static int set_dims(ONNXC_CONTEXT *ctx, const char *text) {
  int count = ONNXC_FN(num_dims)();
  int64_t values[64];
  if (count > 64) return ONNXC_ERR_ARGUMENT;
  for (int d = 0; d < count; ++d) {
    char *end = NULL;
    values[d] = strtoll(text, &end, 10);
    if (end == text || (*end != ',' && *end != '\0')) {
      fprintf(stderr, "error: --dims needs %d comma-separated values\n", count);
      return ONNXC_ERR_ARGUMENT;
    }
    printf("# dimension %s = %lld\n", ONNXC_FN(dim_name)(d), (long long)values[d]);
    text = *end ? end + 1 : end;
  }
  int status = ONNXC_FN(set_dims)(ctx, values);
  if (status != ONNXC_OK)
    fprintf(stderr, "error: %s_set_dims: %s\n", ONNXC_MODEL_NAME_STRING, ONNXC_FN(last_error)(ctx));
  return status;
}

int main(int argc, char **argv) {
  ONNXC_CONTEXT *ctx = NULL;
  int status = ONNXC_FN(create)(&ctx);
  if (status != ONNXC_OK) {
    fprintf(stderr, "error: %s_create: %s\n", ONNXC_MODEL_NAME_STRING,
            ONNXC_FN(status_string)(status));
    return 1;
  }
  printf("# model %s: %d input(s), %d output(s), workspace %zu bytes, %d thread(s)\n",
         ONNXC_MODEL_NAME_STRING, ONNXC_FN(num_inputs)(), ONNXC_FN(num_outputs)(),
         ONNXC_FN(workspace_size)(), ONNXC_FN(get_num_threads)(ctx));
  if (argc > 2 && strcmp(argv[1], "--dims") == 0) {
    status = set_dims(ctx, argv[2]);
    argc -= 2;
    argv += 2;
  }
  if (status == ONNXC_OK) status = run(ctx, argc, argv);
  else status = -1;
  ONNXC_FN(destroy)(ctx);
  if (status < 0) return 1;
  printf("# status %d (%s)\n", status, ONNXC_FN(status_string)(status));
  return status == ONNXC_OK ? 0 : 1;
}
