/*
 * Shared plumbing of the fast CPU kernels (fast_*.c): target attributes for the ISA-specific
 * functions, the parallel threshold, and the max rank. The library is compiled for baseline x86-64,
 * so every function that uses AVX2 / AVX-512 intrinsics carries a target attribute and is only called
 * when the caller's `isa` (normally kiln_cpu_isa()) says the CPU has it.
 */
#ifndef KILN_BACKEND_CPU_FAST_COMMON_H
#define KILN_BACKEND_CPU_FAST_COMMON_H

#include "backend/cpu/cpu_caps.h"
#include "backend/cpu/threadpool.h"

#include <stddef.h>
#include <stdint.h>

#define KILN_FAST_MAX_RANK 8

#define KILN_FAST_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,fma")))
#define KILN_FAST_AVX2 __attribute__((target("avx2,fma")))

/* Below this many bytes touched, waking the pool costs more than the work (a wake-up is a few us;
 * 2 cores stream ~10-20 GB/s, so 256 KiB is ~15 us of work). */
#define KILN_FAST_PARALLEL_MIN_BYTES ((int64_t)256 * 1024)

static inline kiln_threadpool *kiln_fast_tp_for(kiln_threadpool *tp, int64_t bytes) {
  return bytes < KILN_FAST_PARALLEL_MIN_BYTES ? NULL : tp;
}

/* VNNI only adds int8 dot products: fp32 kernels treat it as AVX-512. */
static inline kiln_isa kiln_fast_isa(kiln_isa isa) { return isa >= KILN_ISA_AVX512 ? KILN_ISA_AVX512 : isa; }

#endif
