/* A fake libcuda.so.1 for test_cuda_runtime.py: the driver entry points that
 * runtime_c/onnxc_cuda.c resolves, implemented over host memory. It checks our
 * symbol resolution, error paths and bookkeeping (context current on the
 * calling thread, everything released), not GPU execution.
 *
 * Device memory is malloc'ed; copies are memcpy. A "kernel" is any name that
 * starts with 'k'; a launch writes grid.x * block.x as a float to the device
 * pointer its first parameter points at. Environment:
 *   FAKE_CUDA_NO_DEVICE=1      cuInit fails with CUDA_ERROR_NO_DEVICE
 *   FAKE_CUDA_DEVICES=N        cuDeviceGetCount reports N (default 1)
 *   FAKE_CUDA_FAIL=SYMBOL:CODE the entry point SYMBOL returns CODE
 * The legacy unversioned exports (cuMemAlloc, ...) fail and are counted, so a
 * caller that resolved them shows up in fake_cuda_report().
 */
#define _POSIX_C_SOURCE 200809L

#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef int CUresult;
typedef unsigned long long CUdeviceptr;
typedef struct fake_handle *handle; /* contexts, modules, functions, streams */

enum {
  SUCCESS = 0, INVALID_VALUE = 1, OUT_OF_MEMORY = 2, NOT_INITIALIZED = 3, NO_DEVICE = 100,
  INVALID_DEVICE = 101, INVALID_IMAGE = 200, INVALID_CONTEXT = 201, INVALID_HANDLE = 400,
  NOT_FOUND = 500, NOT_SUPPORTED = 801
};

static const struct { int code; const char *name, *text; } errors[] = {
    {SUCCESS, "CUDA_SUCCESS", "no error"},
    {INVALID_VALUE, "CUDA_ERROR_INVALID_VALUE", "invalid argument"},
    {OUT_OF_MEMORY, "CUDA_ERROR_OUT_OF_MEMORY", "out of memory"},
    {NOT_INITIALIZED, "CUDA_ERROR_NOT_INITIALIZED", "initialization error"},
    {NO_DEVICE, "CUDA_ERROR_NO_DEVICE", "no CUDA-capable device is detected"},
    {INVALID_DEVICE, "CUDA_ERROR_INVALID_DEVICE", "invalid device ordinal"},
    {INVALID_IMAGE, "CUDA_ERROR_INVALID_IMAGE", "device kernel image is invalid"},
    {INVALID_CONTEXT, "CUDA_ERROR_INVALID_CONTEXT", "invalid device context"},
    {INVALID_HANDLE, "CUDA_ERROR_INVALID_HANDLE", "invalid resource handle"},
    {NOT_FOUND, "CUDA_ERROR_NOT_FOUND", "named symbol not found"},
    {NOT_SUPPORTED, "CUDA_ERROR_NOT_SUPPORTED", "operation not supported"},
};

struct fake_handle { char name[64]; };
static struct fake_handle context = {"context"}, stream = {"stream"}, module = {"module"};
static struct fake_handle functions[16];
static _Atomic int num_functions;

static _Atomic int initialized, ctx_refs, live_allocs, modules, streams, launches;
static _Atomic int set_current_calls, legacy_calls, ordinal = -1, stream_flags = -1;
static _Thread_local handle current; /* the driver's current context is per thread */
static char last_launch[160] = "none";

/* FAKE_CUDA_FAIL=SYMBOL:CODE makes SYMBOL return CODE. */
static CUresult injected(const char *symbol) {
  const char *spec = getenv("FAKE_CUDA_FAIL");
  size_t n = strlen(symbol);
  if (spec == NULL || strncmp(spec, symbol, n) != 0 || spec[n] != ':') return SUCCESS;
  return atoi(spec + n + 1);
}

/* Memory, module and stream calls need cuInit and our context current. */
static CUresult ready(const char *symbol) {
  if (!initialized) return NOT_INITIALIZED;
  if (current != &context || ctx_refs == 0) return INVALID_CONTEXT;
  return injected(symbol);
}

CUresult cuGetErrorName(CUresult error, const char **str) {
  for (size_t i = 0; i < sizeof errors / sizeof errors[0]; i++)
    if (errors[i].code == error) {
      *str = errors[i].name;
      return SUCCESS;
    }
  *str = NULL;
  return INVALID_VALUE;
}

CUresult cuGetErrorString(CUresult error, const char **str) {
  for (size_t i = 0; i < sizeof errors / sizeof errors[0]; i++)
    if (errors[i].code == error) {
      *str = errors[i].text;
      return SUCCESS;
    }
  *str = NULL;
  return INVALID_VALUE;
}

CUresult cuInit(unsigned flags) {
  const char *no = getenv("FAKE_CUDA_NO_DEVICE");
  if (flags != 0) return INVALID_VALUE;
  if (no != NULL && strcmp(no, "1") == 0) return NO_DEVICE;
  initialized = 1;
  return injected("cuInit");
}

static int device_count(void) {
  const char *n = getenv("FAKE_CUDA_DEVICES");
  return n != NULL ? atoi(n) : 1;
}

CUresult cuDeviceGetCount(int *count) {
  if (!initialized) return NOT_INITIALIZED;
  *count = device_count();
  return injected("cuDeviceGetCount");
}

CUresult cuDeviceGet(int *device, int index) {
  if (!initialized) return NOT_INITIALIZED;
  if (index < 0 || index >= device_count()) return INVALID_DEVICE;
  *device = 100 + index; /* a device is not its ordinal */
  ordinal = index;
  return injected("cuDeviceGet");
}

CUresult cuDevicePrimaryCtxRetain(handle *ctx, int device) {
  if (!initialized) return NOT_INITIALIZED;
  if (device != 100 + ordinal) return INVALID_DEVICE;
  CUresult r = injected("cuDevicePrimaryCtxRetain");
  if (r != SUCCESS) return r;
  ctx_refs++;
  *ctx = &context;
  return SUCCESS;
}

CUresult cuDevicePrimaryCtxRelease_v2(int device) {
  if (device != 100 + ordinal || ctx_refs == 0) return INVALID_DEVICE;
  ctx_refs--;
  return injected("cuDevicePrimaryCtxRelease_v2");
}

CUresult cuCtxSetCurrent(handle ctx) {
  if (ctx != NULL && ctx != &context) return INVALID_CONTEXT;
  set_current_calls++;
  CUresult r = injected("cuCtxSetCurrent");
  if (r == SUCCESS) current = ctx;
  return r;
}

CUresult cuModuleLoadData(handle *mod, const void *image) {
  CUresult r = ready("cuModuleLoadData");
  if (r != SUCCESS) return r;
  if (image == NULL) return INVALID_VALUE;
  if (strncmp(image, "bad", 3) == 0) return INVALID_IMAGE;
  modules++;
  *mod = &module;
  return SUCCESS;
}

CUresult cuModuleUnload(handle mod) {
  CUresult r = ready("cuModuleUnload");
  if (r != SUCCESS) return r;
  if (mod != &module || modules == 0) return INVALID_HANDLE;
  modules--;
  return SUCCESS;
}

CUresult cuModuleGetFunction(handle *fn, handle mod, const char *name) {
  CUresult r = ready("cuModuleGetFunction");
  if (r != SUCCESS) return r;
  if (mod != &module) return INVALID_HANDLE;
  if (name[0] != 'k') return NOT_FOUND;
  int i = num_functions++;
  if (i >= 16) return OUT_OF_MEMORY;
  snprintf(functions[i].name, sizeof functions[i].name, "%s", name);
  *fn = &functions[i];
  return SUCCESS;
}

CUresult cuStreamCreate(handle *s, unsigned flags) {
  CUresult r = ready("cuStreamCreate");
  if (r != SUCCESS) return r;
  stream_flags = (int)flags;
  streams++;
  *s = &stream;
  return SUCCESS;
}

CUresult cuStreamDestroy_v2(handle s) {
  if (s != &stream || streams == 0) return INVALID_HANDLE;
  streams--;
  return injected("cuStreamDestroy_v2");
}

CUresult cuStreamSynchronize(handle s) {
  CUresult r = ready("cuStreamSynchronize");
  return r != SUCCESS ? r : s == &stream ? SUCCESS : INVALID_HANDLE;
}

CUresult cuMemAlloc_v2(CUdeviceptr *p, size_t bytes) {
  CUresult r = ready("cuMemAlloc_v2");
  if (r != SUCCESS) return r;
  if (bytes == 0) return INVALID_VALUE;
  void *mem = bytes < ((size_t)1 << 40) ? malloc(bytes) : NULL;
  if (mem == NULL) return OUT_OF_MEMORY;
  live_allocs++;
  *p = (CUdeviceptr)(uintptr_t)mem;
  return SUCCESS;
}

CUresult cuMemFree_v2(CUdeviceptr p) {
  CUresult r = ready("cuMemFree_v2");
  if (r != SUCCESS) return r;
  free((void *)(uintptr_t)p);
  live_allocs--;
  return SUCCESS;
}

#define DEV(p) ((void *)(uintptr_t)(p))

CUresult cuMemcpyHtoDAsync_v2(CUdeviceptr dst, const void *src, size_t n, handle s) {
  CUresult r = ready("cuMemcpyHtoDAsync_v2");
  if (r == SUCCESS && s != &stream) r = INVALID_HANDLE;
  if (r == SUCCESS) memcpy(DEV(dst), src, n);
  return r;
}

CUresult cuMemcpyDtoHAsync_v2(void *dst, CUdeviceptr src, size_t n, handle s) {
  CUresult r = ready("cuMemcpyDtoHAsync_v2");
  if (r == SUCCESS && s != &stream) r = INVALID_HANDLE;
  if (r == SUCCESS) memcpy(dst, DEV(src), n);
  return r;
}

CUresult cuMemcpyDtoDAsync_v2(CUdeviceptr dst, CUdeviceptr src, size_t n, handle s) {
  CUresult r = ready("cuMemcpyDtoDAsync_v2");
  if (r == SUCCESS && s != &stream) r = INVALID_HANDLE;
  if (r == SUCCESS) memmove(DEV(dst), DEV(src), n);
  return r;
}

CUresult cuMemsetD8Async(CUdeviceptr dst, unsigned char value, size_t n, handle s) {
  CUresult r = ready("cuMemsetD8Async");
  if (r == SUCCESS && s != &stream) r = INVALID_HANDLE;
  if (r == SUCCESS) memset(DEV(dst), value, n);
  return r;
}

CUresult cuLaunchKernel(handle f, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by,
                        unsigned bz, unsigned shared, handle s, void **params, void **extra) {
  CUresult r = ready("cuLaunchKernel");
  if (r != SUCCESS) return r;
  if (f < &functions[0] || f >= &functions[num_functions] || s != &stream) return INVALID_HANDLE;
  if (extra != NULL || gx * gy * gz == 0 || bx * by * bz == 0) return INVALID_VALUE;
  snprintf(last_launch, sizeof last_launch, "%s:%u,%u,%u/%u,%u,%u/%u", f->name, gx, gy, gz, bx,
           by, bz, shared);
  launches++;
  if (params != NULL) {
    CUdeviceptr out;
    memcpy(&out, params[0], sizeof out); /* params[0] points at the argument's value */
    float value = (float)(gx * bx);
    memcpy(DEV(out), &value, sizeof value);
  }
  return SUCCESS;
}

/* The unversioned exports of the real driver are legacy ABIs (32-bit sizes
   and pointers, or older semantics); calling one is a bug in the caller. */
#define LEGACY(name)                          \
  CUresult name(void);                        \
  CUresult name(void) {                       \
    legacy_calls++;                           \
    return NOT_SUPPORTED;                     \
  }
LEGACY(cuMemAlloc)
LEGACY(cuMemFree)
LEGACY(cuMemcpyHtoDAsync)
LEGACY(cuMemcpyDtoHAsync)
LEGACY(cuMemcpyDtoDAsync)
LEGACY(cuStreamDestroy)
LEGACY(cuDevicePrimaryCtxRelease)

/* One line of counters for the test to parse. */
const char *fake_cuda_report(void);
const char *fake_cuda_report(void) {
  static char line[512];
  snprintf(line, sizeof line,
           "allocs=%d ctx_refs=%d modules=%d streams=%d launches=%d set_current=%d legacy=%d "
           "ordinal=%d stream_flags=%d last_launch=%s",
           live_allocs, ctx_refs, modules, streams, launches, set_current_calls, legacy_calls,
           ordinal, stream_flags, last_launch);
  return line;
}
