#include "backend/cpu/reference/reference.h"

typedef kiln_status (*ref_fn)(const kiln_graph *, const kiln_node *, const kiln_tensor *, kiln_tensor *);

static const ref_fn ref_kernels[KILN_FAMILY_COUNT] = {
    [KILN_FAMILY_NONE] = NULL,
#define KILN_X_REF(family) [KILN_FAMILY_##family] = kiln_ref_##family,
    KILN_FAMILY_LIST(KILN_X_REF)
#undef KILN_X_REF
};

kiln_status kiln_reference_run(const kiln_graph *g, const kiln_node *n, const kiln_tensor *in, kiln_tensor *out) {
  kiln_op_family f = kiln_op_family_of(n->op);
  if (f == KILN_FAMILY_NONE || !ref_kernels[f])
    return kiln_error(KILN_ERR_UNSUPPORTED, "no reference kernel for op '%s'", n->op_type);
  return kiln_error_prefix(ref_kernels[f](g, n, in, out), "node '%s' (%s): ", n->name, n->op_type);
}
