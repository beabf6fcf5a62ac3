/* onnxc C runtime: thread pool, aligned allocation, status strings.
 *
 * This file's .c is compiled into every generated model library with
 * -fvisibility=hidden, so two models in one process each get a private copy.
 * The runtime keeps no global state: everything lives in objects the caller
 * owns. Every symbol starts with onnxc_.
 */
#ifndef ONNXC_RUNTIME_H
#define ONNXC_RUNTIME_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Runtime symbols stay inside the model library even if a build forgets
   -fvisibility=hidden. Define ONNXC_RT_API before including to override. */
#ifndef ONNXC_RT_API
#define ONNXC_RT_API __attribute__((visibility("hidden")))
#endif

/* Status codes, identical to (and guarded like) the model header's enum. */
#ifndef ONNXC_STATUS_DEFINED
#define ONNXC_STATUS_DEFINED
typedef enum {
  ONNXC_OK = 0,
  ONNXC_ERR_ARGUMENT = 1,
  ONNXC_ERR_ALLOC = 2,
  ONNXC_ERR_RUNTIME = 3,
  ONNXC_ERR_DEVICE = 4
} onnxc_status;
#endif

/* Pools never have more threads than this (larger requests are clamped). */
#define ONNXC_MAX_THREADS 1024

/* "ok", "invalid argument", "allocation failed", "runtime error", "device
   error", else "unknown status". Static strings. */
ONNXC_RT_API const char *onnxc_status_string(int status);

/* 64-byte aligned allocation. size 0 gives a unique non-NULL pointer.
   Returns NULL on failure. Free with onnxc_aligned_free (NULL is fine). */
ONNXC_RT_API void *onnxc_aligned_alloc(size_t size);
ONNXC_RT_API void onnxc_aligned_free(void *ptr);

/* ONNXC_NUM_THREADS if it is a positive decimal integer (surrounding
   whitespace allowed, clamped to ONNXC_MAX_THREADS), else the number of
   online CPUs; at least 1. */
ONNXC_RT_API int onnxc_default_num_threads(void);

/* A task runs iterations [begin, end) of a parallel loop. */
typedef void (*onnxc_task_fn)(void *args, int64_t begin, int64_t end);

typedef struct onnxc_pool onnxc_pool;

/* Create a pool of num_threads threads, counting the caller: 1 starts no
   worker thread. Returns ONNXC_OK, ONNXC_ERR_ARGUMENT (num_threads < 1 or
   out NULL), ONNXC_ERR_ALLOC or ONNXC_ERR_RUNTIME (thread creation failed).
   On error *out is NULL. Never aborts. */
ONNXC_RT_API int onnxc_pool_create(onnxc_pool **out, int num_threads);

/* Stop and join the workers, free the pool. NULL is fine. Must not run
   concurrently with onnxc_parallel_for on the same pool. */
ONNXC_RT_API void onnxc_pool_destroy(onnxc_pool *pool);

/* Threads of the pool including the caller; NULL gives 1. */
ONNXC_RT_API int onnxc_pool_num_threads(const onnxc_pool *pool);

/* Run fn over [0, n): split into at most num_threads contiguous chunks of
   nearly equal size (sizes differ by at most 1, each >= grain), the caller
   thread running chunks too; returns when all are done. grain < 1 counts as
   1. n <= 0 does nothing. pool NULL, 1 thread, or n <= grain: calls
   fn(args, 0, n) on the caller thread.

   Chunks are handed out dynamically: a worker that is slow to wake leaves
   its chunk to the caller or another worker. After a call, workers poll for
   the next one for ~100 us (pause, then yield) and then sleep on a condition
   variable; a call costs ~0.15 us with polling workers, a few us to wake
   sleeping ones.

   Not reentrant: one parallel_for per pool at a time (one model run per
   pool). A nested call from inside a task, or a call racing another on the
   same pool, is detected and runs serially on its caller: correct, not
   parallel. Pools do not survive fork(). */
ONNXC_RT_API void onnxc_parallel_for(onnxc_pool *pool, int64_t n, int64_t grain,
                                     onnxc_task_fn fn, void *args);

#ifdef __cplusplus
}
#endif

#endif /* ONNXC_RUNTIME_H */
