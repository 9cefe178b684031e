/*
 * Op identities and per-family hooks, generated from the op table (op_table.h).
 *
 * Each family implements, in ir/ops/<family>.c:
 *   kiln_status kiln_<family>_parse(kiln_graph *g, kiln_node *n);
 *       Validate input/output counts and attributes for the graph's opset and fill n->params with
 *       the family's typed parameter struct (ops/<family>.h). Errors name the attribute; the caller
 *       prefixes the node's name and op.
 *   kiln_status kiln_<family>_infer(kiln_graph *g, kiln_node *n);
 *       Set every output value's dtype and shape from the inputs (and from constant input data
 *       where the op's shape depends on it, e.g. Reshape's target). A shape that depends on
 *       non-constant data gets KILN_DIM_DYNAMIC dims (or rank -1). Inconsistent inputs -> error.
 *   int64_t kiln_<family>_macs(const kiln_graph *g, const kiln_node *n);
 *       Multiply-accumulates for one run (0 for ops without meaningful MACs).
 */
#ifndef KILN_IR_OPS_H
#define KILN_IR_OPS_H

#include "core/status.h"
#include "ir/op_table.h"

#include <stdint.h>

typedef enum kiln_op {
  KILN_OP_UNKNOWN = 0,
#define KILN_X_ENUM(name, family) KILN_OP_##name,
  KILN_OP_LIST(KILN_X_ENUM)
#undef KILN_X_ENUM
  KILN_OP_COUNT
} kiln_op;

typedef enum kiln_op_family {
  KILN_FAMILY_NONE = 0,
#define KILN_X_FAMILY(family) KILN_FAMILY_##family,
  KILN_FAMILY_LIST(KILN_X_FAMILY)
#undef KILN_X_FAMILY
  KILN_FAMILY_COUNT
} kiln_op_family;

struct kiln_node;

const char *kiln_op_name(kiln_op op);                 /* "Conv"; "?" for unknown */
kiln_op kiln_op_lookup(const char *domain, const char *op_type); /* KILN_OP_UNKNOWN if not built in */
kiln_op_family kiln_op_family_of(kiln_op op);
const char *kiln_op_family_name(kiln_op_family f);

/* Dispatch to the node's family. Errors are prefixed with "node '<name>' (<op>): ". */
kiln_status kiln_node_parse(struct kiln_network *g, struct kiln_node *n);
kiln_status kiln_node_infer(struct kiln_network *g, struct kiln_node *n);
int64_t kiln_node_macs(const struct kiln_network *g, const struct kiln_node *n);

#define KILN_X_DECL(family)                                                                          \
  kiln_status kiln_##family##_parse(struct kiln_network *g, struct kiln_node *n);                   \
  kiln_status kiln_##family##_infer(struct kiln_network *g, struct kiln_node *n);                   \
  int64_t kiln_##family##_macs(const struct kiln_network *g, const struct kiln_node *n);
KILN_FAMILY_LIST(KILN_X_DECL)
#undef KILN_X_DECL

#endif
