/* conv family (Conv, ConvTranspose): typed parameters, and the sliding-window geometry shared with the
 * pool family. */
#ifndef KILN_IR_OPS_CONV_H
#define KILN_IR_OPS_CONV_H

#include "ir/graph.h"

#include <stdbool.h>
#include <stdint.h>

/* Spatial dims are the dims after N and C. */
#define KILN_MAX_SPATIAL (KILN_MAX_RANK - 2)

typedef enum kiln_auto_pad {
  KILN_AUTO_PAD_NOTSET = 0,
  KILN_AUTO_PAD_SAME_UPPER,
  KILN_AUTO_PAD_SAME_LOWER,
  KILN_AUTO_PAD_VALID,
} kiln_auto_pad;

/* Window attributes as written in the model (counts 0 = attribute absent). Shared by Conv,
 * ConvTranspose, MaxPool and AveragePool so the padding rules live in one place. */
typedef struct kiln_window_attrs {
  kiln_auto_pad auto_pad;
  int32_t n_kernel, n_strides, n_dilations, n_pads, n_output_padding, n_output_shape;
  int64_t kernel_shape[KILN_MAX_SPATIAL];
  int64_t strides[KILN_MAX_SPATIAL];
  int64_t dilations[KILN_MAX_SPATIAL];
  int64_t pads[2 * KILN_MAX_SPATIAL]; /* ONNX order: all begins, then all ends */
  int64_t output_padding[KILN_MAX_SPATIAL]; /* ConvTranspose */
  int64_t output_shape[KILN_MAX_RANK]; /* ConvTranspose: spatial dims (or, from some exporters, N, C, spatial) */
} kiln_window_attrs;

/* Fully resolved geometry for one concrete input shape: what a kernel loops over. For ConvTranspose
 * `in`/`out` keep their data-flow meaning (in = X's spatial dims, out = Y's) and the pads are the
 * crop applied to the full transposed output. */
typedef struct kiln_window_geom {
  int32_t nsp; /* number of spatial dims */
  int64_t in[KILN_MAX_SPATIAL], out[KILN_MAX_SPATIAL];
  int64_t kernel[KILN_MAX_SPATIAL], strides[KILN_MAX_SPATIAL], dilations[KILN_MAX_SPATIAL];
  int64_t pad_begin[KILN_MAX_SPATIAL], pad_end[KILN_MAX_SPATIAL];
} kiln_window_geom;

typedef struct kiln_conv_params {
  kiln_window_attrs w;
  int64_t group;
  /* Filled by shape inference when X and W have static shapes, so fast kernels need not redo it. */
  bool resolved;
  int64_t batch, in_channels, out_channels;
  kiln_window_geom geom;
} kiln_conv_params;

/* Read auto_pad/kernel_shape/strides/dilations/pads (+ output_padding/output_shape if `transpose`)
 * and validate them (positive strides/dilations/kernel, non-negative pads, consistent counts). */
kiln_status kiln_window_attrs_parse(const kiln_node *n, bool transpose, kiln_window_attrs *w);

/* Resolve the window geometry. `in` = spatial input dims (KILN_DIM_DYNAMIC allowed: the matching
 * out dim becomes dynamic), `kernel` = spatial kernel dims (from W or kernel_shape). `ceil_mode` is for
 * pools. `transpose` selects ConvTranspose's output-size rule. */
kiln_status kiln_window_resolve(const kiln_window_attrs *w, int32_t nsp, const int64_t *in, const int64_t *kernel,
                                bool transpose, bool ceil_mode, kiln_window_geom *g);

/* Resolve a Conv/ConvTranspose node for concrete X dims (rank nsp+2) and W dims. Validates channels
 * and group. Used by infer and by kernels. */
kiln_status kiln_conv_resolve(const kiln_node *n, const kiln_conv_params *p, int32_t rank, const int64_t *x_dims,
                              const int64_t *w_dims, kiln_conv_params *out);

#endif
