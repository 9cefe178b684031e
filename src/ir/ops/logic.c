/* logic family: parse / infer / macs for comparisons, boolean logic, IsNaN/IsInf and Where. */
#include "ir/ops/logic.h"

#include "ir/infer_util.h"
#include "ir/ops/elementwise.h"

#include <inttypes.h>
#include <stdlib.h>

kiln_status kiln_logic_parse(kiln_graph *g, kiln_node *n) {
  bool binary = false;
  switch (n->op) {
  case KILN_OP_Equal: case KILN_OP_Less: case KILN_OP_Greater: case KILN_OP_LessOrEqual:
  case KILN_OP_GreaterOrEqual: case KILN_OP_And: case KILN_OP_Or: case KILN_OP_Xor:
    KILN_TRY(kiln_check_arity(n, 2, 2, 1, 1));
    binary = true;
    break;
  case KILN_OP_Where: KILN_TRY(kiln_check_arity(n, 3, 3, 1, 1)); break;
  case KILN_OP_Not: case KILN_OP_IsNaN: case KILN_OP_IsInf: KILN_TRY(kiln_check_arity(n, 1, 1, 1, 1)); break;
  default: return kiln_error(KILN_ERR_INTERNAL, "op '%s' is not in the logic family", n->op_type);
  }
  if (binary && g->opset < 7) {
    int64_t bc;
    KILN_TRY(kiln_node_get_int(n, "broadcast", 0, &bc));
    if (bc != 0 && bc != 1) return kiln_error(KILN_ERR_PARSE, "attribute 'broadcast' = %" PRId64 " must be 0 or 1", bc);
  }
  if (n->op == KILN_OP_IsInf) {
    int64_t pos, neg;
    KILN_TRY(kiln_node_get_int(n, "detect_positive", 1, &pos));
    KILN_TRY(kiln_node_get_int(n, "detect_negative", 1, &neg));
    if ((pos != 0 && pos != 1) || (neg != 0 && neg != 1))
      return kiln_error(KILN_ERR_PARSE, "attributes 'detect_positive'/'detect_negative' must be 0 or 1");
    kiln_logic_params *p = calloc(1, sizeof *p);
    KILN_CHECK_ALLOC(p);
    p->detect_positive = pos != 0;
    p->detect_negative = neg != 0;
    kiln_node_set_params(n, p, NULL);
  }
  return NULL;
}

kiln_status kiln_logic_infer(kiln_graph *g, kiln_node *n) {
  const kiln_value *x;
  kiln_shape out;
  switch (n->op) {
  case KILN_OP_Equal: /* bool and every numeric type (int/bool only before opset 11; a superset is fine) */
    KILN_TRY(kiln_ew_require_input(g, n, 0, KILN_DTMASK_ANY, &x));
    break;
  case KILN_OP_Less: case KILN_OP_Greater: case KILN_OP_LessOrEqual: case KILN_OP_GreaterOrEqual:
    KILN_TRY(kiln_ew_require_input(g, n, 0, KILN_DTMASK_NUMERIC, &x));
    break;
  case KILN_OP_And: case KILN_OP_Or: case KILN_OP_Xor:
    KILN_TRY(kiln_ew_require_input(g, n, 0, KILN_DTMASK_BOOL, &x));
    break;
  case KILN_OP_Not:
    KILN_TRY(kiln_ew_require_input(g, n, 0, KILN_DTMASK_BOOL, &x));
    return kiln_infer_set_output(g, n, 0, KILN_DTYPE_BOOL, &x->shape);
  case KILN_OP_IsNaN: case KILN_OP_IsInf:
    KILN_TRY(kiln_ew_require_input(g, n, 0, KILN_DTMASK_FLOAT, &x));
    return kiln_infer_set_output(g, n, 0, KILN_DTYPE_BOOL, &x->shape);
  case KILN_OP_Where: {
    const kiln_value *c;
    KILN_TRY(kiln_ew_require_input(g, n, 0, KILN_DTMASK_BOOL, &c));
    KILN_TRY(kiln_ew_require_input(g, n, 1, KILN_DTMASK_ANY, &x));
    KILN_TRY(kiln_ew_broadcast_inputs(g, n, 1, 2, &out)); /* X and Y: same dtype, broadcast */
    kiln_shape xy = out;
    kiln_status st = kiln_infer_broadcast(&c->shape, &xy, &out);
    if (st) return kiln_error_prefix(st, "condition '%s' and '%s': ", c->name, x->name);
    return kiln_infer_set_output(g, n, 0, x->dtype, &out);
  }
  default: return kiln_error(KILN_ERR_INTERNAL, "op '%s' is not in the logic family", n->op_type);
  }
  /* binary comparison / logic */
  KILN_TRY(kiln_ew_check_legacy_broadcast(g, n)); /* first: its refusal explains a failed broadcast */
  KILN_TRY(kiln_ew_broadcast_inputs(g, n, 0, 2, &out));
  return kiln_infer_set_output(g, n, 0, KILN_DTYPE_BOOL, &out);
}

int64_t kiln_logic_macs(const kiln_graph *g, const kiln_node *n) { return 0; }
