/* index family: parse / infer / macs. TODO: implement (stub). */
#include "ir/graph.h"
#include "ir/infer_util.h"

kiln_status kiln_index_parse(kiln_graph *g, kiln_node *n) {
  return kiln_error(KILN_ERR_UNSUPPORTED, "op '%s' is not implemented yet", n->op_type);
}
kiln_status kiln_index_infer(kiln_graph *g, kiln_node *n) {
  return kiln_error(KILN_ERR_UNSUPPORTED, "shape inference for '%s' is not implemented yet", n->op_type);
}
int64_t kiln_index_macs(const kiln_graph *g, const kiln_node *n) { return 0; }
