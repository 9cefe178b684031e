/* Shared helpers for op families' parse and infer hooks (broadcasting, axes, output setting). */
#ifndef KILN_IR_INFER_UTIL_H
#define KILN_IR_INFER_UTIL_H

#include "ir/graph.h"

/* Set output `idx` of n to (dt, shape). Omitted outputs are skipped. If the output is already a
 * constant (folded), checks agreement instead. */
kiln_status kiln_infer_set_output(kiln_graph *g, kiln_node *n, int idx, kiln_dtype dt, const kiln_shape *shape);
/* ONNX multidirectional (numpy) broadcasting. Dynamic dims broadcast against 1 or equal symbols. */
kiln_status kiln_infer_broadcast(const kiln_shape *a, const kiln_shape *b, kiln_shape *out);
/* Normalize a possibly negative axis into [0, rank); error naming the axis if out of range. */
kiln_status kiln_normalize_axis(int64_t axis, int32_t rank, int32_t *out);
/* Check the node has between lo and hi inputs (counting trailing omitted ones) and lo_out..hi_out outputs. */
kiln_status kiln_check_arity(const kiln_node *n, int lo, int hi, int lo_out, int hi_out);
/* Input i must be present (not omitted) and have a known dtype. */
kiln_status kiln_require_input(const kiln_graph *g, const kiln_node *n, int i, const kiln_value **out);
/* The number of elements of a static shape into *out; error if absurd (> KILN_MAX_ELEMENTS). */
kiln_status kiln_check_numel(const kiln_shape *s, int64_t *out);

#endif
