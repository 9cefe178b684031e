/* Host-side planning of a Transpose for the CUDA kernels (plain C, tested on the CPU): size-1 dims are
 * dropped and input dims that stay adjacent and in order in the output are merged, so the kernel does
 * fewer index steps per element, and a transpose that keeps the innermost dim becomes row copies. */
#ifndef KILN_BACKEND_CUDA_TRANSPOSE_PLAN_H
#define KILN_BACKEND_CUDA_TRANSPOSE_PLAN_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* dims/perm of rank <= 8 (perm valid) -> the equivalent cdims/cperm; returns the new rank (0: a copy). */
int kiln_transpose_coalesce(int rank, const int64_t *dims, const int32_t *perm, int64_t *cdims, int32_t *cperm);

#ifdef __cplusplus
}
#endif
#endif
