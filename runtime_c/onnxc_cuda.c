/* onnxc CUDA runtime; see onnxc_cuda.h for the contract. */
#define _POSIX_C_SOURCE 200809L

#include "onnxc_cuda.h"

#include <ctype.h>
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "onnxc_cuda_driver.h"

/* Device pointers travel as void *, and CUdeviceptr is 64 bits wide on the
   hosts the driver supports. */
_Static_assert(sizeof(void *) == sizeof(onnxc_cu_deviceptr), "the CUDA driver needs a 64-bit host");
/* dlsym's result is copied bytewise into function-pointer slots (POSIX
   guarantees the representations agree; ISO C has no conversion for it). */
_Static_assert(sizeof(void *) == sizeof(onnxc_pfn_cuInit), "function pointers differ from void *");

#define DRIVER_LIBRARY "libcuda.so.1"
#define ERROR_SIZE 512
#define STEP_SIZE 256 /* a step names at most one kernel (truncated) */

/* The driver entry points, as data: exported symbol name and slot. The names
   are the versioned ones that cuda.h maps each API to (cuMemAlloc is
   cuMemAlloc_v2; its unversioned export is the legacy 32-bit ABI);
   test_cuda_runtime.py parses this table and checks it against cuda.h. */
#define ONNXC_CU_SYM(sym) {#sym, offsetof(onnxc_cu_api, sym)}
static const struct {
  const char *name;
  size_t offset;
} driver_symbols[] = {
    ONNXC_CU_SYM(cuGetErrorName),       ONNXC_CU_SYM(cuGetErrorString),
    ONNXC_CU_SYM(cuInit),               ONNXC_CU_SYM(cuDeviceGetCount),
    ONNXC_CU_SYM(cuDeviceGet),          ONNXC_CU_SYM(cuDevicePrimaryCtxRetain),
    ONNXC_CU_SYM(cuDevicePrimaryCtxRelease_v2), ONNXC_CU_SYM(cuCtxSetCurrent),
    ONNXC_CU_SYM(cuModuleLoadData),     ONNXC_CU_SYM(cuModuleUnload),
    ONNXC_CU_SYM(cuModuleGetFunction),  ONNXC_CU_SYM(cuStreamCreate),
    ONNXC_CU_SYM(cuStreamDestroy_v2),   ONNXC_CU_SYM(cuStreamSynchronize),
    ONNXC_CU_SYM(cuMemAlloc_v2),        ONNXC_CU_SYM(cuMemFree_v2),
    ONNXC_CU_SYM(cuMemcpyHtoDAsync_v2), ONNXC_CU_SYM(cuMemcpyDtoHAsync_v2),
    ONNXC_CU_SYM(cuMemcpyDtoDAsync_v2), ONNXC_CU_SYM(cuMemsetD8Async),
    ONNXC_CU_SYM(cuLaunchKernel),
};
#undef ONNXC_CU_SYM

typedef struct {
  onnxc_cu_function function;
  const char *name; /* points into the object's own copy of the names */
} kernel_entry;

struct onnxc_cuda {
  void *library; /* dlopen handle of the driver */
  onnxc_cu_api api;
  onnxc_cu_device device;
  onnxc_cu_context context; /* retained primary context; NULL until retained */
  onnxc_cu_module module;
  onnxc_cu_stream stream;
  int num_kernels;
  char error[ERROR_SIZE];
  kernel_entry kernels[]; /* num_kernels entries, then the names' characters */
};

/* ---- errors ------------------------------------------------------------ */

__attribute__((format(printf, 2, 3))) static void set_error(onnxc_cuda *c, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(c->error, sizeof c->error, fmt, ap);
  va_end(ap);
}

static int argument_error(onnxc_cuda *c, const char *what) {
  set_error(c, "%s", what);
  return ONNXC_ERR_ARGUMENT;
}

/* "<step> failed: NAME (description)", or the number when the driver cannot
   name the code (cuGetErrorName rejects codes it does not know). */
static int driver_error(onnxc_cuda *c, const char *step, onnxc_cu_result r) {
  const char *name = NULL, *text = NULL;
  if (c->api.cuGetErrorName(r, &name) != ONNXC_CU_SUCCESS) name = NULL;
  if (c->api.cuGetErrorString(r, &text) != ONNXC_CU_SUCCESS) text = NULL;
  if (name != NULL)
    set_error(c, "%s failed: %s (%s)", step, name, text != NULL ? text : "no description");
  else
    set_error(c, "%s failed: CUresult %d", step, (int)r);
  return ONNXC_ERR_DEVICE;
}

static int check(onnxc_cuda *c, onnxc_cu_result r, const char *step) {
  return r == ONNXC_CU_SUCCESS ? ONNXC_OK : driver_error(c, step, r);
}

/* A model object may move between threads, and the driver's current context
   is per thread. */
static int make_current(onnxc_cuda *c) {
  return check(c, c->api.cuCtxSetCurrent(c->context), "cuCtxSetCurrent");
}

static onnxc_cu_deviceptr dptr(const void *p) { return (onnxc_cu_deviceptr)(uintptr_t)p; }

static void copy_message(char *error, size_t error_size, const char *message) {
  if (error != NULL && error_size > 0) snprintf(error, error_size, "%s", message);
}

/* ---- create / destroy -------------------------------------------------- */

static int check_create_args(onnxc_cuda **out, const void *image, const char *const *names,
                             int count, char *error, size_t error_size) {
  const char *problem = NULL;
  if (out == NULL) problem = "onnxc_cuda_create: out is NULL";
  else if (image == NULL) problem = "onnxc_cuda_create: image is NULL";
  else if (count < 0) problem = "onnxc_cuda_create: negative kernel count";
  else if (count > 0 && names == NULL) problem = "onnxc_cuda_create: kernel_names is NULL";
  for (int i = 0; problem == NULL && i < count; i++)
    if (names[i] == NULL) problem = "onnxc_cuda_create: a kernel name is NULL";
  if (problem == NULL) return ONNXC_OK;
  copy_message(error, error_size, problem);
  return ONNXC_ERR_ARGUMENT;
}

/* The object with room for the kernel table and a copy of the names, or
   NULL when out of memory (or the sizes overflow). */
static onnxc_cuda *new_object(const char *const *names, int count) {
  size_t size = sizeof(onnxc_cuda), table = (size_t)count * sizeof(kernel_entry);
  if ((size_t)count > SIZE_MAX / sizeof(kernel_entry) || table > SIZE_MAX - size) return NULL;
  size += table;
  for (int i = 0; i < count; i++) {
    size_t len = strlen(names[i]) + 1;
    if (len > SIZE_MAX - size) return NULL;
    size += len;
  }
  onnxc_cuda *c = calloc(1, size);
  if (c == NULL) return NULL;
  c->num_kernels = count;
  char *chars = (char *)&c->kernels[count];
  for (int i = 0; i < count; i++) {
    size_t len = strlen(names[i]) + 1;
    memcpy(chars, names[i], len);
    c->kernels[i].name = chars;
    chars += len;
  }
  return c;
}

static int load_driver(onnxc_cuda *c) {
  c->library = dlopen(DRIVER_LIBRARY, RTLD_NOW | RTLD_LOCAL);
  if (c->library == NULL) {
    const char *why = dlerror();
    set_error(c, "CUDA driver not found (%s)", why != NULL ? why : DRIVER_LIBRARY);
    return ONNXC_ERR_DEVICE;
  }
  for (size_t i = 0; i < sizeof driver_symbols / sizeof driver_symbols[0]; i++) {
    dlerror(); /* clear: a NULL result is only an error if dlerror says so */
    void *sym = dlsym(c->library, driver_symbols[i].name);
    const char *why = dlerror();
    if (sym == NULL || why != NULL) {
      set_error(c, "CUDA driver too old: %s not found (%s)", driver_symbols[i].name,
                why != NULL ? why : "NULL address");
      return ONNXC_ERR_DEVICE;
    }
    memcpy((char *)&c->api + driver_symbols[i].offset, &sym, sizeof sym);
  }
  return ONNXC_OK;
}

/* ONNXC_CUDA_DEVICE: unset or blank is device 0; otherwise a decimal integer
   in [0, INT_MAX] with optional surrounding whitespace, else -1. */
static int device_index(const char *s) {
  if (s == NULL) return 0;
  while (isspace((unsigned char)*s)) s++;
  if (*s == '\0') return 0;
  char *end;
  errno = 0;
  long v = strtol(s, &end, 10);
  if (end == s) return -1;
  while (isspace((unsigned char)*end)) end++;
  if (*end != '\0' || errno == ERANGE || v < 0 || v > INT_MAX) return -1;
  return (int)v;
}

static int pick_device(onnxc_cuda *c) {
  const char *env = getenv("ONNXC_CUDA_DEVICE");
  int index = device_index(env), count = 0, rc;
  if (index < 0) {
    set_error(c, "ONNXC_CUDA_DEVICE=\"%.64s\" is not a device index", env);
    return ONNXC_ERR_DEVICE;
  }
  if ((rc = check(c, c->api.cuInit(0), "cuInit")) != ONNXC_OK) return rc;
  if ((rc = check(c, c->api.cuDeviceGetCount(&count), "cuDeviceGetCount")) != ONNXC_OK)
    return rc;
  if (index >= count) {
    set_error(c, "device %d not found (%d devices)", index, count);
    return ONNXC_ERR_DEVICE;
  }
  return check(c, c->api.cuDeviceGet(&c->device, index), "cuDeviceGet");
}

static int load_kernels(onnxc_cuda *c, const void *image) {
  int rc = check(c, c->api.cuModuleLoadData(&c->module, image), "cuModuleLoadData");
  for (int i = 0; rc == ONNXC_OK && i < c->num_kernels; i++) {
    kernel_entry *k = &c->kernels[i];
    onnxc_cu_result r = c->api.cuModuleGetFunction(&k->function, c->module, k->name);
    if (r != ONNXC_CU_SUCCESS) {
      char step[STEP_SIZE];
      snprintf(step, sizeof step, "cuModuleGetFunction(\"%.200s\")", k->name);
      rc = driver_error(c, step, r);
    }
  }
  return rc;
}

static int open_device(onnxc_cuda *c, const void *image) {
  int rc = pick_device(c);
  if (rc == ONNXC_OK)
    rc = check(c, c->api.cuDevicePrimaryCtxRetain(&c->context, c->device),
               "cuDevicePrimaryCtxRetain");
  if (rc == ONNXC_OK) rc = make_current(c);
  if (rc == ONNXC_OK) rc = load_kernels(c, image);
  if (rc == ONNXC_OK)
    rc = check(c, c->api.cuStreamCreate(&c->stream, ONNXC_CU_STREAM_DEFAULT),
               "cuStreamCreate");
  return rc;
}

int onnxc_cuda_create(onnxc_cuda **out, const void *image, const char *const *kernel_names,
                      int count, char *error, size_t error_size) {
  if (out != NULL) *out = NULL;
  int rc = check_create_args(out, image, kernel_names, count, error, error_size);
  if (rc != ONNXC_OK) return rc;
  onnxc_cuda *c = new_object(kernel_names, count);
  if (c == NULL) {
    copy_message(error, error_size, "onnxc_cuda_create: out of memory");
    return ONNXC_ERR_ALLOC;
  }
  rc = load_driver(c);
  if (rc == ONNXC_OK) rc = open_device(c, image);
  if (rc != ONNXC_OK) {
    copy_message(error, error_size, c->error);
    onnxc_cuda_destroy(c);
    return rc;
  }
  copy_message(error, error_size, "");
  *out = c;
  return ONNXC_OK;
}

void onnxc_cuda_destroy(onnxc_cuda *cuda) {
  if (cuda == NULL) return;
  /* Results are ignored: destroy cannot report, and the driver frees what a
     failed call leaves when the context goes. A context implies that every
     entry point was resolved. */
  if (cuda->context != NULL && cuda->api.cuCtxSetCurrent(cuda->context) == ONNXC_CU_SUCCESS) {
    if (cuda->stream != NULL) {
      cuda->api.cuStreamSynchronize(cuda->stream); /* kernels may still use the module */
      cuda->api.cuStreamDestroy_v2(cuda->stream);
    }
    if (cuda->module != NULL) cuda->api.cuModuleUnload(cuda->module);
  }
  if (cuda->context != NULL) cuda->api.cuDevicePrimaryCtxRelease_v2(cuda->device);
  if (cuda->library != NULL) dlclose(cuda->library);
  free(cuda);
}

/* ---- memory ------------------------------------------------------------ */

int onnxc_cuda_alloc(onnxc_cuda *cuda, void **device_ptr, size_t bytes) {
  if (device_ptr != NULL) *device_ptr = NULL;
  if (cuda == NULL) return ONNXC_ERR_ARGUMENT;
  if (device_ptr == NULL) return argument_error(cuda, "onnxc_cuda_alloc: device_ptr is NULL");
  if (bytes == 0) return ONNXC_OK;
  int rc = make_current(cuda);
  if (rc != ONNXC_OK) return rc;
  onnxc_cu_deviceptr p = 0;
  onnxc_cu_result r = cuda->api.cuMemAlloc_v2(&p, bytes);
  if (r != ONNXC_CU_SUCCESS) {
    char step[STEP_SIZE];
    snprintf(step, sizeof step, "cuMemAlloc(%zu bytes)", bytes);
    return driver_error(cuda, step, r);
  }
  *device_ptr = (void *)(uintptr_t)p;
  return ONNXC_OK;
}

void onnxc_cuda_free(onnxc_cuda *cuda, void *device_ptr) {
  if (cuda == NULL || device_ptr == NULL) return;
  if (make_current(cuda) == ONNXC_OK)
    check(cuda, cuda->api.cuMemFree_v2(dptr(device_ptr)), "cuMemFree");
}

/* Common checks of the stream operations once bytes > 0: both pointers set,
   context current. */
static int begin_transfer(onnxc_cuda *c, const char *fn, const void *dst, const void *src) {
  if (dst == NULL || src == NULL) {
    set_error(c, "%s: NULL pointer", fn);
    return ONNXC_ERR_ARGUMENT;
  }
  return make_current(c);
}

int onnxc_cuda_upload(onnxc_cuda *cuda, void *device_dst, const void *host_src, size_t bytes) {
  if (cuda == NULL) return ONNXC_ERR_ARGUMENT;
  if (bytes == 0) return ONNXC_OK;
  int rc = begin_transfer(cuda, "onnxc_cuda_upload", device_dst, host_src);
  if (rc != ONNXC_OK) return rc;
  return check(cuda,
               cuda->api.cuMemcpyHtoDAsync_v2(dptr(device_dst), host_src, bytes, cuda->stream),
               "cuMemcpyHtoDAsync");
}

int onnxc_cuda_download(onnxc_cuda *cuda, void *host_dst, const void *device_src, size_t bytes) {
  if (cuda == NULL) return ONNXC_ERR_ARGUMENT;
  if (bytes == 0) return ONNXC_OK;
  int rc = begin_transfer(cuda, "onnxc_cuda_download", host_dst, device_src);
  if (rc != ONNXC_OK) return rc;
  rc = check(cuda, cuda->api.cuMemcpyDtoHAsync_v2(host_dst, dptr(device_src), bytes, cuda->stream),
             "cuMemcpyDtoHAsync");
  if (rc != ONNXC_OK) return rc;
  return check(cuda, cuda->api.cuStreamSynchronize(cuda->stream), "cuStreamSynchronize");
}

int onnxc_cuda_copy(onnxc_cuda *cuda, void *device_dst, const void *device_src, size_t bytes) {
  if (cuda == NULL) return ONNXC_ERR_ARGUMENT;
  if (bytes == 0) return ONNXC_OK;
  int rc = begin_transfer(cuda, "onnxc_cuda_copy", device_dst, device_src);
  if (rc != ONNXC_OK) return rc;
  return check(cuda,
               cuda->api.cuMemcpyDtoDAsync_v2(dptr(device_dst), dptr(device_src), bytes,
                                              cuda->stream),
               "cuMemcpyDtoDAsync");
}

int onnxc_cuda_memset(onnxc_cuda *cuda, void *device_dst, int byte, size_t bytes) {
  if (cuda == NULL) return ONNXC_ERR_ARGUMENT;
  if (bytes == 0) return ONNXC_OK;
  int rc = begin_transfer(cuda, "onnxc_cuda_memset", device_dst, device_dst);
  if (rc != ONNXC_OK) return rc;
  return check(cuda,
               cuda->api.cuMemsetD8Async(dptr(device_dst), (unsigned char)byte, bytes,
                                         cuda->stream),
               "cuMemsetD8Async");
}

/* ---- kernels ----------------------------------------------------------- */

int onnxc_cuda_launch(onnxc_cuda *cuda, int kernel, const unsigned grid[3],
                      const unsigned block[3], unsigned shared_bytes, void **params) {
  if (cuda == NULL) return ONNXC_ERR_ARGUMENT;
  if (kernel < 0 || kernel >= cuda->num_kernels) {
    set_error(cuda, "onnxc_cuda_launch: kernel %d out of range (%d kernels)", kernel,
              cuda->num_kernels);
    return ONNXC_ERR_ARGUMENT;
  }
  if (grid == NULL || block == NULL)
    return argument_error(cuda, "onnxc_cuda_launch: grid or block is NULL");
  int rc = make_current(cuda);
  if (rc != ONNXC_OK) return rc;
  const kernel_entry *k = &cuda->kernels[kernel];
  onnxc_cu_result r =
      cuda->api.cuLaunchKernel(k->function, grid[0], grid[1], grid[2], block[0], block[1],
                               block[2], shared_bytes, cuda->stream, params, NULL);
  if (r == ONNXC_CU_SUCCESS) return ONNXC_OK;
  char step[STEP_SIZE];
  snprintf(step, sizeof step, "cuLaunchKernel(\"%.200s\")", k->name);
  return driver_error(cuda, step, r);
}

int onnxc_cuda_synchronize(onnxc_cuda *cuda) {
  if (cuda == NULL) return ONNXC_ERR_ARGUMENT;
  int rc = make_current(cuda);
  if (rc != ONNXC_OK) return rc;
  return check(cuda, cuda->api.cuStreamSynchronize(cuda->stream), "cuStreamSynchronize");
}

const char *onnxc_cuda_last_error(const onnxc_cuda *cuda) {
  return cuda == NULL ? "" : cuda->error;
}
