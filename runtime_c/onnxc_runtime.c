/* onnxc C runtime; see onnxc_runtime.h for the contract. */
#define _POSIX_C_SOURCE 200809L

#include "onnxc_runtime.h"

#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* ---- status strings, allocation, defaults ------------------------------ */

const char *onnxc_status_string(int status) {
  switch (status) {
    case ONNXC_OK: return "ok";
    case ONNXC_ERR_ARGUMENT: return "invalid argument";
    case ONNXC_ERR_ALLOC: return "allocation failed";
    case ONNXC_ERR_RUNTIME: return "runtime error";
    case ONNXC_ERR_DEVICE: return "device error";
    default: return "unknown status";
  }
}

void *onnxc_aligned_alloc(size_t size) {
  void *p = NULL;
  /* One byte for size 0 so that every call returns a distinct pointer. */
  if (posix_memalign(&p, 64, size ? size : 1) != 0) return NULL;
  return p;
}

void onnxc_aligned_free(void *ptr) { free(ptr); }

/* A positive decimal integer with optional surrounding whitespace, clamped
   to ONNXC_MAX_THREADS; -1 when s is anything else. */
static int parse_thread_count(const char *s) {
  if (s == NULL) return -1;
  char *end;
  errno = 0;
  long v = strtol(s, &end, 10);
  if (end == s) return -1;
  while (isspace((unsigned char)*end)) end++;
  if (*end != '\0' || v < 1) return -1;
  if (errno == ERANGE || v > ONNXC_MAX_THREADS) return ONNXC_MAX_THREADS;
  return (int)v;
}

int onnxc_default_num_threads(void) {
  int n = parse_thread_count(getenv("ONNXC_NUM_THREADS"));
  if (n > 0) return n;
  long cpus = sysconf(_SC_NPROCESSORS_ONLN);
  if (cpus < 1) return 1;
  return cpus > ONNXC_MAX_THREADS ? ONNXC_MAX_THREADS : (int)cpus;
}

/* ---- thread pool ------------------------------------------------------- */

/* The pool's whole dispatch state is one 64-bit word, so that a worker can
   claim a chunk with a single CAS that also proves the task is still the one
   it saw: generation (32 bits) | number of chunks (16) | next chunk (16).
   A worker that read an old generation fails its CAS and never touches the
   fields of a newer task. */
#define ST_GEN(s) ((uint32_t)((s) >> 32))
#define ST_NCHUNKS(s) ((uint32_t)(((s) >> 16) & 0xffffu))
#define ST_NEXT(s) ((uint32_t)((s) & 0xffffu))
#define ST_MAKE(gen, nch) (((uint64_t)(gen) << 32) | ((uint64_t)(nch) << 16))

/* Workers poll for ~100 us after a task before sleeping: a model run calls
   parallel_for back to back, and a condition-variable wake costs far more. */
#define SPIN_PAUSE_NS 20000   /* then yield the CPU between polls ... */
#define SPIN_TOTAL_NS 100000  /* ... then sleep */

struct onnxc_pool {
  /* Hot words on their own cache lines: workers poll state, and every
     finished chunk bumps done. */
  _Alignas(64) _Atomic uint64_t state;
  _Alignas(64) _Atomic int64_t done;
  /* The task; written by the caller before it publishes a generation, read
     by a worker only after its CAS claimed a chunk of that generation. */
  _Alignas(64) onnxc_task_fn fn;
  void *args;
  int64_t base, rem; /* chunk i has base + (i < rem) iterations */
  _Atomic int busy;     /* a parallel_for is running */
  _Atomic int sleepers; /* workers blocked (or about to block) on cv */
  _Atomic bool stop;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int num_threads;
  int num_workers;
  pthread_t workers[];
};

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__) || defined(__arm__)
  __asm__ __volatile__("yield" ::: "memory");
#else
  atomic_signal_fence(memory_order_seq_cst);
#endif
}

static int64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void run_chunk(onnxc_pool *p, uint32_t i) {
  int64_t rem = p->rem, idx = (int64_t)i;
  int64_t begin = idx * p->base + (idx < rem ? idx : rem);
  int64_t end = begin + p->base + (idx < rem ? 1 : 0);
  p->fn(p->args, begin, end);
  atomic_fetch_add_explicit(&p->done, 1, memory_order_release);
}

/* Claim and run chunks until none is left in the generation s belongs to
   (or a newer one, which is just as valid: its fields were published before
   the state word we CAS against). */
static void run_chunks(onnxc_pool *p, uint64_t s) {
  while (ST_NEXT(s) < ST_NCHUNKS(s)) {
    if (atomic_compare_exchange_weak_explicit(&p->state, &s, s + 1,
                                              memory_order_acquire,
                                              memory_order_acquire)) {
      run_chunk(p, ST_NEXT(s));
      s += 1;
    }
  }
}

static bool has_news(onnxc_pool *p, uint64_t s, uint32_t seen) {
  return ST_GEN(s) != seen || atomic_load_explicit(&p->stop, memory_order_relaxed);
}

/* Block until the generation differs from seen or the pool stops; returns
   the state word observed. Spins first, then sleeps on cv. */
static uint64_t wait_for_work(onnxc_pool *p, uint32_t seen) {
  int64_t start = now_ns(), elapsed = 0;
  for (unsigned i = 1;; i++) {
    uint64_t s = atomic_load_explicit(&p->state, memory_order_acquire);
    if (has_news(p, s, seen)) return s;
    if (elapsed < SPIN_PAUSE_NS) cpu_relax();
    else sched_yield(); /* lets the caller run when cores are oversubscribed */
    if ((i & 63) == 0 && (elapsed = now_ns() - start) > SPIN_TOTAL_NS) break;
  }
  /* Dekker handshake with publish(): we bump sleepers then re-read state, it
     writes state then reads sleepers (all seq_cst), so one of us sees the
     other; the mutex closes the gap between our check and cond_wait. */
  pthread_mutex_lock(&p->mu);
  atomic_fetch_add_explicit(&p->sleepers, 1, memory_order_seq_cst);
  uint64_t s = atomic_load_explicit(&p->state, memory_order_seq_cst);
  while (!has_news(p, s, seen)) {
    pthread_cond_wait(&p->cv, &p->mu);
    s = atomic_load_explicit(&p->state, memory_order_seq_cst);
  }
  atomic_fetch_sub_explicit(&p->sleepers, 1, memory_order_relaxed);
  pthread_mutex_unlock(&p->mu);
  return s;
}

static void *worker_main(void *arg) {
  onnxc_pool *p = arg;
  uint32_t seen = 0; /* the generation the pool was created with */
  for (;;) {
    uint64_t s = wait_for_work(p, seen);
    if (atomic_load_explicit(&p->stop, memory_order_acquire)) return NULL;
    seen = ST_GEN(s);
    run_chunks(p, s);
  }
}

static void wake_all(onnxc_pool *p) {
  pthread_mutex_lock(&p->mu);
  pthread_cond_broadcast(&p->cv);
  pthread_mutex_unlock(&p->mu);
}

/* Stop and join the first count workers. */
static void stop_workers(onnxc_pool *p, int count) {
  atomic_store_explicit(&p->stop, true, memory_order_seq_cst);
  wake_all(p);
  for (int i = 0; i < count; i++) pthread_join(p->workers[i], NULL);
}

/* Workers keep asynchronous signals blocked so that the application's
   handlers run on its own threads; faults still reach the faulting thread. */
static void block_async_signals(sigset_t *old) {
  sigset_t set;
  sigfillset(&set);
  static const int faults[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP, SIGABRT};
  for (size_t i = 0; i < sizeof faults / sizeof faults[0]; i++) sigdelset(&set, faults[i]);
  pthread_sigmask(SIG_BLOCK, &set, old);
}

static int start_workers(onnxc_pool *p) {
  sigset_t old;
  block_async_signals(&old);
  int started = 0;
  while (started < p->num_workers &&
         pthread_create(&p->workers[started], NULL, worker_main, p) == 0)
    started++;
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  if (started == p->num_workers) return ONNXC_OK;
  stop_workers(p, started);
  return ONNXC_ERR_RUNTIME;
}

static int init_sync(onnxc_pool *p) {
  if (pthread_mutex_init(&p->mu, NULL) != 0) return ONNXC_ERR_RUNTIME;
  if (pthread_cond_init(&p->cv, NULL) != 0) {
    pthread_mutex_destroy(&p->mu);
    return ONNXC_ERR_RUNTIME;
  }
  return ONNXC_OK;
}

int onnxc_pool_create(onnxc_pool **out, int num_threads) {
  if (out == NULL) return ONNXC_ERR_ARGUMENT;
  *out = NULL;
  if (num_threads < 1) return ONNXC_ERR_ARGUMENT;
  if (num_threads > ONNXC_MAX_THREADS) num_threads = ONNXC_MAX_THREADS;
  size_t size = sizeof(onnxc_pool) + (size_t)(num_threads - 1) * sizeof(pthread_t);
  onnxc_pool *p = onnxc_aligned_alloc(size);
  if (p == NULL) return ONNXC_ERR_ALLOC;
  memset(p, 0, size);
  atomic_init(&p->state, ST_MAKE(0, 0));
  atomic_init(&p->done, 0);
  atomic_init(&p->busy, 0);
  atomic_init(&p->sleepers, 0);
  atomic_init(&p->stop, false);
  p->num_threads = num_threads;
  p->num_workers = num_threads - 1;
  int rc = init_sync(p);
  if (rc == ONNXC_OK && (rc = start_workers(p)) != ONNXC_OK) {
    pthread_cond_destroy(&p->cv);
    pthread_mutex_destroy(&p->mu);
  }
  if (rc != ONNXC_OK) {
    onnxc_aligned_free(p);
    return rc;
  }
  *out = p;
  return ONNXC_OK;
}

void onnxc_pool_destroy(onnxc_pool *pool) {
  if (pool == NULL) return;
  stop_workers(pool, pool->num_workers);
  pthread_cond_destroy(&pool->cv);
  pthread_mutex_destroy(&pool->mu);
  onnxc_aligned_free(pool);
}

int onnxc_pool_num_threads(const onnxc_pool *pool) {
  return pool == NULL ? 1 : pool->num_threads;
}

/* Make the task visible to the workers and wake any that sleep. */
static uint64_t publish(onnxc_pool *p, int64_t n, int64_t nchunks,
                        onnxc_task_fn fn, void *args) {
  p->fn = fn;
  p->args = args;
  p->base = n / nchunks;
  p->rem = n % nchunks;
  atomic_store_explicit(&p->done, 0, memory_order_relaxed);
  uint64_t old = atomic_load_explicit(&p->state, memory_order_relaxed);
  uint64_t s = ST_MAKE(ST_GEN(old) + 1u, (uint32_t)nchunks);
  atomic_store_explicit(&p->state, s, memory_order_seq_cst);
  if (atomic_load_explicit(&p->sleepers, memory_order_seq_cst) > 0) wake_all(p);
  return s;
}

static void wait_done(onnxc_pool *p, int64_t nchunks) {
  for (unsigned i = 0; atomic_load_explicit(&p->done, memory_order_acquire) < nchunks; i++) {
    if (i < 4096) cpu_relax();
    else sched_yield(); /* a worker holding a chunk may be descheduled */
  }
}

void onnxc_parallel_for(onnxc_pool *pool, int64_t n, int64_t grain,
                        onnxc_task_fn fn, void *args) {
  if (n <= 0 || fn == NULL) return;
  if (grain < 1) grain = 1;
  int64_t nchunks = n / grain;
  if (pool != NULL && nchunks > pool->num_threads) nchunks = pool->num_threads;
  if (pool == NULL || nchunks < 2 ||
      atomic_exchange_explicit(&pool->busy, 1, memory_order_acquire)) {
    fn(args, 0, n); /* serial: no pool, too little work, or pool in use */
    return;
  }
  uint64_t s = publish(pool, n, nchunks, fn, args);
  run_chunks(pool, s);
  wait_done(pool, nchunks);
  atomic_store_explicit(&pool->busy, 0, memory_order_release);
}
