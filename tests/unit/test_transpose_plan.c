/* The CUDA transpose planner (backend/cuda/transpose_plan.c) on the CPU: for random ranks, dims (with
 * size-1 dims) and permutations, transposing with the coalesced dims/perm gives the same array as the
 * original transpose. Runs everywhere (the plan is host code). */
#include "testlib.h"

#include "backend/cuda/transpose_plan.h"

#include <stdlib.h>
#include <string.h>

/* y = transpose(x) by the definition: y index (o_0..o_r-1) reads x at in-index with in[perm[k]] = o_k. */
static void transpose_ref(int rank, const int64_t *dims, const int32_t *perm, const int *x, int *y) {
  int64_t n = 1, od[8], ist[8], st = 1;
  for (int d = 0; d < rank; d++) n *= dims[d];
  for (int d = rank - 1; d >= 0; d--) ist[d] = st, st *= dims[d];
  for (int d = 0; d < rank; d++) od[d] = dims[perm[d]];
  for (int64_t i = 0; i < n; i++) {
    int64_t r = i, off = 0;
    for (int d = rank - 1; d >= 0; d--) {
      off += (r % od[d]) * ist[perm[d]];
      r /= od[d];
    }
    y[i] = x[off];
  }
}

static void test_random_plans(void **state) {
  (void)state;
  uint32_t seed = 7;
  for (int iter = 0; iter < 3000; iter++) {
    seed = seed * 1664525u + 1013904223u;
    int rank = 1 + (int)((seed >> 8) % 6);
    int64_t dims[8], n = 1;
    int32_t perm[8];
    for (int d = 0; d < rank; d++) {
      seed = seed * 1664525u + 1013904223u;
      dims[d] = 1 + (int64_t)((seed >> 10) % 4);
      n *= dims[d];
      perm[d] = d;
    }
    for (int d = rank - 1; d > 0; d--) {
      seed = seed * 1664525u + 1013904223u;
      int j = (int)((seed >> 12) % (uint32_t)(d + 1));
      int32_t t = perm[d];
      perm[d] = perm[j];
      perm[j] = t;
    }
    int64_t cd[8];
    int32_t cp[8];
    int cr = kiln_transpose_coalesce(rank, dims, perm, cd, cp);
    int64_t cn = 1;
    for (int d = 0; d < cr; d++) cn *= cd[d];
    assert_int_equal(cn, n);
    assert_true(cr <= rank);
    int *x = malloc(sizeof(int) * (size_t)n), *a = malloc(sizeof(int) * (size_t)n), *b = malloc(sizeof(int) * (size_t)n);
    for (int64_t i = 0; i < n; i++) x[i] = (int)i;
    transpose_ref(rank, dims, perm, x, a);
    if (cr) transpose_ref(cr, cd, cp, x, b);
    else memcpy(b, x, sizeof(int) * (size_t)n);
    assert_memory_equal(a, b, sizeof(int) * (size_t)n);
    free(x), free(a), free(b);
  }
  /* YOLOv8's DFL transpose [1,4,16,8400] (0,2,1,3): [4,16,8400] with (1,0,2), rows of 8400 */
  int64_t d[4] = {1, 4, 16, 8400}, cd[8];
  int32_t p[4] = {0, 2, 1, 3}, cp[8];
  assert_int_equal(kiln_transpose_coalesce(4, d, p, cd, cp), 3);
  assert_int_equal(cd[2], 8400);
  assert_int_equal(cp[2], 2);
}

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_random_plans)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}
