#include "ir/ops.h"

#include "ir/graph.h"

#include <string.h>

static const char *const op_names[KILN_OP_COUNT] = {
    [KILN_OP_UNKNOWN] = "?",
#define KILN_X_NAME(name, family) [KILN_OP_##name] = #name,
    KILN_OP_LIST(KILN_X_NAME)
#undef KILN_X_NAME
};

static const kiln_op_family op_families[KILN_OP_COUNT] = {
    [KILN_OP_UNKNOWN] = KILN_FAMILY_NONE,
#define KILN_X_FAM(name, family) [KILN_OP_##name] = KILN_FAMILY_##family,
    KILN_OP_LIST(KILN_X_FAM)
#undef KILN_X_FAM
};

typedef struct family_hooks {
  const char *name;
  kiln_status (*parse)(kiln_graph *g, kiln_node *n);
  kiln_status (*infer)(kiln_graph *g, kiln_node *n);
  int64_t (*macs)(const kiln_graph *g, const kiln_node *n);
} family_hooks;

static const family_hooks families[KILN_FAMILY_COUNT] = {
    [KILN_FAMILY_NONE] = {"none", NULL, NULL, NULL},
#define KILN_X_HOOKS(family)                                                                         \
  [KILN_FAMILY_##family] = {#family, kiln_##family##_parse, kiln_##family##_infer, kiln_##family##_macs},
    KILN_FAMILY_LIST(KILN_X_HOOKS)
#undef KILN_X_HOOKS
};

const char *kiln_op_name(kiln_op op) {
  return (op > KILN_OP_UNKNOWN && op < KILN_OP_COUNT) ? op_names[op] : "?";
}

kiln_op kiln_op_lookup(const char *domain, const char *op_type) {
  if (!op_type) return KILN_OP_UNKNOWN;
  if (domain && domain[0] && strcmp(domain, "ai.onnx") != 0) return KILN_OP_UNKNOWN;
  /* Linear scan over ~150 names happens once per node at import; not worth a hash. */
  for (int i = 1; i < KILN_OP_COUNT; i++)
    if (strcmp(op_names[i], op_type) == 0) return (kiln_op)i;
  return KILN_OP_UNKNOWN;
}

kiln_op_family kiln_op_family_of(kiln_op op) {
  return (op > KILN_OP_UNKNOWN && op < KILN_OP_COUNT) ? op_families[op] : KILN_FAMILY_NONE;
}

const char *kiln_op_family_name(kiln_op_family f) {
  return (f >= 0 && f < KILN_FAMILY_COUNT) ? families[f].name : "?";
}

static kiln_status node_error_prefix(kiln_status st, const kiln_node *n) {
  return kiln_error_prefix(st, "node '%s' (%s): ", n->name ? n->name : "", n->op_type ? n->op_type : "?");
}

kiln_status kiln_node_parse(kiln_graph *g, kiln_node *n) {
  kiln_op_family f = kiln_op_family_of(n->op);
  if (f == KILN_FAMILY_NONE)
    return kiln_error(KILN_ERR_UNSUPPORTED, "node '%s': unsupported op '%s%s%s'", n->name ? n->name : "",
                      n->domain && n->domain[0] ? n->domain : "", n->domain && n->domain[0] ? "::" : "",
                      n->op_type ? n->op_type : "?");
  return node_error_prefix(families[f].parse(g, n), n);
}

kiln_status kiln_node_infer(kiln_graph *g, kiln_node *n) {
  kiln_op_family f = kiln_op_family_of(n->op);
  if (f == KILN_FAMILY_NONE)
    return kiln_error(KILN_ERR_UNSUPPORTED, "node '%s': unsupported op '%s'", n->name ? n->name : "",
                      n->op_type ? n->op_type : "?");
  return node_error_prefix(families[f].infer(g, n), n);
}

int64_t kiln_node_macs(const kiln_graph *g, const kiln_node *n) {
  kiln_op_family f = kiln_op_family_of(n->op);
  if (f == KILN_FAMILY_NONE || !families[f].macs) return 0;
  return families[f].macs(g, n);
}
