/* onnxc_npy_driver.c: runs a compiled model library on .npy inputs and writes .npy outputs.

   usage: onnxc_npy_driver LIB.so NAME IN.npy... -- OUT.npy...

   `onnxc verify` builds it for the target with the target's toolchain and runs it there (for
   a cross target, under qemu-user). It knows nothing of the model: everything comes from the
   library's own description (NAME_num_inputs, NAME_input_dim, ...). The inputs' .npy shapes
   give the values of the symbolic dimensions (NAME_set_dims); then each input must have the
   shape NAME_get_input_shape gives, and each output is written with the shape of the run
   (NAME_get_output_shape; NAME_output_data for the outputs whose size the data decides).
   A library without those functions (a hand-made one, an older onnxc's) is run at its
   static shapes. Exit status: 0 on success, 2 on a usage or file error, 3 when the library
   refuses the run (its message on stderr). */
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
typedef int (*axis_fn)(int, int);
typedef int (*set_dims_fn)(void *, const int64_t *);
typedef int (*ctx_shape_fn)(const void *, int, int64_t *);
typedef const void *(*data_fn)(const void *, int);

/* A .npy file's header read: its dtype text, element order and shape. */
typedef struct {
  FILE *f;
  char *header;
  int rank;
  int64_t shape[MAX_RANK];
} npy_file;

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

static void *optional_symbol(void *lib, const char *name, const char *suffix) {
  char full[256];
  snprintf(full, sizeof full, "%s_%s", name, suffix);
  return dlsym(lib, full);
}

/* The shape of input or output i under ctx's dimensions (NAME_get_input_shape), else the
   library's static one (NAME_input_shape). */
static void shape_of(void *lib, const char *name, void *ctx, int side, int i, int rank,
                     int64_t *shape) {
  ctx_shape_fn current = (ctx_shape_fn)optional_symbol(
      lib, name, side ? "get_output_shape" : "get_input_shape");
  if (current) {
    current(ctx, i, shape);
    return;
  }
  const int64_t *fixed = ((shape_fn)symbol(lib, name, side ? "output_shape" : "input_shape"))(i);
  memcpy(shape, fixed, sizeof *shape * (size_t)rank);
}

static size_t element_count(const int64_t *shape, int rank) {
  size_t n = 1;
  for (int a = 0; a < rank; a++) n *= (size_t)shape[a];
  return n;
}

static void fail_file(const char *path, const char *why) {
  fprintf(stderr, "onnxc_npy_driver: %s: %s\n", path, why);
  exit(2);
}

/* Opens a version 1.0 .npy file and reads its header (the shape: "'shape': (2, 3), "). */
static npy_file open_npy(const char *path) {
  npy_file n = {fopen(path, "rb"), NULL, 0, {0}};
  unsigned char head[10];
  if (!n.f || fread(head, 1, 10, n.f) != 10 || memcmp(head, "\x93NUMPY", 6) != 0)
    fail_file(path, "not a .npy file");
  size_t header_len = (size_t)head[8] | ((size_t)head[9] << 8);
  n.header = calloc(1, header_len + 1);
  if (!n.header || fread(n.header, 1, header_len, n.f) != header_len)
    fail_file(path, "truncated header");
  const char *at = strstr(n.header, "'shape': (");
  if (!at) fail_file(path, "no shape in the header");
  at += strlen("'shape': (");
  while (*at != ')') {
    char *end;
    long long d = strtoll(at, &end, 10);
    if (end == at || d < 0 || n.rank == MAX_RANK) fail_file(path, "unreadable shape");
    n.shape[n.rank++] = d;
    at = end;
    while (*at == ',' || *at == ' ') at++;
  }
  return n;
}

/* Reads the data of an open .npy file; checks its dtype and shape against the library's. */
static void *read_npy(npy_file *n, const char *path, const char *descr, const int64_t *shape,
                      int rank, size_t size) {
  char want[32];
  snprintf(want, sizeof want, "'descr': '%s'", descr);
  if (!strstr(n->header, want) || strstr(n->header, "'fortran_order': True")) {
    fprintf(stderr, "onnxc_npy_driver: %s: expected C-ordered %s data, header %s\n", path,
            descr, n->header);
    exit(2);
  }
  if (n->rank != rank || memcmp(n->shape, shape, sizeof *shape * (size_t)rank) != 0)
    fail_file(path, "its shape is not the one the library takes at these dimensions");
  size_t count = element_count(shape, rank);
  void *data = malloc(count * size + 1);
  if (!data || fread(data, size, count, n->f) != count || fgetc(n->f) != EOF)
    fail_file(path, "does not hold its shape's elements");
  fclose(n->f);
  free(n->header);
  return data;
}

/* The symbolic dimensions' values from the inputs' shapes, set on ctx (none: nothing). */
static void set_dims(void *lib, const char *name, void *ctx, npy_file *files, char **paths,
                     int n_in) {
  count_fn num_dims = (count_fn)optional_symbol(lib, name, "num_dims");
  int n_dims = num_dims ? num_dims() : 0;
  if (n_dims == 0) return;
  int64_t *values = calloc((size_t)n_dims, sizeof *values);
  for (int i = 0; i < n_in; i++)
    for (int a = 0; a < files[i].rank; a++) {
      int d = ((axis_fn)symbol(lib, name, "input_dim"))(i, a);
      if (d < 0) continue;
      if (values[d] && values[d] != files[i].shape[a])
        fail_file(paths[i], "a symbolic dimension differs from another input's");
      values[d] = files[i].shape[a];
    }
  if (((set_dims_fn)symbol(lib, name, "set_dims"))(ctx, values) != 0) {
    fprintf(stderr, "onnxc_npy_driver: %s\n", ((error_fn)symbol(lib, name, "last_error"))(ctx));
    exit(3);
  }
  free(values);
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
  void *ctx = NULL;
  if (((create_fn)symbol(lib, name, "create"))(&ctx) != 0) {
    fprintf(stderr, "onnxc_npy_driver: creating the context failed\n");
    return 3;
  }
  npy_file *files = calloc((size_t)n_in + 1, sizeof *files);
  for (int i = 0; i < n_in; i++) files[i] = open_npy(argv[3 + i]);
  set_dims(lib, name, ctx, files, argv + 3, n_in);
  const void **inputs = calloc((size_t)n_in + 1, sizeof *inputs);
  void **outputs = calloc((size_t)n_out + 1, sizeof *outputs);
  const char *kinds[2][2] = {{"input_dtype", "input_rank"}, {"output_dtype", "output_rank"}};
  for (int side = 0; side < 2; side++) {
    int n = side ? n_out : n_in;
    for (int i = 0; i < n; i++) {
      int code = ((index_fn)symbol(lib, name, kinds[side][0]))(i);
      int rank = ((index_fn)symbol(lib, name, kinds[side][1]))(i);
      int64_t shape[MAX_RANK];
      size_t size = 0;
      const char *descr = descr_of(code, &size);
      if (!descr || rank > MAX_RANK) {
        fprintf(stderr, "onnxc_npy_driver: %s %d: dtype %d not supported here\n",
                side ? "output" : "input", i, code);
        return 2;
      }
      shape_of(lib, name, ctx, side, i, rank, shape);
      int sized_by_data = 0;
      for (int a = 0; a < rank; a++) sized_by_data |= shape[a] < 0;
      if (side == 0)
        inputs[i] = read_npy(&files[i], argv[3 + i], descr, shape, rank, size);
      else if (!sized_by_data)      /* the library writes those into its own memory */
        outputs[i] = malloc(element_count(shape, rank) * size + 1);
    }
  }
  if (((run_fn)symbol(lib, name, "run"))(ctx, inputs, outputs) != 0) {
    fprintf(stderr, "onnxc_npy_driver: %s\n", ((error_fn)symbol(lib, name, "last_error"))(ctx));
    return 3;
  }
  for (int i = 0; i < n_out; i++) {
    size_t size = 0;
    const char *descr = descr_of(((index_fn)symbol(lib, name, "output_dtype"))(i), &size);
    int rank = ((index_fn)symbol(lib, name, "output_rank"))(i);
    int64_t shape[MAX_RANK];
    shape_of(lib, name, ctx, 1, i, rank, shape);
    data_fn output_data = (data_fn)optional_symbol(lib, name, "output_data");
    const void *own = output_data ? output_data(ctx, i) : NULL;
    write_npy(argv[4 + n_in + i], descr, shape, rank, own ? own : outputs[i],
              element_count(shape, rank) * size);
  }
  ((void (*)(void *))symbol(lib, name, "destroy"))(ctx);
  return 0;
}
