/* detect family: reference kernel for NonMaxSuppression (the selection itself lives in ir/ops/detect.c,
 * shared with shape inference). */
#include "backend/cpu/reference/reference.h"

#include "ir/ops/detect.h"

#include <inttypes.h>

kiln_status kiln_ref_detect(const kiln_graph *g, const kiln_node *n, const kiln_tensor *in, kiln_tensor *out) {
  if (n->op != KILN_OP_NonMaxSuppression)
    return kiln_error(KILN_ERR_INTERNAL, "op '%s' is not in the detect family", n->op_type);
  const kiln_nms_params *p = n->params;
  if (!p) return kiln_error(KILN_ERR_INTERNAL, "node was not parsed");
  if (out[0].dtype != KILN_DTYPE_INT64 || out[0].rank != 2 || out[0].dims[1] != 3)
    return kiln_error(KILN_ERR_SHAPE, "output must be int64 [num_selected, 3]");
  const kiln_tensor *opt[3] = {NULL, NULL, NULL};
  for (int i = 0; i < 3; i++)
    if (n->n_inputs > 2 + i) opt[i] = &in[2 + i];
  int64_t count;
  KILN_TRY(kiln_nms_select(p, &in[0], &in[1], opt[0], opt[1], opt[2], out[0].data, out[0].dims[0], &count));
  /* The output was sized by shape inference; a different count means it was inferred from other data. */
  if (count != out[0].dims[0])
    return kiln_error(KILN_ERR_SHAPE, "%" PRId64 " boxes selected but the output holds %" PRId64, count, out[0].dims[0]);
  return NULL;
}
