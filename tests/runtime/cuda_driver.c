/* Test driver for runtime_c/onnxc_cuda.c, run by test_cuda_runtime.py either
 * with no CUDA driver at all or with tests/runtime/fake_libcuda.c as
 * libcuda.so.1. Prints "key=value" or "step status message" lines for the test
 * to check; returns nonzero only when a check made here fails.
 *
 *   cuda_driver args                 NULL arguments; needs no driver
 *   cuda_driver create IMAGE NAME..  create, print status and message, destroy
 *   cuda_driver live                 argument checks on a live object
 *   cuda_driver roundtrip            alloc, upload, copy, memset, launch, download
 *   cuda_driver thread               roundtrip from a thread other than create's
 *
 * When libcuda.so.1 exports fake_cuda_report (the fake), its counters are
 * printed last as "fake: ...". The program holds its own handle on the
 * library so that the counters outlive onnxc_cuda_destroy's dlclose.
 */
#define _POSIX_C_SOURCE 200809L

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "onnxc_cuda.h"

#define CHECK(cond)                                                               \
  do {                                                                            \
    if (!(cond)) {                                                                \
      fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);    \
      exit(2);                                                                    \
    }                                                                             \
  } while (0)

#define N 16
static const char image[] = "fake image";
static const char *const kernels[] = {"kfill", "kother"};

static int check_args(void) {
  onnxc_cuda *c = (onnxc_cuda *)&c; /* not NULL: create must reset it */
  char msg[128] = "untouched";
  const char *names[] = {"kfill", NULL};
  CHECK(onnxc_cuda_create(NULL, image, kernels, 2, msg, sizeof msg) == ONNXC_ERR_ARGUMENT);
  CHECK(strstr(msg, "out is NULL") != NULL);
  CHECK(onnxc_cuda_create(&c, NULL, kernels, 2, msg, sizeof msg) == ONNXC_ERR_ARGUMENT);
  CHECK(c == NULL && strstr(msg, "image is NULL") != NULL);
  CHECK(onnxc_cuda_create(&c, image, kernels, -1, NULL, 0) == ONNXC_ERR_ARGUMENT && !c);
  CHECK(onnxc_cuda_create(&c, image, NULL, 1, msg, 4) == ONNXC_ERR_ARGUMENT && !c);
  CHECK(strlen(msg) == 3); /* truncated to error_size */
  CHECK(onnxc_cuda_create(&c, image, names, 2, msg, sizeof msg) == ONNXC_ERR_ARGUMENT && !c);
  onnxc_cuda_destroy(NULL);
  onnxc_cuda_free(NULL, NULL);
  onnxc_cuda_free(NULL, msg);
  void *p = msg;
  unsigned dims[3] = {1, 1, 1};
  CHECK(onnxc_cuda_alloc(NULL, &p, 4) == ONNXC_ERR_ARGUMENT && p == NULL);
  CHECK(onnxc_cuda_upload(NULL, msg, msg, 4) == ONNXC_ERR_ARGUMENT);
  CHECK(onnxc_cuda_download(NULL, msg, msg, 4) == ONNXC_ERR_ARGUMENT);
  CHECK(onnxc_cuda_copy(NULL, msg, msg, 4) == ONNXC_ERR_ARGUMENT);
  CHECK(onnxc_cuda_memset(NULL, msg, 0, 4) == ONNXC_ERR_ARGUMENT);
  CHECK(onnxc_cuda_launch(NULL, 0, dims, dims, 0, NULL) == ONNXC_ERR_ARGUMENT);
  CHECK(onnxc_cuda_synchronize(NULL) == ONNXC_ERR_ARGUMENT);
  CHECK(strcmp(onnxc_cuda_last_error(NULL), "") == 0);
  printf("args ok\n");
  return 0;
}

static int create(int argc, char **argv) {
  onnxc_cuda *c = (onnxc_cuda *)&c;
  char msg[512] = "untouched";
  int status = onnxc_cuda_create(&c, argv[0], (const char *const *)argv + 1, argc - 1, msg,
                                 sizeof msg);
  printf("status=%d\nout_null=%d\nmessage=%s\n", status, c == NULL, msg);
  if (c != NULL) printf("last_error=%s\n", onnxc_cuda_last_error(c));
  onnxc_cuda_destroy(c);
  return 0;
}

static onnxc_cuda *must_create(void) {
  onnxc_cuda *c = NULL;
  char msg[512];
  int status = onnxc_cuda_create(&c, image, kernels, 2, msg, sizeof msg);
  if (status != ONNXC_OK) fprintf(stderr, "create: %d %s\n", status, msg);
  CHECK(status == ONNXC_OK && c != NULL && msg[0] == '\0');
  return c;
}

static int check_live(void) {
  onnxc_cuda *c = must_create();
  void *p = &c;
  unsigned dims[3] = {1, 1, 1};
  CHECK(strcmp(onnxc_cuda_last_error(c), "") == 0);
  CHECK(onnxc_cuda_alloc(c, &p, 0) == ONNXC_OK && p == NULL);
  CHECK(onnxc_cuda_upload(c, NULL, NULL, 0) == ONNXC_OK);
  CHECK(onnxc_cuda_download(c, NULL, NULL, 0) == ONNXC_OK);
  CHECK(onnxc_cuda_copy(c, NULL, NULL, 0) == ONNXC_OK);
  CHECK(onnxc_cuda_memset(c, NULL, 0, 0) == ONNXC_OK);
  CHECK(strcmp(onnxc_cuda_last_error(c), "") == 0); /* zero bytes: nothing happens */
  CHECK(onnxc_cuda_alloc(c, NULL, 4) == ONNXC_ERR_ARGUMENT);
  CHECK(onnxc_cuda_upload(c, NULL, dims, 4) == ONNXC_ERR_ARGUMENT);
  CHECK(strstr(onnxc_cuda_last_error(c), "onnxc_cuda_upload") != NULL);
  CHECK(onnxc_cuda_memset(c, NULL, 0, 4) == ONNXC_ERR_ARGUMENT);
  CHECK(onnxc_cuda_launch(c, 2, dims, dims, 0, NULL) == ONNXC_ERR_ARGUMENT);
  CHECK(strstr(onnxc_cuda_last_error(c), "kernel 2 out of range (2 kernels)") != NULL);
  CHECK(onnxc_cuda_launch(c, -1, dims, dims, 0, NULL) == ONNXC_ERR_ARGUMENT);
  CHECK(onnxc_cuda_launch(c, 0, NULL, dims, 0, NULL) == ONNXC_ERR_ARGUMENT);
  CHECK(onnxc_cuda_alloc(c, &p, (size_t)1 << 41) == ONNXC_ERR_DEVICE && p == NULL);
  printf("alloc_error=%s\n", onnxc_cuda_last_error(c));
  onnxc_cuda_free(c, NULL);
  onnxc_cuda_destroy(c);
  printf("live ok\n");
  return 0;
}

/* Print "step status [message]"; false (stop) on failure. */
static int step(onnxc_cuda *c, const char *name, int status) {
  printf("%s %d%s%s\n", name, status, status ? " " : "", status ? onnxc_cuda_last_error(c) : "");
  return status == ONNXC_OK;
}

static void print_floats(const char *name, const float *v) {
  printf("%s=", name);
  for (int i = 0; i < N; i++) printf("%s%g", i ? "," : "", v[i]);
  printf("\n");
}

/* The kernels of the fake write grid.x * block.x to element 0 of the buffer
   their first parameter points to: a = [15, 0...], b = [8, 1, 2, ...]. */
static void roundtrip_on(onnxc_cuda *c) {
  float host[N], a_out[N], b_out[N];
  for (int i = 0; i < N; i++) host[i] = (float)i;
  void *a = NULL, *b = NULL;
  unsigned g0[3] = {3, 1, 1}, b0[3] = {5, 1, 1}, g1[3] = {2, 2, 1}, b1[3] = {4, 1, 1};
  void *pa[] = {&a}, *pb[] = {&b};
  int ok = step(c, "alloc", onnxc_cuda_alloc(c, &a, sizeof host)) &&
           step(c, "alloc", onnxc_cuda_alloc(c, &b, sizeof host)) &&
           step(c, "upload", onnxc_cuda_upload(c, a, host, sizeof host)) &&
           step(c, "copy", onnxc_cuda_copy(c, b, a, sizeof host)) &&
           step(c, "memset", onnxc_cuda_memset(c, a, 0, sizeof host)) &&
           step(c, "launch", onnxc_cuda_launch(c, 0, g0, b0, 0, pa)) &&
           step(c, "launch", onnxc_cuda_launch(c, 1, g1, b1, 128, pb)) &&
           step(c, "synchronize", onnxc_cuda_synchronize(c)) &&
           step(c, "download", onnxc_cuda_download(c, a_out, a, sizeof a_out)) &&
           step(c, "download", onnxc_cuda_download(c, b_out, b, sizeof b_out));
  if (ok) {
    print_floats("a", a_out);
    print_floats("b", b_out);
  }
  onnxc_cuda_free(c, a);
  onnxc_cuda_free(c, b);
  printf("last_error=%s\n", onnxc_cuda_last_error(c));
}

static void *thread_main(void *c) {
  roundtrip_on(c);
  return NULL;
}

static int roundtrip(int threaded) {
  onnxc_cuda *c = must_create();
  if (threaded) {
    pthread_t t;
    CHECK(pthread_create(&t, NULL, thread_main, c) == 0);
    CHECK(pthread_join(t, NULL) == 0);
  } else {
    roundtrip_on(c);
  }
  onnxc_cuda_destroy(c);
  return 0;
}

int main(int argc, char **argv) {
  if (argc < 2) return 2;
  void *fake = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
  int rc = 2;
  if (strcmp(argv[1], "args") == 0) rc = check_args();
  else if (strcmp(argv[1], "create") == 0 && argc >= 3) rc = create(argc - 2, argv + 2);
  else if (strcmp(argv[1], "live") == 0) rc = check_live();
  else if (strcmp(argv[1], "roundtrip") == 0) rc = roundtrip(0);
  else if (strcmp(argv[1], "thread") == 0) rc = roundtrip(1);
  if (fake != NULL) {
    const char *(*report)(void);
    void *sym = dlsym(fake, "fake_cuda_report");
    memcpy(&report, &sym, sizeof sym);
    if (report != NULL) printf("fake: %s\n", report());
    dlclose(fake);
  }
  return rc;
}
