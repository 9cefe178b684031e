/* pool family (MaxPool, AveragePool, GlobalAveragePool, GlobalMaxPool, Resize, Upsample): typed parameters. */
#ifndef KILN_IR_OPS_POOL_H
#define KILN_IR_OPS_POOL_H

#include "ir/graph.h"
#include "ir/ops/conv.h"

#include <stdbool.h>
#include <stdint.h>

/* MaxPool / AveragePool (the Global* pools have no params: n->params stays NULL). */
typedef struct kiln_pool_params {
  kiln_window_attrs w;
  bool ceil_mode;
  bool count_include_pad; /* AveragePool */
  bool column_major;      /* MaxPool storage_order = 1: Indices count the spatial dims column-major */
  /* Filled by shape inference when X has a static shape. */
  bool resolved;
  kiln_window_geom geom;
} kiln_pool_params;

typedef enum kiln_resize_mode { KILN_RESIZE_NEAREST, KILN_RESIZE_LINEAR, KILN_RESIZE_CUBIC } kiln_resize_mode;

typedef enum kiln_resize_coord {
  KILN_COORD_HALF_PIXEL,
  KILN_COORD_HALF_PIXEL_SYMMETRIC,
  KILN_COORD_PYTORCH_HALF_PIXEL,
  KILN_COORD_ALIGN_CORNERS,
  KILN_COORD_ASYMMETRIC,
  KILN_COORD_TF_HALF_PIXEL_FOR_NN,
  KILN_COORD_TF_CROP_AND_RESIZE,
} kiln_resize_coord;

typedef enum kiln_resize_nearest {
  KILN_NEAREST_ROUND_PREFER_FLOOR,
  KILN_NEAREST_ROUND_PREFER_CEIL,
  KILN_NEAREST_FLOOR,
  KILN_NEAREST_CEIL,
  KILN_NEAREST_SIMPLE, /* Upsample and Resize-10: floor when upsampling, ceil when downsampling (ORT) */
} kiln_resize_nearest;

typedef enum kiln_resize_policy {
  KILN_ASPECT_STRETCH,
  KILN_ASPECT_NOT_LARGER,
  KILN_ASPECT_NOT_SMALLER,
} kiln_resize_policy;

/* Resize and Upsample (Upsample is Resize with asymmetric coordinates). */
typedef struct kiln_resize_params {
  kiln_resize_mode mode;
  kiln_resize_coord coord;
  kiln_resize_nearest nearest;
  kiln_resize_policy policy;
  float cubic_coeff_a;
  bool exclude_outside;
  float extrapolation_value;
  /* Where the data-dependent inputs are (-1: this op/opset has none). */
  int32_t roi_input, scales_input, sizes_input;
  /* Upsample before opset 9: scales come from the attribute. */
  int32_t n_attr_scales;
  float attr_scales[KILN_MAX_RANK];
  /* opset 18 `axes`: scales/sizes/roi cover only these dims (normalized once the rank is known). */
  int32_t n_axes;
  int64_t axes[KILN_MAX_RANK];
} kiln_resize_params;

/* Output dims and per-dim scale factors (used for the coordinate transform) of a Resize/Upsample
 * for input dims `in` (static). Exactly one of scales (n_scales values) / sizes (n_sizes) is used:
 * pass NULL/0 for the absent one. Validates counts and values. */
kiln_status kiln_resize_resolve(const kiln_resize_params *p, int32_t rank, const int64_t *in, const double *scales,
                                int64_t n_scales, const int64_t *sizes, int64_t n_sizes, int64_t *out_dims,
                                double *out_scales);

#endif
