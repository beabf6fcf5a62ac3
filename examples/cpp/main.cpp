// A C++17 program that runs a model compiled by onnxc and prints every output value.
//
//   onnxc_example_cpp [input0.bin [input1.bin ...]]
//
// Same behaviour and output as examples/c (inputs from files or sin(i + k) / (i + k) % 7 - 3),
// written with RAII: the context is a unique_ptr whose deleter is <name>_destroy, the buffers
// are std::vector, and a failing status becomes an exception carrying <name>_last_error.
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "onnxc_model.h"

namespace {

struct ContextDeleter {
  void operator()(ONNXC_CONTEXT *ctx) const { ONNXC_FN(destroy)(ctx); }
};
using Context = std::unique_ptr<ONNXC_CONTEXT, ContextDeleter>;

struct Tensor {
  std::string name;
  int dtype;
  std::vector<int64_t> shape;
  std::vector<unsigned char> data;  // raw bytes in the tensor's dtype

  size_t count() const {
    size_t n = 1;
    for (int64_t d : shape) n *= static_cast<size_t>(d);
    return n;
  }
};

size_t dtype_size(int code) {
  switch (code) {
    case 1: case 6: case 12: return 4;
    case 2: case 3: case 9: return 1;
    case 4: case 5: return 2;
    case 7: case 11: case 13: return 8;
    default: throw std::runtime_error("unsupported dtype code " + std::to_string(code));
  }
}

void check(int status, const ONNXC_CONTEXT *ctx, const char *what) {
  if (status == ONNXC_OK) return;
  std::string message = std::string(what) + ": " + ONNXC_FN(status_string)(status);
  if (ctx) message += std::string(": ") + ONNXC_FN(last_error)(ctx);
  throw std::runtime_error(message);
}

template <typename T>
T *as(Tensor &t) { return reinterpret_cast<T *>(t.data.data()); }
template <typename T>
const T *as(const Tensor &t) { return reinterpret_cast<const T *>(t.data.data()); }

template <typename T>
void fill_as(Tensor &t, int k, bool is_float, long long offset) {
  T *p = as<T>(t);
  for (size_t i = 0; i < t.count(); ++i) {
    long long v = static_cast<long long>((i + static_cast<size_t>(k)) % 7) - 3 + offset;
    p[i] = is_float ? static_cast<T>(std::sin(static_cast<double>(i) + k)) : static_cast<T>(v);
  }
}

void fill(Tensor &t, int k) {
  switch (t.dtype) {
    case 1: fill_as<float>(t, k, true, 0); break;
    case 11: fill_as<double>(t, k, true, 0); break;
    case 2: fill_as<uint8_t>(t, k, false, 3); break;
    case 3: fill_as<int8_t>(t, k, false, 0); break;
    case 4: fill_as<uint16_t>(t, k, false, 3); break;
    case 5: fill_as<int16_t>(t, k, false, 0); break;
    case 6: fill_as<int32_t>(t, k, false, 0); break;
    case 7: fill_as<int64_t>(t, k, false, 0); break;
    case 12: fill_as<uint32_t>(t, k, false, 3); break;
    case 13: fill_as<uint64_t>(t, k, false, 3); break;
    case 9:
      for (size_t i = 0; i < t.count(); ++i) t.data[i] = ((i + static_cast<size_t>(k)) % 7) > 3;
      break;
    default: break;
  }
}

void read_file(Tensor &t, const char *path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(std::string("cannot open ") + path);
  std::vector<unsigned char> bytes((std::istreambuf_iterator<char>(in)),
                                   std::istreambuf_iterator<char>());
  if (bytes.size() != t.data.size())
    throw std::runtime_error(std::string(path) + " must hold exactly " +
                             std::to_string(t.data.size()) + " bytes");
  t.data = std::move(bytes);
}

void print_values(const Tensor &t) {
  for (size_t i = 0; i < t.count(); ++i) {
    switch (t.dtype) {
      case 1: std::printf("%.9g\n", static_cast<double>(as<float>(t)[i])); break;
      case 11: std::printf("%.17g\n", as<double>(t)[i]); break;
      case 2: case 9: std::printf("%u\n", static_cast<unsigned>(as<uint8_t>(t)[i])); break;
      case 3: std::printf("%d\n", static_cast<int>(as<int8_t>(t)[i])); break;
      case 4: std::printf("%u\n", static_cast<unsigned>(as<uint16_t>(t)[i])); break;
      case 5: std::printf("%d\n", static_cast<int>(as<int16_t>(t)[i])); break;
      case 6: std::printf("%ld\n", static_cast<long>(as<int32_t>(t)[i])); break;
      case 7: std::printf("%lld\n", static_cast<long long>(as<int64_t>(t)[i])); break;
      case 12: std::printf("%lu\n", static_cast<unsigned long>(as<uint32_t>(t)[i])); break;
      case 13: std::printf("%llu\n", static_cast<unsigned long long>(as<uint64_t>(t)[i])); break;
      default: break;
    }
  }
}

Tensor describe(bool input, int i) {
  Tensor t;
  t.name = input ? ONNXC_FN(input_name)(i) : ONNXC_FN(output_name)(i);
  t.dtype = input ? ONNXC_FN(input_dtype)(i) : ONNXC_FN(output_dtype)(i);
  int rank = input ? ONNXC_FN(input_rank)(i) : ONNXC_FN(output_rank)(i);
  const int64_t *shape = input ? ONNXC_FN(input_shape)(i) : ONNXC_FN(output_shape)(i);
  t.shape.assign(shape, shape + rank);
  t.data.resize(t.count() * dtype_size(t.dtype));
  std::printf("# %s %d \"%s\": dtype %d shape [", input ? "input" : "output", i, t.name.c_str(),
              t.dtype);
  for (size_t d = 0; d < t.shape.size(); ++d)
    std::printf(d ? ", %lld" : "%lld", static_cast<long long>(t.shape[d]));
  std::printf("]\n");
  return t;
}

int run(int argc, char **argv) {
  ONNXC_CONTEXT *raw = nullptr;
  check(ONNXC_FN(create)(&raw), nullptr, ONNXC_MODEL_NAME_STRING "_create");
  Context ctx(raw);
  std::printf("# model %s: %d input(s), %d output(s), workspace %zu bytes, %d thread(s)\n",
              ONNXC_MODEL_NAME_STRING, ONNXC_FN(num_inputs)(), ONNXC_FN(num_outputs)(),
              ONNXC_FN(workspace_size)(), ONNXC_FN(get_num_threads)(ctx.get()));

  std::vector<Tensor> inputs, outputs;
  std::vector<const void *> in_ptrs;
  std::vector<void *> out_ptrs;
  for (int k = 0; k < ONNXC_FN(num_inputs)(); ++k) {
    inputs.push_back(describe(true, k));
    if (k + 1 < argc) read_file(inputs.back(), argv[k + 1]);
    else fill(inputs.back(), k);
  }
  for (int k = 0; k < ONNXC_FN(num_outputs)(); ++k) outputs.push_back(describe(false, k));
  for (auto &t : inputs) in_ptrs.push_back(t.data.data());
  for (auto &t : outputs) out_ptrs.push_back(t.data.data());

  int status = ONNXC_FN(run)(ctx.get(), in_ptrs.data(), out_ptrs.data());
  check(status, ctx.get(), ONNXC_MODEL_NAME_STRING "_run");
  for (const auto &t : outputs) print_values(t);
  std::printf("# status %d (%s)\n", status, ONNXC_FN(status_string)(status));
  return 0;
}

}  // namespace

int main(int argc, char **argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception &e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
}
