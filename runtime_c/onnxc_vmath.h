/* onnxc vector math for generated kernels (header only, GCC vector extensions).
 *
 * Types: onnxc_v{4,8,16}f (float lanes) and onnxc_v{4,8,16}i (int32 lanes,
 * also the type of vector comparisons: -1 for true lanes, 0 for false).
 * For every width W in {4, 8, 16}:
 *   onnxc_load_vWf(const float *p), onnxc_store_vWf(float *p, v)  unaligned
 *   onnxc_store_strided_vWf(float *p, int64_t stride, v)  lane i to p[i * stride]
 *   onnxc_broadcast_vWf(float x)
 *   onnxc_select_vWf(mask, a, b)            mask ? a : b per lane
 *   onnxc_abs/max/min/floor/ceil/round/sqrt_vWf   exact (round: half to even)
 *   onnxc_exp/log/tanh/sigmoid/erf_vWf    max relative error measured
 *       against float64 on ~4000 points: exp 6.8e-8, log 7.3e-8, tanh 8.7e-8,
 *       sigmoid 1.7e-7, erf 1.7e-7 (absolute 1.1e-7)
 * Scalar forms, bit-identical to every lane of the vector forms (they run the
 * same code on a 4-lane vector, which costs the same as scalar SSE/NEON):
 *   onnxc_exp_f, onnxc_log_f, onnxc_tanh_f, onnxc_sigmoid_f, onnxc_erf_f
 *
 * Semantics: NaN propagates everywhere (max/min too, like numpy.maximum and
 * the ONNX reference). exp: overflow -> +inf, underflow -> 0 with correct
 * subnormals in between. log: log(0) = -inf, log(x < 0) = NaN. tanh, erf ->
 * +-1 for large |x|; sigmoid never forms inf/inf.
 * Everything is branch-free over lanes (both sides computed, then selected)
 * and assumes IEEE arithmetic: do not build with -ffast-math.
 *
 * Polynomials and range reductions follow the Cephes Math Library, single
 * precision (expf.c, logf.c, tanhf.c, ndtrf.c; Release 2.2, (C) 1984-1992
 * Stephen L. Moshier).
 */
#ifndef ONNXC_VMATH_H
#define ONNXC_VMATH_H

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "onnxc_scalar.h"

#if defined(__GNUC__) && !defined(__clang__)
/* Passing 32/64-byte vectors by value on a target without AVX/AVX-512 draws
   -Wpsabi at every call site, including the includer's (so no push/pop).
   It is noise for inlined kernels. GCC still prints a one-time "ABI ...
   changed in GCC 4.6" note that no pragma silences (only -Wno-psabi).
   Pick the width the target has: v4 for SSE/NEON, v8 for AVX2, v16 for
   AVX-512. Wider works everywhere, but e.g. GCC 12 moves v16 values through
   the stack on AVX2 (exp_v16f: ~600 instructions there, 77 with AVX-512). */
#pragma GCC diagnostic ignored "-Wpsabi"
#endif

typedef float onnxc_v4f __attribute__((vector_size(16)));
typedef float onnxc_v8f __attribute__((vector_size(32)));
typedef float onnxc_v16f __attribute__((vector_size(64)));
typedef int32_t onnxc_v4i __attribute__((vector_size(16)));
typedef int32_t onnxc_v8i __attribute__((vector_size(32)));
typedef int32_t onnxc_v16i __attribute__((vector_size(64)));

/* Always inlined: kernels call these in hot loops, where a call would spill
   every live vector register. */
#define ONNXC_VM_INLINE static inline __attribute__((always_inline))

#define ONNXC_VM_SIGN INT32_MIN      /* float sign bit as int32 */
#define ONNXC_VM_TWO23 8388608.0f    /* 2^23: floats this large are integers */

/* ---- memory, masks, exact operations -------------------------------------- */
#define ONNXC_VM_BASIC(S, VF, VI)                                               \
  ONNXC_VM_INLINE VF onnxc_load_##S(const float *p) {                           \
    VF v;                                                                       \
    __builtin_memcpy(&v, p, sizeof v);                                          \
    return v;                                                                   \
  }                                                                             \
  ONNXC_VM_INLINE void onnxc_store_##S(float *p, VF v) {                        \
    __builtin_memcpy(p, &v, sizeof v);                                          \
  }                                                                             \
  ONNXC_VM_INLINE VF onnxc_broadcast_##S(float x) {                             \
    /* scalar - vector splats x (x - 0 keeps -0 and NaN); a lane loop compiles \
       to masked inserts, this to one broadcast instruction */                  \
    return x - (VF){0};                                                         \
  }                                                                             \
  ONNXC_VM_INLINE VF onnxc_select_##S(VI mask, VF a, VF b) {                    \
    return (VF)(((VI)a & mask) | ((VI)b & ~mask));                              \
  }                                                                             \
  ONNXC_VM_INLINE VF onnxc_vm_bits_##S(uint32_t bits) {                         \
    return (VF)((VI){0} + (int32_t)bits);                                       \
  }                                                                             \
  /* x's sign bit ORed into v (v non-negative or a zero of either sign). */     \
  ONNXC_VM_INLINE VF onnxc_vm_signof_##S(VF v, VF x) {                          \
    return (VF)((VI)v | ((VI)x & ONNXC_VM_SIGN));                               \
  }                                                                             \
  ONNXC_VM_INLINE VF onnxc_abs_##S(VF x) { return (VF)((VI)x & INT32_MAX); }    \
  /* NaN lanes of x returned as they are: the sign and payload of a NaN made    \
     inside a function would depend on operand order, i.e. on the width. */     \
  ONNXC_VM_INLINE VF onnxc_vm_keepnan_##S(VF x, VF r) {                         \
    return onnxc_select_##S(x == x, r, x);                                      \
  }                                                                             \
  ONNXC_VM_INLINE VF onnxc_max_##S(VF a, VF b) {                                \
    return onnxc_select_##S((a > b) | (a != a), a, b);                          \
  }                                                                             \
  ONNXC_VM_INLINE VF onnxc_min_##S(VF a, VF b) {                                \
    return onnxc_select_##S((a < b) | (a != a), a, b);                          \
  }                                                                             \
  /* Lanes with |x| < 2^23 (not NaN/inf): only those need rounding, and only    \
     those may be converted to int32 without undefined behaviour. */            \
  ONNXC_VM_INLINE VI onnxc_vm_small_##S(VF x) {                                 \
    return onnxc_abs_##S(x) < ONNXC_VM_TWO23;                                   \
  }                                                                             \
  ONNXC_VM_INLINE VF onnxc_vm_trunc_##S(VF x, VI small) {                       \
    VF safe = onnxc_select_##S(small, x, onnxc_broadcast_##S(0.0f));            \
    VF t = __builtin_convertvector(__builtin_convertvector(safe, VI), VF);      \
    return onnxc_select_##S(small, onnxc_vm_signof_##S(t, x), x);               \
  }                                                                             \
  ONNXC_VM_INLINE VF onnxc_floor_##S(VF x) {                                    \
    VF t = onnxc_vm_trunc_##S(x, onnxc_vm_small_##S(x));                        \
    return t - (VF)((t > x) & (VI)onnxc_broadcast_##S(1.0f));                   \
  }                                                                             \
  ONNXC_VM_INLINE VF onnxc_ceil_##S(VF x) {                                     \
    VF t = onnxc_vm_trunc_##S(x, onnxc_vm_small_##S(x));                        \
    /* t - (-1), not t + 1 under a mask: t + (+0) would turn -0 into +0 */      \
    return t - (VF)((t < x) & (VI)onnxc_broadcast_##S(-1.0f));                  \
  }                                                                             \
  /* Half to even, like nearbyint in the default rounding mode. */              \
  ONNXC_VM_INLINE VF onnxc_round_##S(VF x) {                                    \
    VI small = onnxc_vm_small_##S(x);                                           \
    VF safe = onnxc_select_##S(small, x, onnxc_broadcast_##S(0.0f));            \
    VI ti = __builtin_convertvector(safe, VI);                                  \
    VF t = __builtin_convertvector(ti, VF);                                     \
    VF frac = onnxc_abs_##S(safe - t); /* exact */                              \
    VI up = (frac > 0.5f) | ((frac == 0.5f) & ((ti & 1) != 0));                 \
    VF step = onnxc_vm_signof_##S(onnxc_broadcast_##S(1.0f), x);                \
    VF r = onnxc_vm_signof_##S(t + (VF)(up & (VI)step), x);                     \
    return onnxc_select_##S(small, r, x);                                       \
  }

/* ---- exp and log (Cephes expf.c / logf.c) --------------------------------- */
#define ONNXC_VM_EXPLOG(S, VF, VI)                                              \
  /* e^x = 2^n e^r, n = floor(x log2(e) + 1/2), r = x - n ln2 in two parts      \
     (Cody-Waite) and e^r from Cephes' degree-7 polynomial. 2^n is applied as   \
     two factors so that results in the subnormal range come out right. */      \
  ONNXC_VM_INLINE VF onnxc_exp_##S(VF x) {                                      \
    VI ok = x == x;                                                             \
    VF xc = onnxc_select_##S(x > 89.0f, onnxc_broadcast_##S(89.0f), x);         \
    xc = onnxc_select_##S(xc < -104.0f, onnxc_broadcast_##S(-104.0f), xc);      \
    xc = onnxc_select_##S(ok, xc, onnxc_broadcast_##S(0.0f));                   \
    VF v = xc * 1.44269504088896341f + 0.5f;                                    \
    VI n = __builtin_convertvector(v, VI);                                      \
    n += __builtin_convertvector(n, VF) > v; /* trunc -> floor: adds -1 */      \
    VF fn = __builtin_convertvector(n, VF);                                     \
    VF r = xc - fn * 0.693359375f;                                              \
    r = r - fn * -2.12194440e-4f;                                               \
    VF p = 1.9875691500E-4f * r + 1.3981999507E-3f;                             \
    p = p * r + 8.3334519073E-3f;                                               \
    p = p * r + 4.1665795894E-2f;                                               \
    p = p * r + 1.6666665459E-1f;                                               \
    p = p * r + 5.0000001201E-1f;                                               \
    p = p * (r * r) + r + 1.0f;                                                 \
    VI n1 = n >> 1, n2 = n - n1; /* each in [-75, 65]: a normal power of 2 */   \
    VF res = p * (VF)((n1 + 127) << 23) * (VF)((n2 + 127) << 23);               \
    return onnxc_vm_keepnan_##S(x, res);                                        \
  }                                                                             \
  /* x = m 2^e with m in [sqrt(1/2), sqrt(2)); log(x) = log1p(m - 1) + e ln2,   \
     log1p from Cephes' polynomial. Subnormals are scaled by 2^23 first. */     \
  ONNXC_VM_INLINE VF onnxc_log_##S(VF x) {                                      \
    VI sub = x < 1.17549435e-38f;                                               \
    VI bits = (VI)onnxc_select_##S(sub, x * ONNXC_VM_TWO23, x);                 \
    VI e = ((bits >> 23) & 0xff) - 126 - (sub & 23);                            \
    VF m = (VF)((bits & 0x007fffff) | 0x3f000000); /* [0.5, 1) */               \
    VI lo = m < 0.707106781186547524f;                                          \
    e += lo;                                                                    \
    m = onnxc_select_##S(lo, m + m, m) - 1.0f;                                  \
    VF fe = __builtin_convertvector(e, VF);                                     \
    VF z = m * m;                                                               \
    VF y = 7.0376836292E-2f * m - 1.1514610310E-1f;                             \
    y = y * m + 1.1676998740E-1f;                                               \
    y = y * m - 1.2420140846E-1f;                                               \
    y = y * m + 1.4249322787E-1f;                                               \
    y = y * m - 1.6668057665E-1f;                                               \
    y = y * m + 2.0000714765E-1f;                                               \
    y = y * m - 2.4999993993E-1f;                                               \
    y = y * m + 3.3333331174E-1f;                                               \
    y = y * m * z;                                                              \
    y = y + -2.12194440e-4f * fe;                                               \
    y = y + -0.5f * z;                                                          \
    VF r = (m + y) + 0.693359375f * fe;                                         \
    r = onnxc_select_##S(x == 0.0f, onnxc_vm_bits_##S(0xff800000), r);          \
    r = onnxc_select_##S(x < 0.0f, onnxc_vm_bits_##S(0x7fc00000), r);           \
    r = onnxc_select_##S(x == __builtin_inff(), x, r);                          \
    return onnxc_vm_keepnan_##S(x, r);                                          \
  }

/* ---- tanh, sigmoid, erf --------------------------------------------------- */
#define ONNXC_VM_ACT(S, VF, VI)                                                 \
  /* Cephes tanhf.c: odd polynomial below 0.625 (no cancellation near 0),       \
     1 - 2/(e^2|x| + 1) above, which tends to 1 without inf/inf. */             \
  ONNXC_VM_INLINE VF onnxc_tanh_##S(VF x) {                                     \
    VF ax = onnxc_abs_##S(x), z = ax * ax; /* on |x|: tanh(-0) stays -0 */      \
    VF p = -5.70498872745E-3f * z + 2.06390887954E-2f;                          \
    p = p * z - 5.37397155531E-2f;                                              \
    p = p * z + 1.33314422036E-1f;                                              \
    p = p * z - 3.33332819422E-1f;                                              \
    VF small = p * z * ax + ax;                                                 \
    VF big = 1.0f - 2.0f / (onnxc_exp_##S(ax + ax) + 1.0f);                     \
    VF r = onnxc_select_##S(ax < 0.625f, small, big);                           \
    return onnxc_vm_keepnan_##S(x, onnxc_vm_signof_##S(r, x));                  \
  }                                                                             \
  /* e = e^-|x| never overflows: 1/(1+e) for x >= 0, e/(1+e) below, which also  \
     keeps the relative accuracy of tiny results. */                            \
  ONNXC_VM_INLINE VF onnxc_sigmoid_##S(VF x) {                                  \
    VF e = onnxc_exp_##S(-onnxc_abs_##S(x));                                    \
    VF r = 1.0f / (1.0f + e);                                                   \
    return onnxc_vm_keepnan_##S(x, onnxc_select_##S(x >= 0.0f, r, e * r));      \
  }                                                                             \
  /* Cephes ndtrf.c on a = |x|: a <= 1: a T(a^2); else 1 - erfc(a) with         \
     erfc(a) = e^-a^2 / a P(1/a^2) (a < 2) or R(1/a^2). erf(10) is 1 in float,  \
     so a is clamped there (inf too); the sign is put back last. */             \
  ONNXC_VM_INLINE VF onnxc_erf_##S(VF x) {                                      \
    VF a = onnxc_abs_##S(x);                                                    \
    a = onnxc_select_##S(a > 10.0f, onnxc_broadcast_##S(10.0f), a);             \
    VF z = a * a;                                                               \
    VF t = 7.853861353153693E-5f * z - 8.010193625184903E-4f;                   \
    t = t * z + 5.188327685732524E-3f;                                          \
    t = t * z - 2.685381193529856E-2f;                                          \
    t = t * z + 1.128358514861418E-1f;                                          \
    t = t * z - 3.761262582423300E-1f;                                          \
    t = (t * z + 1.128379165726710E+0f) * a;                                    \
    VF q = 1.0f / a, y = q * q;                                                 \
    VF p = 2.326819970068386E-2f * y - 1.387039388740657E-1f;                   \
    p = p * y + 3.687424674597105E-1f;                                          \
    p = p * y - 5.824733027278666E-1f;                                          \
    p = p * y + 6.210004621745983E-1f;                                          \
    p = p * y - 4.944515323274145E-1f;                                          \
    p = p * y + 3.404879937665872E-1f;                                          \
    p = p * y - 2.741127028184656E-1f;                                          \
    p = p * y + 5.638259427386472E-1f;                                          \
    VF r = -1.047766399936249E+1f * y + 1.297719955372516E+1f;                  \
    r = r * y - 7.495518717768503E+0f;                                          \
    r = r * y + 2.921019019210786E+0f;                                          \
    r = r * y - 1.015265279202700E+0f;                                          \
    r = r * y + 4.218463358204948E-1f;                                          \
    r = r * y - 2.820767439740514E-1f;                                          \
    r = r * y + 5.641895067754075E-1f;                                          \
    VF erfc = onnxc_exp_##S(-z) * q * onnxc_select_##S(a < 2.0f, p, r);         \
    VF res = onnxc_select_##S(a <= 1.0f, t, 1.0f - erfc);                       \
    return onnxc_vm_keepnan_##S(x, onnxc_vm_signof_##S(res, x));                \
  }

#define ONNXC_VMATH_DEFINE(S, VF, VI) \
  ONNXC_VM_BASIC(S, VF, VI)           \
  ONNXC_VM_EXPLOG(S, VF, VI)          \
  ONNXC_VM_ACT(S, VF, VI)

ONNXC_VMATH_DEFINE(v4f, onnxc_v4f, onnxc_v4i)
ONNXC_VMATH_DEFINE(v8f, onnxc_v8f, onnxc_v8i)
ONNXC_VMATH_DEFINE(v16f, onnxc_v16f, onnxc_v16i)

/* ---- sqrt: the one operation GCC vectors lack ----------------------------- */
/* x86 has IEEE vector square roots; elsewhere each lane calls sqrtf (correct,
   but with libm's errno check per lane). */
#define ONNXC_VM_SQRT_LANES(S, VF)                                              \
  ONNXC_VM_INLINE VF onnxc_vm_sqrt_lanes_##S(VF x) {                            \
    for (int i = 0; i < (int)(sizeof x / sizeof(float)); i++)                   \
      x[i] = __builtin_sqrtf(x[i]);                                             \
    return x;                                                                   \
  }
ONNXC_VM_SQRT_LANES(v4f, onnxc_v4f)
ONNXC_VM_SQRT_LANES(v8f, onnxc_v8f)
ONNXC_VM_SQRT_LANES(v16f, onnxc_v16f)

ONNXC_VM_INLINE onnxc_v4f onnxc_sqrt_v4f(onnxc_v4f x) {
#if defined(__SSE__)
  return __builtin_ia32_sqrtps(x);
#else
  return onnxc_vm_sqrt_lanes_v4f(x);
#endif
}

ONNXC_VM_INLINE onnxc_v8f onnxc_sqrt_v8f(onnxc_v8f x) {
#if defined(__AVX__)
  return __builtin_ia32_sqrtps256(x);
#elif defined(__SSE__)
  union { onnxc_v8f v; onnxc_v4f h[2]; } u = {x}; /* C allows union punning */
  u.h[0] = onnxc_sqrt_v4f(u.h[0]);
  u.h[1] = onnxc_sqrt_v4f(u.h[1]);
  return u.v;
#else
  return onnxc_vm_sqrt_lanes_v8f(x);
#endif
}

ONNXC_VM_INLINE onnxc_v16f onnxc_sqrt_v16f(onnxc_v16f x) {
#if defined(__AVX512F__)
  /* all 16 lanes (mask 0xffff), current rounding mode (4) */
  return __builtin_ia32_sqrtps512_mask(x, x, (unsigned short)0xffff, 4);
#elif defined(__SSE__)
  union { onnxc_v16f v; onnxc_v8f h[2]; } u = {x};
  u.h[0] = onnxc_sqrt_v8f(u.h[0]);
  u.h[1] = onnxc_sqrt_v8f(u.h[1]);
  return u.v;
#else
  return onnxc_vm_sqrt_lanes_v16f(x);
#endif
}

/* ---- scalar forms (same code as the lanes) -------------------------------- */
#define ONNXC_VM_SCALAR(F)                                                      \
  ONNXC_VM_INLINE float onnxc_##F##_f(float x) {                                \
    return onnxc_##F##_v4f(onnxc_broadcast_v4f(x))[0];                          \
  }
ONNXC_VM_SCALAR(exp)
ONNXC_VM_SCALAR(log)
ONNXC_VM_SCALAR(tanh)
ONNXC_VM_SCALAR(sigmoid)
ONNXC_VM_SCALAR(erf)

/* Horizontal reductions of one vector (a vectorized reduction's last step per chunk). */
#define ONNXC_VM_HREDUCE(S, VF)                                                 \
  ONNXC_VM_INLINE float onnxc_hadd_##S(VF v) {                                  \
    float r = v[0];                                                             \
    for (int i = 1; i < (int)(sizeof v / sizeof r); i++) r += v[i];             \
    return r;                                                                   \
  }                                                                             \
  ONNXC_VM_INLINE float onnxc_hmax_##S(VF v) {                                  \
    float r = v[0];                                                             \
    for (int i = 1; i < (int)(sizeof v / sizeof r); i++) r = onnxc_max_f(r, v[i]); \
    return r;                                                                   \
  }                                                                             \
  ONNXC_VM_INLINE float onnxc_hmin_##S(VF v) {                                  \
    float r = v[0];                                                             \
    for (int i = 1; i < (int)(sizeof v / sizeof r); i++) r = onnxc_min_f(r, v[i]); \
    return r;                                                                   \
  }
ONNXC_VM_HREDUCE(v4f, onnxc_v4f)
ONNXC_VM_HREDUCE(v8f, onnxc_v8f)
ONNXC_VM_HREDUCE(v16f, onnxc_v16f)

/* Every other element from p: two loads that end at the last element needed (never past
   it), the even lanes of the first and the odd lanes of the second. */
ONNXC_VM_INLINE onnxc_v4f onnxc_load_s2_v4f(const float *p) {
  return __builtin_shufflevector(onnxc_load_v4f(p), onnxc_load_v4f(p + 3), 0, 2, 5, 7);
}
ONNXC_VM_INLINE onnxc_v8f onnxc_load_s2_v8f(const float *p) {
  return __builtin_shufflevector(onnxc_load_v8f(p), onnxc_load_v8f(p + 7),
                                 0, 2, 4, 6, 9, 11, 13, 15);
}
ONNXC_VM_INLINE onnxc_v16f onnxc_load_s2_v16f(const float *p) {
  return __builtin_shufflevector(onnxc_load_v16f(p), onnxc_load_v16f(p + 15),
                                 0, 2, 4, 6, 8, 10, 12, 14, 17, 19, 21, 23, 25, 27, 29, 31);
}

/* The lanes of v to p[0], p[stride], p[2 * stride], ...: a register tile vectorized along
   output channels written to NCHW rows (unrolled lane stores; no scatter on AVX2). */
#define ONNXC_VM_STORE_STRIDED(S, VF)                                            \
  ONNXC_VM_INLINE void onnxc_store_strided_##S(float *p, int64_t stride, VF v) { \
    for (int i = 0; i < (int)(sizeof v / sizeof(float)); i++) p[i * stride] = v[i]; \
  }
ONNXC_VM_STORE_STRIDED(v4f, onnxc_v4f)
ONNXC_VM_STORE_STRIDED(v8f, onnxc_v8f)
ONNXC_VM_STORE_STRIDED(v16f, onnxc_v16f)

#endif /* ONNXC_VMATH_H */
