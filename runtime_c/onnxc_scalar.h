/* onnxc scalar helpers for generated kernels (header only): storage-float conversions,
 * sub-byte integers, NaN-propagating max/min, sigmoid for float64, integer pow.
 *
 * Plain C that CUDA compiles too: under nvcc every helper is a device function, so the
 * CPU and GPU kernels spell these operations the same way and convert the same bits.
 */
#ifndef ONNXC_SCALAR_H
#define ONNXC_SCALAR_H

#include <math.h>
#include <stdint.h>
#include <string.h>

#ifdef __CUDACC__
#define ONNXC_SCALAR_FN static __device__ __forceinline__
#else
/* Always inlined: kernels call these in hot loops. */
#define ONNXC_SCALAR_FN static inline __attribute__((always_inline))
#endif

/* 16-bit floats are storage types: loads widen them to float, stores narrow with round to
   nearest even (NaN stays NaN, overflow gives inf, subnormals are exact). */
ONNXC_SCALAR_FN float onnxc_f16_to_f32(uint16_t h) {
  uint32_t sign = (uint32_t)(h & 0x8000u) << 16, exp = (h >> 10) & 0x1fu, man = h & 0x3ffu;
  uint32_t bits;
  if (exp == 0x1fu) {
    bits = sign | 0x7f800000u | (man << 13);                  /* inf, NaN */
  } else if (exp != 0) {
    bits = sign | ((exp + 112u) << 23) | (man << 13);        /* normal: rebias 15 -> 127 */
  } else {
    float v = (float)man * 5.9604644775390625e-8f;           /* subnormal: man * 2^-24 */
    memcpy(&bits, &v, sizeof bits);
    bits |= sign;
  }
  float f;
  memcpy(&f, &bits, sizeof f);
  return f;
}

ONNXC_SCALAR_FN uint16_t onnxc_f32_to_f16(float f) {
  uint32_t x;
  memcpy(&x, &f, sizeof x);
  uint32_t sign = (x >> 16) & 0x8000u, ax = x & 0x7fffffffu;
  if (ax > 0x7f800000u) return (uint16_t)(sign | 0x7e00u);      /* NaN */
  if (ax >= 0x477ff000u) return (uint16_t)(sign | 0x7c00u);     /* rounds past 65504 */
  if (ax < 0x38800000u) {                                        /* below 2^-14: subnormal */
    float a;
    memcpy(&a, &ax, sizeof a);
    /* 2^-24 units; adding 0.5 * 2^24 rounds to nearest even in float arithmetic */
    float scaled = a + 0.5f;
    uint32_t bits;
    memcpy(&bits, &scaled, sizeof bits);
    return (uint16_t)(sign | (bits - 0x3f000000u));
  }
  uint32_t odd = (ax >> 13) & 1u;
  ax += 0xc8000fffu + odd;                                       /* rebias, round to even */
  return (uint16_t)(sign | (ax >> 13));
}

ONNXC_SCALAR_FN float onnxc_bf16_to_f32(uint16_t h) {
  uint32_t bits = (uint32_t)h << 16;
  float f;
  memcpy(&f, &bits, sizeof f);
  return f;
}

ONNXC_SCALAR_FN uint16_t onnxc_f32_to_bf16(float f) {
  uint32_t x;
  memcpy(&x, &f, sizeof x);
  if ((x & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((x >> 16) | 0x40u);   /* quiet NaN */
  x += 0x7fffu + ((x >> 16) & 1u);                                             /* to even */
  return (uint16_t)(x >> 16);
}

/* 8- and 4-bit floats are storage types too, one code per byte, converted as ml_dtypes does
   (the ONNX reference): round to nearest even, overflow to inf (IEEE kind) or NaN (FN, FNUZ)
   or the largest value (float4, which has neither). FN's NaN is S.1111.111, FNUZ's is 0x80
   and it has no -0. ONNX's saturate=1 clamps before converting (compiler/ops). */
enum { ONNXC_MF_IEEE, ONNXC_MF_FN, ONNXC_MF_FNUZ, ONNXC_MF_NONE };

ONNXC_SCALAR_FN float onnxc_mf_max(int ebits, int mbits, int bias, int kind) {
  int top = (1 << ebits) - 1 - (kind == ONNXC_MF_IEEE);
  float man = 2.0f - ldexpf(1.0f, (kind == ONNXC_MF_FN) - mbits);
  return ldexpf(man, top - bias);
}

ONNXC_SCALAR_FN float onnxc_mf_to_f32(uint8_t v, int ebits, int mbits, int bias, int kind) {
  int sign = (v >> (ebits + mbits)) & 1, top = (1 << ebits) - 1;
  int e = (v >> mbits) & top, m = v & ((1 << mbits) - 1);
  int nan = (kind == ONNXC_MF_FNUZ && v == 0x80) || (kind == ONNXC_MF_IEEE && e == top && m)
            || (kind == ONNXC_MF_FN && e == top && m == (1 << mbits) - 1);
  float mag = kind == ONNXC_MF_IEEE && e == top ? INFINITY
              : ldexpf((float)(m + (e ? 1 << mbits : 0)), (e ? e : 1) - bias - mbits);
  return copysignf(nan ? NAN : mag, sign ? -1.0f : 1.0f);
}

ONNXC_SCALAR_FN uint8_t onnxc_f32_to_mf(float f, int ebits, int mbits, int bias, int kind) {
  unsigned sign = signbit(f) ? 1u << (ebits + mbits) : 0u, top = (1u << ebits) - 1u;
  unsigned nan[] = {sign | top << mbits | 1u << (mbits - 1), sign | 0x7fu, 0x80u, sign ^ 0x8u};
  unsigned huge[] = {sign | top << mbits, sign | 0x7fu, 0x80u, sign | 0x7u};
  float a = fabsf(f), r;
  int e, emin = 1 - bias;
  if (isnan(f)) return (uint8_t)nan[kind];
  if (isinf(f)) return (uint8_t)huge[kind];
  frexpf(a, &e);
  e = e - 1 < emin ? emin : e - 1;
  r = nearbyintf(ldexpf(a, mbits - e));              /* exact scaling, then to even */
  if (ldexpf(r, e - mbits) > onnxc_mf_max(ebits, mbits, bias, kind)) return (uint8_t)huge[kind];
  if (r == 0.0f) return (uint8_t)(kind == ONNXC_MF_FNUZ ? 0u : sign);
  if (r >= ldexpf(1.0f, mbits + 1)) { r *= 0.5f; e += 1; }   /* rounded up a binade */
  unsigned field = r < ldexpf(1.0f, mbits) ? 0u : (unsigned)(e + bias);
  return (uint8_t)(sign | field << mbits | ((unsigned)r & ((1u << mbits) - 1u)));
}

#define ONNXC_MF(NAME, E, M, BIAS, KIND)                                                 \
  ONNXC_SCALAR_FN float onnxc_##NAME##_to_f32(uint8_t v) {                              \
    return onnxc_mf_to_f32(v, E, M, BIAS, ONNXC_MF_##KIND);                             \
  }                                                                                      \
  ONNXC_SCALAR_FN uint8_t onnxc_f32_to_##NAME(float f) {                                \
    return onnxc_f32_to_mf(f, E, M, BIAS, ONNXC_MF_##KIND);                             \
  }
ONNXC_MF(f8e4m3fn, 4, 3, 7, FN)
ONNXC_MF(f8e4m3fnuz, 4, 3, 8, FNUZ)
ONNXC_MF(f8e5m2, 5, 2, 15, IEEE)
ONNXC_MF(f8e5m2fnuz, 5, 2, 16, FNUZ)
ONNXC_MF(f4e2m1, 2, 1, 1, NONE)

/* float8e8m0: a bare exponent 2^(v - 127), 0xff is NaN. Ties round up (the implicit bit is
   the lsb), zero, negative and too large values are NaN, as ml_dtypes converts. */
ONNXC_SCALAR_FN float onnxc_f8e8m0_to_f32(uint8_t v) {
  return v == 0xffu ? NAN : ldexpf(1.0f, (int)v - 127);
}

ONNXC_SCALAR_FN uint8_t onnxc_f32_to_f8e8m0(float f) {
  uint32_t x;
  memcpy(&x, &f, sizeof x);
  uint32_t e = x >> 23, m = x & 0x7fffffu;
  if (x == 0u || e >= 0xffu) return 0xffu;        /* zero, negative (sign in e), inf, NaN */
  uint32_t up = (m >> 22) && ((m & 0x3fffffu) || e);
  return (uint8_t)(e + up > 0xfeu ? 0xffu : e + up);
}

/* Sub-byte integers: the low bits of a byte hold the two's-complement code; a narrowing
   keeps the low bits (ONNX's fixed-point rule: discard the higher bits) */
ONNXC_SCALAR_FN int8_t onnxc_i4_to_i8(uint8_t v) { return (int8_t)(((v & 0xf) ^ 0x8) - 0x8); }
ONNXC_SCALAR_FN int8_t onnxc_i2_to_i8(uint8_t v) { return (int8_t)(((v & 0x3) ^ 0x2) - 0x2); }

/* max/min with the lanes' NaN rule (a NaN operand wins); libm's fmaxf is an out-of-line
   call that ignores NaN */
ONNXC_SCALAR_FN float onnxc_max_f(float a, float b) { return (a > b || a != a) ? a : b; }
ONNXC_SCALAR_FN float onnxc_min_f(float a, float b) { return (a < b || a != a) ? a : b; }

/* x rounded to TF32, the tensor cores' float32 operand (10 of the 23 mantissa bits): to
   nearest, ties away from zero, as cvt.rna.tf32.f32 does; the magnitude's bits round, so a
   carry reaches the next power of two or infinity; inf and NaN stay. */
ONNXC_SCALAR_FN float onnxc_round_tf32(float x) {
  uint32_t bits;
  memcpy(&bits, &x, sizeof bits);
  if ((bits & 0x7f800000u) == 0x7f800000u) return x;
  bits = ((bits + 0x1000u) >> 13) << 13;
  memcpy(&x, &bits, sizeof x);
  return x;
}

ONNXC_SCALAR_FN double onnxc_sigmoid_d(double x) {
  /* stable both ways: exp of a non-positive number never overflows */
  double e = exp(-fabs(x));
  return x >= 0 ? 1.0 / (1.0 + e) : e / (1.0 + e);
}

/* integer Pow: repeated squaring; negative exponents truncate like C integer division */
ONNXC_SCALAR_FN int64_t onnxc_ipow(int64_t base, int64_t exp_) {
  if (exp_ < 0) return base == 1 ? 1 : (base == -1 ? ((exp_ & 1) ? -1 : 1) : 0);
  int64_t result = 1;
  while (exp_) {
    if (exp_ & 1) result *= base;
    base *= base;
    exp_ >>= 1;
  }
  return result;
}

#endif /* ONNXC_SCALAR_H */
