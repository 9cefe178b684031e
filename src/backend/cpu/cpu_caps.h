/* What this x86 CPU can run, from CPUID + XGETBV (the OS must save the wide registers too). */
#ifndef KILN_BACKEND_CPU_CAPS_H
#define KILN_BACKEND_CPU_CAPS_H

#include <stdbool.h>

typedef enum kiln_isa {
  KILN_ISA_SCALAR = 0, /* baseline x86-64 (SSE2) */
  KILN_ISA_AVX2 = 1,   /* AVX2 + FMA */
  KILN_ISA_AVX512 = 2, /* AVX-512 F/BW/VL/DQ */
  KILN_ISA_AVX512_VNNI = 3,
} kiln_isa;

typedef struct kiln_cpu_caps {
  bool avx2, fma, avx512f, avx512bw, avx512vl, avx512dq, avx512_vnni, avx512_bf16;
  kiln_isa best; /* the highest level fully usable */
} kiln_cpu_caps;

void kiln_cpu_caps_detect(kiln_cpu_caps *out);
const char *kiln_isa_name(kiln_isa isa);
/* The ISA kernels should use: detected best, lowered by the KILN_ISA env var (scalar|avx2|avx512). */
kiln_isa kiln_cpu_isa(void);

#endif
