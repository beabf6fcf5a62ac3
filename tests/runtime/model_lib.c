/* A stand-in model library: the runtime compiled in with hidden visibility and
   one exported entry point, NAME (set with -DNAME=...). test_runtime_c.py
   loads two of them into one process. */
#include <stdatomic.h>
#include "onnxc_runtime.h"
static void add_range(void *p, int64_t begin, int64_t end) {
  int64_t s = 0;
  for (int64_t i = begin; i < end; i++) s += i;
  atomic_fetch_add((_Atomic int64_t *)p, s);
}
/* Returns the number of wrong sums. */
__attribute__((visibility("default"))) int NAME(int threads, int reps) {
  onnxc_pool *pool;
  if (onnxc_pool_create(&pool, threads) != ONNXC_OK) return -1;
  int wrong = 0;
  for (int r = 0; r < reps; r++) {
    _Atomic int64_t acc = 0;
    int64_t n = 1 + r % 1000;
    onnxc_parallel_for(pool, n, 1, add_range, (void *)&acc);
    wrong += atomic_load(&acc) != n * (n - 1) / 2;
  }
  onnxc_pool_destroy(pool);
  return wrong;
}
