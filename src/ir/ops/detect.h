/* detect family: NonMaxSuppression — typed parameters and the selection routine. */
#ifndef KILN_IR_OPS_DETECT_H
#define KILN_IR_OPS_DETECT_H

#include "ir/graph.h"

#include <stdbool.h>
#include <stdint.h>

typedef struct kiln_nms_params {
  int64_t center_point_box; /* 0: boxes are [y1, x1, y2, x2] (either corner order); 1: [xc, yc, w, h] */
} kiln_nms_params;

/* Run ONNX NonMaxSuppression on dense tensors. boxes [B, N, 4] and scores [B, C, N] (any float dtype);
 * max_out / iou / score_thr are the optional scalar inputs (data NULL when omitted). Writes up to
 * `cap` triples [batch, class, box] into `sel` (sel may be NULL to only count) and the total count
 * into *count. Lives in the IR (not the backend) because shape inference needs the exact count when
 * every input is constant: the output's first dim depends on the data. */
kiln_status kiln_nms_select(const kiln_nms_params *p, const kiln_tensor *boxes, const kiln_tensor *scores,
                            const kiln_tensor *max_out, const kiln_tensor *iou, const kiln_tensor *score_thr,
                            int64_t *sel, int64_t cap, int64_t *count);

#endif
