/* matrix family (MatMul, Gemm, Einsum): typed parameters. MatMul has none (n->params stays NULL). */
#ifndef KILN_IR_OPS_MATRIX_H
#define KILN_IR_OPS_MATRIX_H

#include "ir/graph.h"

#include <stdbool.h>
#include <stdint.h>

typedef struct kiln_gemm_params {
  bool trans_a, trans_b;
  float alpha, beta;
} kiln_gemm_params;

#define KILN_EINSUM_MAX_OPERANDS 16
#define KILN_EINSUM_LETTERS 52 /* label ids 0..25 = 'A'..'Z', 26..51 = 'a'..'z' (ASCII order) */
/* Ellipsis dims get label ids KILN_EINSUM_LETTERS + e, e = 0 for the outermost broadcast dim. */
#define KILN_EINSUM_MAX_LABELS (KILN_EINSUM_LETTERS + KILN_MAX_RANK)
#define KILN_EINSUM_ELLIPSIS (-1)

/* A parsed equation. Terms list label ids in order, with KILN_EINSUM_ELLIPSIS for "...". */
typedef struct kiln_einsum_params {
  int32_t n_operands;
  int32_t term_len[KILN_EINSUM_MAX_OPERANDS];
  int8_t term[KILN_EINSUM_MAX_OPERANDS][KILN_MAX_RANK + 1];
  bool explicit_output; /* "->" present; otherwise the output is derived as numpy does */
  int32_t out_len;
  int8_t out[KILN_MAX_RANK + 1];
} kiln_einsum_params;

/* An equation resolved against concrete operand ranks/dims (dims may be KILN_DIM_DYNAMIC). */
typedef struct kiln_einsum_plan {
  int32_t n_ellipsis;                   /* broadcast dims covered by "..." */
  int64_t extent[KILN_EINSUM_MAX_LABELS]; /* -2 = label unused; KILN_DIM_DYNAMIC = unknown */
  int32_t out_rank;
  int8_t out_label[KILN_MAX_RANK];      /* output dim i is label out_label[i] */
  int32_t rank[KILN_EINSUM_MAX_OPERANDS];
  int8_t dim_label[KILN_EINSUM_MAX_OPERANDS][KILN_MAX_RANK]; /* operand k's dim j has label id */
} kiln_einsum_plan;

kiln_status kiln_einsum_plan_make(const kiln_einsum_params *p, int32_t n_operands, const int32_t *ranks,
                                  const int64_t *const *dims, kiln_einsum_plan *plan);

#endif
