/* onnxc_npy_driver.c: runs a compiled model library on .npy inputs and writes .npy outputs.

   usage: onnxc_npy_driver LIB.so NAME IN.npy... -- OUT.npy...

   `onnxc verify` builds it for the target with the target's toolchain and runs it there (for
   a cross target, under qemu-user). It knows nothing of the model: everything comes from the
   library's own description (NAME_num_inputs, NAME_input_shape, ...). Inputs must have the
   compiled shape and dtype; statically shaped models only. Exit status: 0 on success, 2 on
   a usage or file error, 3 when the library refuses the run (its message on stderr). */
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NPY_HEADER_ALIGN 64
#define MAX_RANK 16

typedef int (*create_fn)(void **);
typedef int (*run_fn)(void *, const void *const *, void *const *);
typedef int (*count_fn)(void);
typedef int (*index_fn)(int);
typedef const int64_t *(*shape_fn)(int);
typedef const char *(*error_fn)(const void *);

/* numpy's descr for an ONNX element type code, and its element size (0: not supported). */
static const struct { int code; const char *descr; size_t size; } DTYPES[] = {
    {1, "<f4", 4},  {2, "|u1", 1},  {3, "|i1", 1},  {4, "<u2", 2},  {5, "<i2", 2},
    {6, "<i4", 4},  {7, "<i8", 8},  {9, "|b1", 1},  {10, "<f2", 2}, {11, "<f8", 8},
    {12, "<u4", 4}, {13, "<u8", 8}, {16, "<u2", 2},
};

static const char *descr_of(int code, size_t *size) {
  for (size_t i = 0; i < sizeof DTYPES / sizeof DTYPES[0]; i++)
    if (DTYPES[i].code == code) {
      *size = DTYPES[i].size;
      return DTYPES[i].descr;
    }
  return NULL;
}

static void *symbol(void *lib, const char *name, const char *suffix) {
  char full[256];
  snprintf(full, sizeof full, "%s_%s", name, suffix);
  void *f = dlsym(lib, full);
  if (!f) {
    fprintf(stderr, "onnxc_npy_driver: %s not found in the library\n", full);
    exit(2);
  }
  return f;
}

static size_t element_count(const int64_t *shape, int rank) {
  size_t n = 1;
  for (int a = 0; a < rank; a++) n *= (size_t)shape[a];
  return n;
}

/* Reads a version 1.0 .npy file; checks its dtype and element count against the library's. */
static void *read_npy(const char *path, const char *descr, size_t count, size_t size) {
  FILE *f = fopen(path, "rb");
  unsigned char head[10];
  if (!f || fread(head, 1, 10, f) != 10 || memcmp(head, "\x93NUMPY", 6) != 0) {
    fprintf(stderr, "onnxc_npy_driver: %s is not a .npy file\n", path);
    exit(2);
  }
  size_t header_len = (size_t)head[8] | ((size_t)head[9] << 8);
  char *header = calloc(1, header_len + 1);
  void *data = malloc(count * size + 1);
  if (!header || !data || fread(header, 1, header_len, f) != header_len) exit(2);
  char want[32];
  snprintf(want, sizeof want, "'descr': '%s'", descr);
  if (!strstr(header, want) || strstr(header, "'fortran_order': True")) {
    fprintf(stderr, "onnxc_npy_driver: %s: expected C-ordered %s data, header %s\n", path,
            descr, header);
    exit(2);
  }
  if (fread(data, size, count, f) != count || fgetc(f) != EOF) {
    fprintf(stderr, "onnxc_npy_driver: %s does not hold %zu elements\n", path, count);
    exit(2);
  }
  fclose(f);
  free(header);
  return data;
}

static void write_npy(const char *path, const char *descr, const int64_t *shape, int rank,
                      const void *data, size_t bytes) {
  char dims[MAX_RANK * 24] = "", header[NPY_HEADER_ALIGN * 8];
  for (int a = 0; a < rank; a++) {
    char one[24];
    snprintf(one, sizeof one, "%lld,%s", (long long)shape[a], rank > 1 ? " " : "");
    strcat(dims, one);
  }
  int len = snprintf(header, sizeof header,
                     "{'descr': '%s', 'fortran_order': False, 'shape': (%s), }", descr, dims);
  int total = 10 + len + 1, padded = (total + NPY_HEADER_ALIGN - 1) / NPY_HEADER_ALIGN *
                                     NPY_HEADER_ALIGN;
  memset(header + len, ' ', (size_t)(padded - total));
  header[padded - 10 - 1] = '\n';
  unsigned short header_len = (unsigned short)(padded - 10);
  unsigned char head[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0,
                            (unsigned char)(header_len & 0xff), (unsigned char)(header_len >> 8)};
  FILE *f = fopen(path, "wb");
  if (!f || fwrite(head, 1, 10, f) != 10 || fwrite(header, 1, header_len, f) != header_len ||
      fwrite(data, 1, bytes, f) != bytes || fclose(f) != 0) {
    fprintf(stderr, "onnxc_npy_driver: cannot write %s\n", path);
    exit(2);
  }
}

int main(int argc, char **argv) {
  if (argc < 4) {
    fprintf(stderr, "usage: %s LIB.so NAME IN.npy... -- OUT.npy...\n", argv[0]);
    return 2;
  }
  void *lib = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
  if (!lib) {
    fprintf(stderr, "onnxc_npy_driver: %s\n", dlerror());
    return 2;
  }
  const char *name = argv[2];
  int n_in = ((count_fn)symbol(lib, name, "num_inputs"))();
  int n_out = ((count_fn)symbol(lib, name, "num_outputs"))();
  if (argc != 3 + n_in + 1 + n_out || strcmp(argv[3 + n_in], "--") != 0) {
    fprintf(stderr, "onnxc_npy_driver: the model takes %d inputs and gives %d outputs\n", n_in,
            n_out);
    return 2;
  }
  const void **inputs = calloc((size_t)n_in + 1, sizeof *inputs);
  void **outputs = calloc((size_t)n_out + 1, sizeof *outputs);
  size_t *out_bytes = calloc((size_t)n_out + 1, sizeof *out_bytes);
  const char *suffix[2][3] = {{"input_dtype", "input_rank", "input_shape"},
                              {"output_dtype", "output_rank", "output_shape"}};
  for (int side = 0; side < 2; side++) {
    int n = side ? n_out : n_in;
    for (int i = 0; i < n; i++) {
      int code = ((index_fn)symbol(lib, name, suffix[side][0]))(i);
      int rank = ((index_fn)symbol(lib, name, suffix[side][1]))(i);
      const int64_t *shape = ((shape_fn)symbol(lib, name, suffix[side][2]))(i);
      size_t size = 0, count = element_count(shape, rank);
      const char *descr = descr_of(code, &size);
      if (!descr || rank > MAX_RANK) {
        fprintf(stderr, "onnxc_npy_driver: %s %d: dtype %d not supported here\n",
                side ? "output" : "input", i, code);
        return 2;
      }
      if (side == 0) {
        inputs[i] = read_npy(argv[3 + i], descr, count, size);
      } else {
        out_bytes[i] = count * size;
        outputs[i] = malloc(out_bytes[i] + 1);
      }
    }
  }
  void *ctx = NULL;
  if (((create_fn)symbol(lib, name, "create"))(&ctx) != 0) {
    fprintf(stderr, "onnxc_npy_driver: creating the context failed\n");
    return 3;
  }
  if (((run_fn)symbol(lib, name, "run"))(ctx, inputs, outputs) != 0) {
    fprintf(stderr, "onnxc_npy_driver: %s\n", ((error_fn)symbol(lib, name, "last_error"))(ctx));
    return 3;
  }
  for (int i = 0; i < n_out; i++) {
    size_t size = 0;
    const char *descr = descr_of(((index_fn)symbol(lib, name, "output_dtype"))(i), &size);
    write_npy(argv[4 + n_in + i], descr, ((shape_fn)symbol(lib, name, "output_shape"))(i),
              ((index_fn)symbol(lib, name, "output_rank"))(i), outputs[i], out_bytes[i]);
  }
  ((void (*)(void *))symbol(lib, name, "destroy"))(ctx);
  return 0;
}
