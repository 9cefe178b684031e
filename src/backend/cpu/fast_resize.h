/*
 * 2-D Resize of NCHW fp32 tensors (the last two dims): nearest and bilinear.
 *
 * Coordinates are resolved at build time into a table (per output row / column: source index, and
 * for bilinear the two taps and the weight), following the ONNX reference formulas exactly like the
 * reference kernel, so run() only gathers. The caller owns the table:
 *   size_t sz = kiln_fast_resize2d_table_size(&d);     // build time
 *   void *tab = aligned_alloc(64, round_up(sz, 64));
 *   KILN_TRY(kiln_fast_resize2d_build(&d, tab));
 *   kiln_fast_resize2d_run(&d, tab, x, y, tp);           // run time: no allocation
 * Nearest with an integer factor per axis (YOLO's 2x upsample) takes a copy-and-duplicate fast path.
 */
#ifndef KILN_BACKEND_CPU_FAST_RESIZE_H
#define KILN_BACKEND_CPU_FAST_RESIZE_H

#include "backend/cpu/fast_common.h"
#include "core/status.h"

typedef enum kiln_fast_resize_mode { KILN_FAST_RESIZE_NEAREST, KILN_FAST_RESIZE_LINEAR } kiln_fast_resize_mode;

typedef enum kiln_fast_resize_coord {
  KILN_FAST_COORD_HALF_PIXEL,
  KILN_FAST_COORD_ASYMMETRIC,
  KILN_FAST_COORD_ALIGN_CORNERS,
  KILN_FAST_COORD_PYTORCH_HALF_PIXEL,
  KILN_FAST_COORD_TF_HALF_PIXEL_FOR_NN,
} kiln_fast_resize_coord;

typedef enum kiln_fast_resize_round {
  KILN_FAST_ROUND_PREFER_FLOOR,
  KILN_FAST_ROUND_PREFER_CEIL,
  KILN_FAST_FLOOR,
  KILN_FAST_CEIL,
} kiln_fast_resize_round;

typedef struct kiln_fast_resize2d_desc {
  int64_t N, C, H, W, OH, OW;
  double scale_h, scale_w; /* the ONNX scales (OH/H when the model gave sizes) */
  kiln_fast_resize_mode mode;
  kiln_fast_resize_coord coord;
  kiln_fast_resize_round round; /* nearest only */
  int64_t x_batch_stride, y_batch_stride; /* elements; 0 = dense */
  kiln_isa isa;
} kiln_fast_resize2d_desc;

size_t kiln_fast_resize2d_table_size(const kiln_fast_resize2d_desc *d);
kiln_status kiln_fast_resize2d_build(const kiln_fast_resize2d_desc *d, void *table);
void kiln_fast_resize2d_run(const kiln_fast_resize2d_desc *d, const void *table, const float *x, float *y,
                            kiln_threadpool *tp);

#endif
