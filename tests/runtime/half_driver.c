/* Writes, for the checks in test_runtime_c.py: every 16-bit pattern widened as float16 and as
   bfloat16 (2 x 65536 floats), then each float of the input file narrowed to float16 and to
   bfloat16 (2 x n uint16). */
#include <stdio.h>
#include <stdlib.h>

#include "onnxc_vmath.h"

int main(int argc, char **argv) {
  if (argc != 3) return 2;
  FILE *in = fopen(argv[1], "rb"), *out = fopen(argv[2], "wb");
  if (!in || !out) return 3;
  for (unsigned h = 0; h < 65536u; h++) {
    float w[2] = {onnxc_f16_to_f32((uint16_t)h), onnxc_bf16_to_f32((uint16_t)h)};
    fwrite(w, sizeof w, 1, out);
  }
  float f;
  while (fread(&f, sizeof f, 1, in) == 1) {
    uint16_t n[2] = {onnxc_f32_to_f16(f), onnxc_f32_to_bf16(f)};
    fwrite(n, sizeof n, 1, out);
  }
  fclose(in);
  return fclose(out) == 0 ? 0 : 4;
}
