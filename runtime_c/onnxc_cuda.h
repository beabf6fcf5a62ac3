/* onnxc CUDA runtime: what "cuda" target model libraries call to run kernels.
 *
 * It uses the CUDA driver API, loaded at run time with dlopen("libcuda.so.1"),
 * so a model library links nothing from CUDA (only libc, libm, pthreads, dl)
 * and loads on machines without a GPU, failing cleanly in onnxc_cuda_create.
 * Like onnxc_runtime.c, the .c is compiled into each model library with hidden
 * symbols and keeps no global state: the driver handle, the resolved entry
 * points and the last error message live in each onnxc_cuda object.
 *
 * Every call first makes the device's primary context current on the calling
 * thread (cuCtxSetCurrent), so one object may be used from different threads,
 * one at a time: calls on one object must not run concurrently (the object's
 * stream and error message are shared). That leaves the primary context
 * current on the thread afterwards.
 *
 * Device pointers are the driver's CUdeviceptr values cast to void *; they
 * need not be dereferenceable on the host. Failures return a status from
 * onnxc_runtime.h and never abort; driver failures are ONNXC_ERR_DEVICE with
 * "<step> failed: <CUDA_ERROR_NAME> (<description>)" kept for
 * onnxc_cuda_last_error.
 */
#ifndef ONNXC_CUDA_H
#define ONNXC_CUDA_H

#include <stddef.h>

#include "onnxc_runtime.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct onnxc_cuda onnxc_cuda;

/* Load the driver, pick device $ONNXC_CUDA_DEVICE (a decimal index, surrounding
   whitespace allowed; default 0), retain its primary context, load `image` (a
   fatbin, cubin or NUL-terminated PTX image, given to cuModuleLoadData), look
   up `count` kernels by their extern "C" names and create a stream that
   blocks on the legacy default stream (device inputs made there are ready). The names are copied.

   Returns ONNXC_OK, ONNXC_ERR_ARGUMENT (out or image NULL, count < 0, a name
   NULL), ONNXC_ERR_ALLOC or ONNXC_ERR_DEVICE (no driver, no device, bad
   ONNXC_CUDA_DEVICE, any driver call failing). On failure *out is NULL and
   `error` (error_size bytes, may be NULL) gets a one-line message naming the
   failing step, e.g. "CUDA driver not found (libcuda.so.1: cannot open shared
   object file: ...)", "cuInit failed: CUDA_ERROR_NO_DEVICE (no CUDA-capable
   device is detected)", "device 7 not found (2 devices)". On success error
   gets "". */
ONNXC_RT_API int onnxc_cuda_create(onnxc_cuda **out, const void *image,
                                   const char *const *kernel_names, int count, char *error,
                                   size_t error_size);

/* Wait for the stream, then free the stream and module, release the primary
   context and close the driver. NULL is fine. Device memory still allocated
   from this object must be freed before (the primary context, and with it the
   memory, may be destroyed here). */
ONNXC_RT_API void onnxc_cuda_destroy(onnxc_cuda *cuda);

/* cuMemAlloc. bytes 0 sets *device_ptr to NULL and returns ONNXC_OK. On
   failure *device_ptr is NULL. */
ONNXC_RT_API int onnxc_cuda_alloc(onnxc_cuda *cuda, void **device_ptr, size_t bytes);

/* cuMemFree (which waits for work using the memory). NULL is fine; a failure
   is only kept for onnxc_cuda_last_error. */
ONNXC_RT_API void onnxc_cuda_free(onnxc_cuda *cuda, void *device_ptr);

/* Copies and memset are queued on the object's stream, in call order with
   kernel launches. Zero bytes do nothing and return ONNXC_OK.

   upload (host to device): pageable host memory is staged by the driver
   before the call returns, so host_src may be reused at once; page-locked
   host memory is read later and must stay unchanged until the stream is
   synchronized. download returns once the data is in host_dst. */
ONNXC_RT_API int onnxc_cuda_upload(onnxc_cuda *cuda, void *device_dst, const void *host_src,
                                   size_t bytes);
ONNXC_RT_API int onnxc_cuda_download(onnxc_cuda *cuda, void *host_dst, const void *device_src,
                                     size_t bytes);
ONNXC_RT_API int onnxc_cuda_copy(onnxc_cuda *cuda, void *device_dst, const void *device_src,
                                 size_t bytes);
/* Sets `bytes` bytes to (unsigned char)byte. */
ONNXC_RT_API int onnxc_cuda_memset(onnxc_cuda *cuda, void *device_dst, int byte, size_t bytes);

/* Queue kernel number `kernel` (an index into the create call's kernel_names)
   with grid and block dimensions, `shared_bytes` of dynamic shared memory and
   cuLaunchKernel's kernelParams: one pointer per kernel parameter, pointing
   at the parameter's value (NULL for a kernel without parameters). Launch
   errors may also surface later, from synchronize or download. */
ONNXC_RT_API int onnxc_cuda_launch(onnxc_cuda *cuda, int kernel, const unsigned grid[3],
                                   const unsigned block[3], unsigned shared_bytes,
                                   void **params);

/* Wait until all work queued on the stream is done. */
ONNXC_RT_API int onnxc_cuda_synchronize(onnxc_cuda *cuda);

/* The message of the last failure on this object, "" if none (or cuda NULL).
   The pointer stays valid until destroy; the next failure rewrites the text. */
ONNXC_RT_API const char *onnxc_cuda_last_error(const onnxc_cuda *cuda);

#ifdef __cplusplus
}
#endif

#endif /* ONNXC_CUDA_H */
