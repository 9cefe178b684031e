/* detect family: reference kernels. TODO: implement (stub). */
#include "backend/cpu/reference/reference.h"

kiln_status kiln_ref_detect(const kiln_graph *g, const kiln_node *n, const kiln_tensor *in, kiln_tensor *out) {
  return kiln_error(KILN_ERR_UNSUPPORTED, "no reference kernel for '%s' yet", n->op_type);
}
