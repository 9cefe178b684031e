/* reduce family: softmax family, reductions, CumSum, TopK, ArgMax/ArgMin — typed parameters. */
#ifndef KILN_IR_OPS_REDUCE_H
#define KILN_IR_OPS_REDUCE_H

#include "ir/graph.h"

#include <stdbool.h>
#include <stdint.h>

/* One struct for the whole family: the ops share most fields (axis, keepdims) and a single struct keeps
 * the reference kernel's dispatch simple. Fields an op does not use keep their zero value. */
typedef struct kiln_reduce_params {
  int64_t axis;              /* Softmax/LogSoftmax/Hardmax, TopK, ArgMax/ArgMin (not normalized) */
  bool coerce_2d;            /* softmax family before opset 13: flatten to [prod(d[:axis]), prod(d[axis:])] */
  /* ReduceX */
  bool axes_from_input;      /* opset >= 13 (ReduceSum) / 18 (the others): axes is optional input 1 */
  int32_t n_axes;            /* attribute axes (when !axes_from_input) */
  int64_t axes[KILN_MAX_RANK];
  bool keepdims;
  bool noop_with_empty_axes;
  /* CumSum */
  bool exclusive, reverse;
  /* TopK */
  int64_t k;                 /* opset < 10: attribute k; -1 when k comes from input 1 */
  bool largest, sorted;
  /* ArgMax/ArgMin */
  bool select_last_index;
} kiln_reduce_params;

/* Resolve the reduced axes of a ReduceX node for an input of rank `rank`. `axes`/`n_axes` are the
 * attribute or input-1 axes (unnormalized). Fills mask[d] = dim d is reduced; *identity = true when
 * nothing is reduced (empty axes with noop_with_empty_axes). Errors on out-of-range or repeated axes.
 * Shared by shape inference and the reference kernel so both agree exactly. */
kiln_status kiln_reduce_resolve_axes(const kiln_reduce_params *p, int32_t rank, const int64_t *axes, int64_t n_axes,
                                     bool mask[KILN_MAX_RANK], bool *identity);

#endif
