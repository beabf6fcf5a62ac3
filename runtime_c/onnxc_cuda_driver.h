/* Private to onnxc_cuda.c: the few CUDA driver API types and entry points it
 * uses, declared here so that model libraries build without the CUDA toolkit
 * (the driver is loaded with dlopen at run time).
 *
 * The types must match cuda.h's on LP64 hosts; tests/runtime/test_cuda_runtime.py
 * checks every function-pointer type below against the toolkit's cuda.h and
 * cudaTypedefs.h. The opaque handles reuse cuda.h's struct tags (CUctx_st...),
 * so they are the very same types as CUcontext & co in a translation unit that
 * includes both headers; tags are not linker symbols, so nothing leaks.
 * CUresult is an enum in cuda.h and an int here (same size and registers):
 * define ONNXC_CUDA_TOOLKIT_TYPES after including cuda.h to use cuda.h's
 * CUresult instead, which is how the test compares whole signatures.
 */
#ifndef ONNXC_CUDA_DRIVER_H
#define ONNXC_CUDA_DRIVER_H

#include <stddef.h>

#ifdef ONNXC_CUDA_TOOLKIT_TYPES
typedef CUresult onnxc_cu_result;
#else
typedef int onnxc_cu_result;
#endif
typedef int onnxc_cu_device;                   /* CUdevice */
typedef unsigned long long onnxc_cu_deviceptr; /* CUdeviceptr (64-bit hosts) */
typedef struct CUctx_st *onnxc_cu_context;     /* CUcontext */
typedef struct CUmod_st *onnxc_cu_module;      /* CUmodule */
typedef struct CUfunc_st *onnxc_cu_function;   /* CUfunction */
typedef struct CUstream_st *onnxc_cu_stream;   /* CUstream */

#define ONNXC_CU_SUCCESS 0
/* A blocking stream: ordered after work on the legacy default stream, where frameworks
   (PyTorch's default stream) produce the device arrays a run may read in place. */
#define ONNXC_CU_STREAM_DEFAULT 0u

/* One function-pointer type per entry point, named after the exported
   (versioned) symbol it is resolved from. */
typedef onnxc_cu_result (*onnxc_pfn_cuGetErrorName)(onnxc_cu_result error, const char **str);
typedef onnxc_cu_result (*onnxc_pfn_cuGetErrorString)(onnxc_cu_result error, const char **str);
typedef onnxc_cu_result (*onnxc_pfn_cuInit)(unsigned int flags);
typedef onnxc_cu_result (*onnxc_pfn_cuDeviceGetCount)(int *count);
typedef onnxc_cu_result (*onnxc_pfn_cuDeviceGet)(onnxc_cu_device *device, int ordinal);
typedef onnxc_cu_result (*onnxc_pfn_cuDevicePrimaryCtxRetain)(onnxc_cu_context *ctx,
                                                               onnxc_cu_device device);
typedef onnxc_cu_result (*onnxc_pfn_cuDevicePrimaryCtxRelease_v2)(onnxc_cu_device device);
typedef onnxc_cu_result (*onnxc_pfn_cuCtxSetCurrent)(onnxc_cu_context ctx);
typedef onnxc_cu_result (*onnxc_pfn_cuModuleLoadData)(onnxc_cu_module *module,
                                                       const void *image);
typedef onnxc_cu_result (*onnxc_pfn_cuModuleUnload)(onnxc_cu_module module);
typedef onnxc_cu_result (*onnxc_pfn_cuModuleGetFunction)(onnxc_cu_function *function,
                                                          onnxc_cu_module module,
                                                          const char *name);
typedef onnxc_cu_result (*onnxc_pfn_cuStreamCreate)(onnxc_cu_stream *stream, unsigned int flags);
typedef onnxc_cu_result (*onnxc_pfn_cuStreamDestroy_v2)(onnxc_cu_stream stream);
typedef onnxc_cu_result (*onnxc_pfn_cuStreamSynchronize)(onnxc_cu_stream stream);
typedef onnxc_cu_result (*onnxc_pfn_cuMemAlloc_v2)(onnxc_cu_deviceptr *dptr, size_t bytes);
typedef onnxc_cu_result (*onnxc_pfn_cuMemFree_v2)(onnxc_cu_deviceptr dptr);
typedef onnxc_cu_result (*onnxc_pfn_cuMemcpyHtoDAsync_v2)(onnxc_cu_deviceptr dst, const void *src,
                                                           size_t bytes, onnxc_cu_stream stream);
typedef onnxc_cu_result (*onnxc_pfn_cuMemcpyDtoHAsync_v2)(void *dst, onnxc_cu_deviceptr src,
                                                           size_t bytes, onnxc_cu_stream stream);
typedef onnxc_cu_result (*onnxc_pfn_cuMemcpyDtoDAsync_v2)(onnxc_cu_deviceptr dst,
                                                           onnxc_cu_deviceptr src, size_t bytes,
                                                           onnxc_cu_stream stream);
typedef onnxc_cu_result (*onnxc_pfn_cuMemsetD8Async)(onnxc_cu_deviceptr dst, unsigned char value,
                                                      size_t count, onnxc_cu_stream stream);
typedef onnxc_cu_result (*onnxc_pfn_cuLaunchKernel)(
    onnxc_cu_function f, unsigned int grid_x, unsigned int grid_y, unsigned int grid_z,
    unsigned int block_x, unsigned int block_y, unsigned int block_z, unsigned int shared_bytes,
    onnxc_cu_stream stream, void **params, void **extra);

/* The resolved entry points. Each member is named after its symbol so that
   the symbol table in onnxc_cuda.c can build name and slot from one token:
   a name cannot be paired with the wrong slot. */
#define ONNXC_CU_MEMBER(sym) onnxc_pfn_##sym sym;
typedef struct {
  ONNXC_CU_MEMBER(cuGetErrorName)
  ONNXC_CU_MEMBER(cuGetErrorString)
  ONNXC_CU_MEMBER(cuInit)
  ONNXC_CU_MEMBER(cuDeviceGetCount)
  ONNXC_CU_MEMBER(cuDeviceGet)
  ONNXC_CU_MEMBER(cuDevicePrimaryCtxRetain)
  ONNXC_CU_MEMBER(cuDevicePrimaryCtxRelease_v2)
  ONNXC_CU_MEMBER(cuCtxSetCurrent)
  ONNXC_CU_MEMBER(cuModuleLoadData)
  ONNXC_CU_MEMBER(cuModuleUnload)
  ONNXC_CU_MEMBER(cuModuleGetFunction)
  ONNXC_CU_MEMBER(cuStreamCreate)
  ONNXC_CU_MEMBER(cuStreamDestroy_v2)
  ONNXC_CU_MEMBER(cuStreamSynchronize)
  ONNXC_CU_MEMBER(cuMemAlloc_v2)
  ONNXC_CU_MEMBER(cuMemFree_v2)
  ONNXC_CU_MEMBER(cuMemcpyHtoDAsync_v2)
  ONNXC_CU_MEMBER(cuMemcpyDtoHAsync_v2)
  ONNXC_CU_MEMBER(cuMemcpyDtoDAsync_v2)
  ONNXC_CU_MEMBER(cuMemsetD8Async)
  ONNXC_CU_MEMBER(cuLaunchKernel)
} onnxc_cu_api;
#undef ONNXC_CU_MEMBER

#endif /* ONNXC_CUDA_DRIVER_H */
