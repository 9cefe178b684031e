/* source family: Shape, Size, Constant, ConstantOfShape, Range, Cast, CastLike, Identity, Dropout. */
#ifndef KILN_IR_OPS_SOURCE_H
#define KILN_IR_OPS_SOURCE_H

#include "ir/graph.h"

#include <stdbool.h>

typedef struct kiln_source_params {
  int64_t start, end; /* Shape (opset 15): dims [start, end) after clamping; end INT64_MAX = to the end */
  kiln_dtype to;      /* Cast */
  /* Constant: the value; ConstantOfShape: the fill value (one element). data owned by the params. */
  kiln_tensor value;
  bool has_value;
  bool mask_bool; /* Dropout: the mask output is bool (opset >= 10), else the data's type */
} kiln_source_params;

/* Convert n elements from (sdt, src) to (ddt, dst) the way ONNX Cast does (floats truncate toward zero
 * into integers, integers wrap, bool is != 0). Exposed so other families can reuse the rules. */
void kiln_source_convert(kiln_dtype sdt, const void *src, kiln_dtype ddt, void *dst, int64_t n);

/* Range's element count from its three scalar inputs (start, limit, delta); error if delta is 0. */
kiln_status kiln_source_range_count(const kiln_tensor *t, int64_t *count);

#endif
