/* quant family: QuantizeLinear, DequantizeLinear, DynamicQuantizeLinear, QLinearConv, QLinearMatMul,
 * ConvInteger, MatMulInteger — typed parameters and the integer-conv geometry both infer and the
 * reference kernels use. */
#ifndef KILN_IR_OPS_QUANT_H
#define KILN_IR_OPS_QUANT_H

#include "ir/graph.h"

#include <stdbool.h>
#include <stdint.h>

#define KILN_QUANT_MAX_SPATIAL (KILN_MAX_RANK - 2)

typedef enum kiln_quant_auto_pad {
  KILN_QUANT_PAD_NOTSET = 0,
  KILN_QUANT_PAD_SAME_UPPER,
  KILN_QUANT_PAD_SAME_LOWER,
  KILN_QUANT_PAD_VALID,
} kiln_quant_auto_pad;

typedef struct kiln_quant_params {
  /* QuantizeLinear / DequantizeLinear */
  int64_t axis;              /* per-axis quantization axis (default 1); unnormalized */
  kiln_dtype output_dtype;   /* QuantizeLinear opset >= 21 'output_dtype'; UNDEFINED when absent */
  /* QLinearConv / ConvInteger: attributes as written (counts 0 when absent) */
  kiln_quant_auto_pad auto_pad;
  int64_t group;
  int32_t n_kernel, n_strides, n_dilations, n_pads;
  int64_t kernel_shape[KILN_QUANT_MAX_SPATIAL];
  int64_t strides[KILN_QUANT_MAX_SPATIAL];
  int64_t dilations[KILN_QUANT_MAX_SPATIAL];
  int64_t pads[2 * KILN_QUANT_MAX_SPATIAL];
} kiln_quant_params;

/* Resolved convolution geometry for concrete (or partly dynamic) input and weight dims. */
typedef struct kiln_quant_conv_geom {
  int32_t n_spatial;
  int64_t kernel[KILN_QUANT_MAX_SPATIAL];
  int64_t stride[KILN_QUANT_MAX_SPATIAL];
  int64_t dilation[KILN_QUANT_MAX_SPATIAL];
  int64_t pad_begin[KILN_QUANT_MAX_SPATIAL];
  int64_t out[KILN_QUANT_MAX_SPATIAL]; /* KILN_DIM_DYNAMIC where the input dim is dynamic */
} kiln_quant_conv_geom;

/* Geometry of a QLinearConv/ConvInteger from x dims [N, C, spatial...] and w dims [M, C/group, k...]
 * (ranks equal, >= 3). Validates attributes against the rank and returns KILN_ERR_SHAPE for an empty
 * output or a channel mismatch. */
kiln_status kiln_quant_conv_geometry(const kiln_quant_params *p, int32_t rank, const int64_t *xdims,
                                     const int64_t *wdims, kiln_quant_conv_geom *out);

#endif
