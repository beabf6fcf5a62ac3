/* Exercises the onnxc_runtime.c thread pool for test_runtime_c.py.
 *
 * usage: pool_driver MODE [ARG]
 *   cover REPS    every (threads, n, grain) combo REPS times, plus a
 *                 10*REPS stress on a few; every index must run exactly once
 *   pools ITERS   two pools driven from two threads at once, then one pool
 *                 shared by two threads (the serial fallback)
 *   churn ITERS   create/destroy pools of 1..4 threads
 *   misc          argument edge cases, nested calls, allocation
 *   clamp         a pool asked for 100000 threads gets ONNXC_MAX_THREADS
 *   env           prints onnxc_default_num_threads()
 *   status        prints the status strings of -1..5, one per line
 *   bench ITERS   prints microseconds per empty parallel_for, with the workers
 *                 spinning (back-to-back calls) and asleep (0.5 ms apart)
 *   failures      thread creation / allocation failures (needs a build with
 *                 -DWRAP_FAILURES -Wl,--wrap=pthread_create,--wrap=posix_memalign)
 * Exit status 0 on success; failures are printed to stderr.
 */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "onnxc_runtime.h"

#define MAX_N 5000

static int failures;

#define CHECK(cond, ...)                          \
  do {                                            \
    if (!(cond)) {                                \
      fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__); \
      fprintf(stderr, __VA_ARGS__);               \
      fputc('\n', stderr);                        \
      if (++failures > 20) exit(1);               \
    }                                             \
  } while (0)

/* ---- coverage ------------------------------------------------------------ */

typedef struct {
  _Atomic int hits[MAX_N];
  _Atomic int chunks;
  _Atomic int64_t min_len, max_len;
} cover_state;

static void atomic_min64(_Atomic int64_t *v, int64_t x) {
  int64_t cur = atomic_load(v);
  while (x < cur && !atomic_compare_exchange_weak(v, &cur, x)) {}
}

static void atomic_max64(_Atomic int64_t *v, int64_t x) {
  int64_t cur = atomic_load(v);
  while (x > cur && !atomic_compare_exchange_weak(v, &cur, x)) {}
}

static void cover_task(void *p, int64_t begin, int64_t end) {
  cover_state *s = p;
  for (int64_t i = begin; i < end; i++) atomic_fetch_add_explicit(&s->hits[i], 1, memory_order_relaxed);
  atomic_fetch_add(&s->chunks, 1);
  atomic_min64(&s->min_len, end - begin);
  atomic_max64(&s->max_len, end - begin);
}

static int64_t expected_chunks(int threads, int64_t n, int64_t grain) {
  if (n <= 0) return 0;
  if (grain < 1) grain = 1;
  int64_t c = n / grain;
  if (c > threads) c = threads;
  return c < 2 ? 1 : c;
}

/* One parallel_for, then check and reset the state; returns 0 if all fine.
   shared: another thread may be using the pool, so a serial run is fine. */
static int cover_run(onnxc_pool *pool, cover_state *s, int64_t n, int64_t grain, int shared) {
  atomic_store(&s->chunks, 0);
  atomic_store(&s->min_len, INT64_MAX);
  atomic_store(&s->max_len, 0);
  onnxc_parallel_for(pool, n, grain, cover_task, s);
  int bad = 0;
  for (int64_t i = 0; i < n; i++) bad |= atomic_exchange_explicit(&s->hits[i], 0, memory_order_relaxed) != 1;
  int threads = onnxc_pool_num_threads(pool);
  int64_t want = expected_chunks(threads, n, grain), got = atomic_load(&s->chunks);
  if (shared && got == 1 && n > 0) want = 1;
  CHECK(!bad, "index not run exactly once: threads=%d n=%lld grain=%lld", threads, (long long)n, (long long)grain);
  CHECK(got == want, "chunks %lld, want %lld (threads=%d n=%lld grain=%lld)", (long long)got,
        (long long)want, threads, (long long)n, (long long)grain);
  if (want > 1) {
    int64_t lo = atomic_load(&s->min_len), hi = atomic_load(&s->max_len);
    CHECK(lo >= grain && hi - lo <= 1, "chunk sizes %lld..%lld grain %lld", (long long)lo, (long long)hi, (long long)grain);
  }
  return bad || got != want;
}

static int cover_once(onnxc_pool *pool, cover_state *s, int64_t n, int64_t grain) {
  return cover_run(pool, s, n, grain, 0);
}

static cover_state g_cover[2];

static int mode_cover(int reps) {
  static const int64_t ns[] = {0, 1, 2, 3, 5, 8, 17, 64, 100, 1000, 4099};
  static const int64_t grains[] = {0, 1, 2, 3, 7, 64, 1000};
  for (int t = 1; t <= 4; t++) {
    onnxc_pool *pool;
    CHECK(onnxc_pool_create(&pool, t) == ONNXC_OK, "create %d", t);
    for (size_t i = 0; i < sizeof ns / sizeof *ns; i++)
      for (size_t g = 0; g < sizeof grains / sizeof *grains; g++)
        for (int r = 0; r < reps; r++)
          if (cover_once(pool, &g_cover[0], ns[i], grains[g])) break;
    /* the stress part: small tasks back to back, where races would show */
    for (int r = 0; r < 10 * reps; r++) {
      cover_once(pool, &g_cover[0], 64, 1);
      cover_once(pool, &g_cover[0], 1000, 8);
    }
    onnxc_pool_destroy(pool);
  }
  return failures != 0;
}

/* ---- concurrent pools ---------------------------------------------------- */

typedef struct {
  onnxc_pool *pool;
  cover_state *state;
  int iters;
  int shared;
  int errors;
} pool_user;

static void *use_pool(void *p) {
  pool_user *u = p;
  for (int i = 0; i < u->iters; i++)
    u->errors += cover_run(u->pool, u->state, 1 + (i * 37) % 700, 1 + i % 5, u->shared);
  return NULL;
}

static void run_two_users(onnxc_pool *a, onnxc_pool *b, int iters) {
  pool_user users[2] = {{a, &g_cover[0], iters, a == b, 0}, {b, &g_cover[1], iters, a == b, 0}};
  pthread_t th[2];
  for (int i = 0; i < 2; i++) pthread_create(&th[i], NULL, use_pool, &users[i]);
  for (int i = 0; i < 2; i++) pthread_join(th[i], NULL);
  CHECK(users[0].errors == 0 && users[1].errors == 0, "concurrent users: %d, %d errors",
        users[0].errors, users[1].errors);
}

static int mode_pools(int iters) {
  onnxc_pool *a, *b;
  CHECK(onnxc_pool_create(&a, 2) == ONNXC_OK && onnxc_pool_create(&b, 2) == ONNXC_OK, "create");
  run_two_users(a, b, iters); /* independent pools */
  run_two_users(a, a, iters); /* one pool, two callers: one of them runs serially */
  onnxc_pool_destroy(a);
  onnxc_pool_destroy(b);
  return failures != 0;
}

/* ---- lifecycle and edge cases ------------------------------------------- */

static int mode_churn(int iters) {
  for (int i = 0; i < iters; i++) {
    onnxc_pool *pool = NULL;
    int t = 1 + i % 4;
    CHECK(onnxc_pool_create(&pool, t) == ONNXC_OK && pool, "create %d", t);
    CHECK(onnxc_pool_num_threads(pool) == t, "num_threads");
    if (i % 2) cover_once(pool, &g_cover[0], 100, 1);
    onnxc_pool_destroy(pool);
  }
  return failures != 0;
}

typedef struct {
  onnxc_pool *pool;
  _Atomic int inner_calls;
  _Atomic int hits[64];
} nested_state;

static void inner_task(void *p, int64_t begin, int64_t end) {
  nested_state *s = p;
  atomic_fetch_add(&s->inner_calls, 1);
  for (int64_t i = begin; i < end; i++) atomic_fetch_add(&s->hits[i], 1);
}

static void outer_task(void *p, int64_t begin, int64_t end) {
  nested_state *s = p;
  for (int64_t i = begin; i < end; i++) onnxc_parallel_for(s->pool, 64, 1, inner_task, s);
}

static void count_task(void *p, int64_t begin, int64_t end) {
  *(int64_t *)p += end - begin + 1000 * begin;
}

static int mode_misc(void) {
  onnxc_pool *pool = (onnxc_pool *)&pool;
  CHECK(onnxc_pool_create(&pool, 0) == ONNXC_ERR_ARGUMENT && pool == NULL, "0 threads");
  CHECK(onnxc_pool_create(&pool, -3) == ONNXC_ERR_ARGUMENT, "-3 threads");
  CHECK(onnxc_pool_create(NULL, 2) == ONNXC_ERR_ARGUMENT, "NULL out");
  CHECK(onnxc_pool_num_threads(NULL) == 1, "NULL pool threads");
  onnxc_pool_destroy(NULL);
  int64_t acc = 0; /* serial paths call fn(args, 0, n) exactly once */
  onnxc_parallel_for(NULL, 10, 1, count_task, &acc);
  CHECK(acc == 10, "NULL pool: %lld", (long long)acc);
  CHECK(onnxc_pool_create(&pool, 3) == ONNXC_OK, "create");
  acc = 0;
  onnxc_parallel_for(pool, 5, 5, count_task, &acc);
  CHECK(acc == 5, "n <= grain: %lld", (long long)acc);
  acc = 0;
  onnxc_parallel_for(pool, 0, 1, count_task, &acc);
  onnxc_parallel_for(pool, -4, 1, count_task, &acc);
  onnxc_parallel_for(pool, 10, 1, NULL, &acc);
  CHECK(acc == 0, "n <= 0 or NULL fn ran something");
  nested_state ns = {.pool = pool};
  onnxc_parallel_for(pool, 6, 1, outer_task, &ns); /* 6 nested calls, each serial */
  CHECK(atomic_load(&ns.inner_calls) == 6, "nested calls: %d", atomic_load(&ns.inner_calls));
  for (int i = 0; i < 64; i++) CHECK(atomic_load(&ns.hits[i]) == 6, "nested hits[%d]", i);
  onnxc_pool_destroy(pool);
  void *p0 = onnxc_aligned_alloc(0), *p1 = onnxc_aligned_alloc(0), *p2 = onnxc_aligned_alloc(1000);
  CHECK(p0 && p1 && p2 && p0 != p1, "aligned_alloc returned NULL or duplicate");
  CHECK((((uintptr_t)p0 | (uintptr_t)p1 | (uintptr_t)p2) & 63) == 0, "not 64-byte aligned");
  memset(p2, 1, 1000);
  onnxc_aligned_free(p0);
  onnxc_aligned_free(p1);
  onnxc_aligned_free(p2);
  onnxc_aligned_free(NULL);
  return failures != 0;
}

/* Too many threads are clamped: ONNXC_MAX_THREADS real threads. */
static int mode_clamp(void) {
  onnxc_pool *pool;
  CHECK(onnxc_pool_create(&pool, 100000) == ONNXC_OK &&
            onnxc_pool_num_threads(pool) == ONNXC_MAX_THREADS, "clamped thread count");
  cover_once(pool, &g_cover[0], MAX_N, 1);
  onnxc_pool_destroy(pool);
  return failures != 0;
}

/* ---- info and timing ----------------------------------------------------- */

static void empty_task(void *p, int64_t begin, int64_t end) { (void)p, (void)begin, (void)end; }

static double now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

/* Average microseconds per call of calls made with a pause of sleep_us
   before each (the pause not counted). */
static double time_calls(onnxc_pool *pool, int iters, long sleep_us) {
  double total = 0;
  struct timespec pause = {0, sleep_us * 1000};
  for (int i = 0; i < iters; i++) {
    if (sleep_us) nanosleep(&pause, NULL);
    double start = now_us();
    onnxc_parallel_for(pool, 64, 1, empty_task, NULL);
    total += now_us() - start;
  }
  return total / iters;
}

static int mode_bench(int iters) {
  for (int t = 1; t <= 4; t++) {
    onnxc_pool *pool;
    if (onnxc_pool_create(&pool, t) != ONNXC_OK) return 1;
    time_calls(pool, iters / 10, 0); /* warm up */
    double start = now_us();
    for (int i = 0; i < iters; i++) onnxc_parallel_for(pool, 64, 1, empty_task, NULL);
    double hot = (now_us() - start) / iters;
    double cold = time_calls(pool, 200, 500);
    printf("threads=%d hot_us=%.3f asleep_us=%.2f\n", t, hot, cold);
    onnxc_pool_destroy(pool);
  }
  return 0;
}

#ifdef WRAP_FAILURES
/* Link-time wrappers: the next fail_* calls of pthread_create/posix_memalign
   made by the runtime fail after skip_* successful ones. */
static int skip_create = 0, fail_create = 0, fail_alloc = 0;
int __real_pthread_create(pthread_t *, const pthread_attr_t *, void *(*)(void *), void *);
int __real_posix_memalign(void **, size_t, size_t);

int __wrap_pthread_create(pthread_t *t, const pthread_attr_t *a, void *(*f)(void *), void *arg) {
  if (skip_create > 0) skip_create--;
  else if (fail_create > 0) return fail_create--, 11; /* EAGAIN */
  return __real_pthread_create(t, a, f, arg);
}

int __wrap_posix_memalign(void **p, size_t align, size_t size) {
  if (fail_alloc > 0) return fail_alloc--, 12; /* ENOMEM */
  return __real_posix_memalign(p, align, size);
}

static int mode_failures(void) {
  for (int skip = 0; skip < 3; skip++) { /* the 1st, 2nd or 3rd worker fails */
    onnxc_pool *pool = (onnxc_pool *)&pool;
    skip_create = skip, fail_create = 1;
    CHECK(onnxc_pool_create(&pool, 4) == ONNXC_ERR_RUNTIME && pool == NULL, "thread failure %d", skip);
  }
  onnxc_pool *pool = (onnxc_pool *)&pool;
  fail_alloc = 1;
  CHECK(onnxc_pool_create(&pool, 4) == ONNXC_ERR_ALLOC && pool == NULL, "alloc failure");
  fail_alloc = 1;
  CHECK(onnxc_aligned_alloc(16) == NULL, "aligned_alloc failure");
  CHECK(onnxc_pool_create(&pool, 4) == ONNXC_OK, "create after failures");
  cover_once(pool, &g_cover[0], 1000, 1);
  onnxc_pool_destroy(pool);
  return failures != 0;
}
#else
static int mode_failures(void) {
  fprintf(stderr, "built without -DWRAP_FAILURES\n");
  return 2;
}
#endif

int main(int argc, char **argv) {
  const char *mode = argc > 1 ? argv[1] : "";
  int arg = argc > 2 ? atoi(argv[2]) : 100;
  if (!strcmp(mode, "cover")) return mode_cover(arg);
  if (!strcmp(mode, "pools")) return mode_pools(arg);
  if (!strcmp(mode, "churn")) return mode_churn(arg);
  if (!strcmp(mode, "misc")) return mode_misc();
  if (!strcmp(mode, "clamp")) return mode_clamp();
  if (!strcmp(mode, "bench")) return mode_bench(arg);
  if (!strcmp(mode, "failures")) return mode_failures();
  if (!strcmp(mode, "env")) return printf("%d\n", onnxc_default_num_threads()) < 0;
  if (!strcmp(mode, "status")) {
    for (int s = -1; s <= 5; s++) printf("%s\n", onnxc_status_string(s));
    return 0;
  }
  fprintf(stderr, "unknown mode '%s'\n", mode);
  return 2;
}
