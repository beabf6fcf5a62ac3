/* Runs every onnxc_vmath.h function over the points in a file, at every width
 * and as a scalar, for test_runtime_c.py to check against Python's math.
 *
 * usage: vmath_driver IN OUT
 *   IN:  int32 n (a multiple of 16), n floats a, n floats b, n int32 masks
 *   OUT: records [char name[16]][int32 width][n floats]; width 1 = scalar
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "onnxc_vmath.h"

typedef struct {
  FILE *f;
  const float *a, *b;
  const int32_t *m;
  float *out;
  int32_t n;
} io;

static void emit(const io *s, const char *name, int32_t width) {
  char tag[16] = {0};
  strncpy(tag, name, sizeof tag - 1);
  fwrite(tag, 1, sizeof tag, s->f);
  fwrite(&width, sizeof width, 1, s->f);
  fwrite(s->out, sizeof(float), (size_t)s->n, s->f);
}

#define UNARY(S, W, F)                                                            \
  do {                                                                            \
    for (int32_t i = 0; i < s->n; i += W)                                         \
      onnxc_store_##S(s->out + i, onnxc_##F##_##S(onnxc_load_##S(s->a + i)));     \
    emit(s, #F, W);                                                               \
  } while (0)

#define BINARY(S, W, F)                                                           \
  do {                                                                            \
    for (int32_t i = 0; i < s->n; i += W)                                         \
      onnxc_store_##S(s->out + i, onnxc_##F##_##S(onnxc_load_##S(s->a + i),       \
                                                  onnxc_load_##S(s->b + i)));     \
    emit(s, #F, W);                                                               \
  } while (0)

/* select, unaligned load/store and broadcast for one width. */
#define DATA_OPS(S, W, VI)                                                        \
  do {                                                                            \
    for (int32_t i = 0; i < s->n; i += W) {                                       \
      VI mask;                                                                    \
      memcpy(&mask, s->m + i, sizeof mask);                                       \
      onnxc_store_##S(s->out + i, onnxc_select_##S(mask, onnxc_load_##S(s->a + i), \
                                                   onnxc_load_##S(s->b + i)));    \
    }                                                                             \
    emit(s, "select", W);                                                         \
    /* copy through buffers offset by 1 and 3 floats: both unaligned */           \
    float *src = malloc(sizeof(float) * (size_t)(s->n + 4));                      \
    float *dst = malloc(sizeof(float) * (size_t)(s->n + 4));                      \
    memcpy(src + 1, s->a, sizeof(float) * (size_t)s->n);                          \
    for (int32_t i = 0; i < s->n; i += W)                                         \
      onnxc_store_##S(dst + 3 + i, onnxc_load_##S(src + 1 + i));                  \
    memcpy(s->out, dst + 3, sizeof(float) * (size_t)s->n);                        \
    free(src);                                                                    \
    free(dst);                                                                    \
    emit(s, "loadstore", W);                                                      \
    for (int32_t i = 0; i < s->n; i++) {                                          \
      float lanes[W];                                                             \
      onnxc_store_##S(lanes, onnxc_broadcast_##S(s->a[i]));                       \
      int same = 1;                                                               \
      for (int k = 1; k < W; k++) same &= memcmp(&lanes[k], &lanes[0], 4) == 0;   \
      s->out[i] = same ? lanes[i % W] : 12345.0f;                                 \
    }                                                                             \
    emit(s, "broadcast", W);                                                      \
  } while (0)

#define ALL_OPS(S, W, VI)                                                         \
  static void run_##S(const io *s) {                                              \
    UNARY(S, W, exp); UNARY(S, W, log); UNARY(S, W, tanh); UNARY(S, W, erf);      \
    UNARY(S, W, sigmoid); UNARY(S, W, sqrt); UNARY(S, W, abs);                    \
    UNARY(S, W, floor); UNARY(S, W, ceil); UNARY(S, W, round);                    \
    BINARY(S, W, max); BINARY(S, W, min);                                         \
    DATA_OPS(S, W, VI);                                                           \
  }

ALL_OPS(v4f, 4, onnxc_v4i)
ALL_OPS(v8f, 8, onnxc_v8i)
ALL_OPS(v16f, 16, onnxc_v16i)

#define SCALAR(F)                                                                 \
  do {                                                                            \
    for (int32_t i = 0; i < s->n; i++) s->out[i] = onnxc_##F##_f(s->a[i]);        \
    emit(s, #F, 1);                                                               \
  } while (0)

static void run_scalar(const io *s) {
  SCALAR(exp); SCALAR(log); SCALAR(tanh); SCALAR(erf); SCALAR(sigmoid);
}

static int read_input(FILE *f, io *s) {
  if (fread(&s->n, sizeof s->n, 1, f) != 1 || s->n <= 0 || s->n % 16) return 1;
  size_t n = (size_t)s->n;
  float *a = malloc(n * sizeof *a), *b = malloc(n * sizeof *b);
  int32_t *m = malloc(n * sizeof *m);
  s->out = malloc(n * sizeof *s->out);
  s->a = a, s->b = b, s->m = m;
  if (!a || !b || !m || !s->out) return 1;
  return fread(a, sizeof *a, n, f) != n || fread(b, sizeof *b, n, f) != n ||
         fread(m, sizeof *m, n, f) != n;
}

int main(int argc, char **argv) {
  if (argc != 3) return 2;
  io s = {0};
  FILE *in = fopen(argv[1], "rb");
  if (!in || read_input(in, &s)) return 3;
  fclose(in);
  s.f = fopen(argv[2], "wb");
  if (!s.f) return 4;
  run_v4f(&s);
  run_v8f(&s);
  run_v16f(&s);
  run_scalar(&s);
  fclose(s.f);
  free((void *)s.a);
  free((void *)s.b);
  free((void *)s.m);
  free(s.out);
  return 0;
}
