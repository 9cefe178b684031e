#include "backend/cpu/cpu_caps.h"

#include <cpuid.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static uint64_t xgetbv0(void) {
  uint32_t lo, hi;
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  return ((uint64_t)hi << 32) | lo;
}

void kiln_cpu_caps_detect(kiln_cpu_caps *c) {
  memset(c, 0, sizeof *c);
  unsigned a, b, cx, d;
  if (!__get_cpuid(1, &a, &b, &cx, &d)) return;
  bool osxsave = cx & (1u << 27), fma = cx & (1u << 12);
  uint64_t xcr0 = osxsave ? xgetbv0() : 0;
  bool ymm_os = (xcr0 & 0x6) == 0x6, zmm_os = (xcr0 & 0xe6) == 0xe6;
  if (!__get_cpuid_count(7, 0, &a, &b, &cx, &d)) return;
  c->fma = fma && ymm_os;
  c->avx2 = (b & (1u << 5)) && ymm_os;
  c->avx512f = (b & (1u << 16)) && zmm_os;
  c->avx512dq = (b & (1u << 17)) && zmm_os;
  c->avx512bw = (b & (1u << 30)) && zmm_os;
  c->avx512vl = (b & (1u << 31)) && zmm_os;
  c->avx512_vnni = (cx & (1u << 11)) && zmm_os;
  unsigned a1, b1, c1, d1;
  if (__get_cpuid_count(7, 1, &a1, &b1, &c1, &d1)) c->avx512_bf16 = (a1 & (1u << 5)) && zmm_os;
  c->best = KILN_ISA_SCALAR;
  if (c->avx2 && c->fma) c->best = KILN_ISA_AVX2;
  if (c->best == KILN_ISA_AVX2 && c->avx512f && c->avx512bw && c->avx512vl && c->avx512dq) c->best = KILN_ISA_AVX512;
  if (c->best == KILN_ISA_AVX512 && c->avx512_vnni) c->best = KILN_ISA_AVX512_VNNI;
}

const char *kiln_isa_name(kiln_isa isa) {
  switch (isa) {
  case KILN_ISA_SCALAR: return "x86-64";
  case KILN_ISA_AVX2: return "avx2";
  case KILN_ISA_AVX512: return "avx512";
  case KILN_ISA_AVX512_VNNI: return "avx512-vnni";
  }
  return "?";
}

kiln_isa kiln_cpu_isa(void) {
  kiln_cpu_caps c;
  kiln_cpu_caps_detect(&c);
  kiln_isa isa = c.best;
  const char *env = getenv("KILN_ISA");
  if (env) {
    kiln_isa want = !strcmp(env, "scalar") ? KILN_ISA_SCALAR : !strcmp(env, "avx2") ? KILN_ISA_AVX2 : isa;
    if (want < isa) isa = want;
  }
  return isa;
}
