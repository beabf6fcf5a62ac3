/* Runs one compiled model from many threads at once, each on a context of its own with a
 * thread pool of its own, for the sanitizer tests (tests/test_sanitize.py): under TSan a race
 * between contexts or inside the pool is a report, under ASan (leak checking on) a context
 * that leaks or an access out of bounds is one. Every thread's outputs must be the bytes of a
 * reference run made first with the same number of pool threads.
 *
 * usage: contexts_driver LIB.so NAME THREADS POOL_THREADS RUNS
 * Exit status: 0 on success, 1 on a wrong output or a failed call, 2 on a usage error.
 */
#define _POSIX_C_SOURCE 200809L
#include <dlfcn.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_TENSORS 64

typedef struct {
  int (*create)(void **);
  void (*destroy)(void *);
  int (*run)(void *, const void *const *, void *const *);
  int (*set_num_threads)(void *, int);
  const char *(*last_error)(const void *);
  int n_in, n_out;
  size_t in_bytes[MAX_TENSORS], out_bytes[MAX_TENSORS];
  void *inputs[MAX_TENSORS];
  void *reference[MAX_TENSORS];
  int pool_threads, runs;
} model;

static size_t element_size(int code) {
  switch (code) {
    case 2: case 3: case 9: return 1;                 /* uint8, int8, bool */
    case 4: case 5: case 10: case 16: return 2;       /* uint16, int16, float16, bfloat16 */
    case 1: case 6: case 12: return 4;                /* float, int32, uint32 */
    case 7: case 11: case 13: return 8;               /* int64, double, uint64 */
    default: return 0;
  }
}

static void *symbol(void *lib, const char *name, const char *suffix) {
  char full[256];
  snprintf(full, sizeof full, "%s_%s", name, suffix);
  void *f = dlsym(lib, full);
  if (!f) {
    fprintf(stderr, "contexts_driver: %s not found\n", full);
    exit(2);
  }
  return f;
}

/* Bytes of tensor i of one side (0: inputs, 1: outputs), from the library's description. */
static size_t tensor_bytes(void *lib, const char *name, int side, int i) {
  const char *s[2][3] = {{"input_dtype", "input_rank", "input_shape"},
                         {"output_dtype", "output_rank", "output_shape"}};
  int code = ((int (*)(int))symbol(lib, name, s[side][0]))(i);
  int rank = ((int (*)(int))symbol(lib, name, s[side][1]))(i);
  const int64_t *shape = ((const int64_t *(*)(int))symbol(lib, name, s[side][2]))(i);
  size_t n = element_size(code);
  if (n == 0) {
    fprintf(stderr, "contexts_driver: dtype %d not supported\n", code);
    exit(2);
  }
  for (int a = 0; a < rank; a++) n *= (size_t)shape[a];
  return n;
}

/* One context: create, set the pool, run `runs` times into out, destroy. 0 on success. */
static int run_context(const model *m, void **out, int runs) {
  void *ctx = NULL;
  if (m->create(&ctx) != 0) return fprintf(stderr, "contexts_driver: create failed\n"), 1;
  int rc = m->set_num_threads(ctx, m->pool_threads);
  for (int r = 0; r < runs && rc == 0; r++) {
    rc = m->run(ctx, (const void *const *)m->inputs, out);
    if (rc != 0) fprintf(stderr, "contexts_driver: run: %s\n", m->last_error(ctx));
  }
  m->destroy(ctx);
  return rc != 0;
}

static void *thread_main(void *arg) {
  const model *m = arg;
  void *out[MAX_TENSORS];
  intptr_t bad = 0;
  for (int i = 0; i < m->n_out; i++) out[i] = malloc(m->out_bytes[i] + 1);
  bad = run_context(m, out, m->runs);
  for (int i = 0; i < m->n_out; i++) {
    if (!bad && memcmp(out[i], m->reference[i], m->out_bytes[i]) != 0) {
      fprintf(stderr, "contexts_driver: output %d differs from the reference run\n", i);
      bad = 1;
    }
    free(out[i]);
  }
  return (void *)bad;
}

static void describe(model *m, void *lib, const char *name) {
  m->create = (int (*)(void **))symbol(lib, name, "create");
  m->destroy = (void (*)(void *))symbol(lib, name, "destroy");
  m->run = (int (*)(void *, const void *const *, void *const *))symbol(lib, name, "run");
  m->set_num_threads = (int (*)(void *, int))symbol(lib, name, "set_num_threads");
  m->last_error = (const char *(*)(const void *))symbol(lib, name, "last_error");
  m->n_in = ((int (*)(void))symbol(lib, name, "num_inputs"))();
  m->n_out = ((int (*)(void))symbol(lib, name, "num_outputs"))();
  if (m->n_in > MAX_TENSORS || m->n_out > MAX_TENSORS) exit(2);
  for (int i = 0; i < m->n_in; i++) {
    m->in_bytes[i] = tensor_bytes(lib, name, 0, i);
    unsigned char *data = malloc(m->in_bytes[i] + 1);
    for (size_t b = 0; b < m->in_bytes[i]; b++) data[b] = (unsigned char)((b * 7 + i) % 61);
    m->inputs[i] = data;
  }
  for (int i = 0; i < m->n_out; i++) {
    m->out_bytes[i] = tensor_bytes(lib, name, 1, i);
    m->reference[i] = malloc(m->out_bytes[i] + 1);
  }
}

int main(int argc, char **argv) {
  if (argc != 6) {
    fprintf(stderr, "usage: %s LIB.so NAME THREADS POOL_THREADS RUNS\n", argv[0]);
    return 2;
  }
  void *lib = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
  if (!lib) return fprintf(stderr, "contexts_driver: %s\n", dlerror()), 2;
  model m = {0};
  int threads = atoi(argv[3]);
  m.pool_threads = atoi(argv[4]);
  m.runs = atoi(argv[5]);
  if (threads < 1 || threads > 256 || m.pool_threads < 1 || m.runs < 1) return 2;
  describe(&m, lib, argv[2]);
  int bad = run_context(&m, m.reference, 1);
  pthread_t *ids = calloc((size_t)threads, sizeof *ids);
  int started = 0;
  while (!bad && started < threads && pthread_create(&ids[started], NULL, thread_main, &m) == 0)
    started++;
  bad |= !bad && started < threads;
  for (int t = 0; t < started; t++) {
    void *result = NULL;
    pthread_join(ids[t], &result);
    bad |= result != NULL;
  }
  for (int i = 0; i < m.n_in; i++) free(m.inputs[i]);
  for (int i = 0; i < m.n_out; i++) free(m.reference[i]);
  free(ids);
  dlclose(lib);
  if (!bad) printf("contexts_driver: %d threads x %d runs, pools of %d: ok\n", threads, m.runs,
                   m.pool_threads);
  return bad;
}
