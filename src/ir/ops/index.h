/* index family: Gather, GatherElements, GatherND, ScatterElements, ScatterND, OneHot, NonZero, Compress. */
#ifndef KILN_IR_OPS_INDEX_H
#define KILN_IR_OPS_INDEX_H

#include "ir/graph.h"

#include <stdbool.h>

/* Scatter reductions (attribute 'reduction', opset 16/18). */
enum { KILN_SCATTER_NONE = 0, KILN_SCATTER_ADD, KILN_SCATTER_MUL, KILN_SCATTER_MAX, KILN_SCATTER_MIN };

typedef struct kiln_index_params {
  int64_t axis;       /* Gather, GatherElements, ScatterElements, OneHot, Compress */
  bool has_axis;      /* Compress: without an axis the input is flattened */
  int64_t batch_dims; /* GatherND */
  int32_t reduction;  /* ScatterElements, ScatterND: KILN_SCATTER_* */
} kiln_index_params;

/* Output shapes of an index-family node from its input shapes, plus input data where the output shape
 * depends on it (NonZero: input 0, Compress: condition, OneHot: depth). `data[i].dtype` is UNDEFINED
 * where the contents are not known (shape inference of a non-constant input): those dims become dynamic.
 * Shared by shape inference and the reference kernels so both apply the same rules. */
kiln_status kiln_index_resolve(const kiln_node *n, const kiln_shape *in, const kiln_tensor *data, kiln_shape *out);

#endif
