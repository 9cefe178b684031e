/* Transpose planning (see transpose_plan.h). */
#include "backend/cuda/transpose_plan.h"

int kiln_transpose_coalesce(int rank, const int64_t *dims, const int32_t *perm, int64_t *cdims, int32_t *cperm) {
  /* 1. drop size-1 dims: r kept input dims, and the output order over them */
  int keep_idx[8], r = 0;
  int64_t d1[8];
  int32_t p1[8];
  for (int d = 0; d < rank; d++)
    if (dims[d] != 1) keep_idx[d] = r, d1[r++] = dims[d];
    else keep_idx[d] = -1;
  int pr = 0;
  for (int o = 0; o < rank; o++)
    if (keep_idx[perm[o]] >= 0) p1[pr++] = keep_idx[perm[o]];
  /* 2. input dim d merges into d-1 when d-1 comes right before d in the output */
  int merged[8] = {0};
  for (int o = 1; o < r; o++)
    if (p1[o] == p1[o - 1] + 1) merged[p1[o]] = 1;
  /* 3. groups of input dims */
  int group[8], g = -1;
  for (int d = 0; d < r; d++) {
    if (!merged[d]) cdims[++g] = 1;
    cdims[g] *= d1[d];
    group[d] = g;
  }
  /* 4. the output order of the groups */
  int n = 0;
  for (int o = 0; o < r; o++)
    if (!merged[p1[o]]) cperm[n++] = group[p1[o]];
  return n;
}
