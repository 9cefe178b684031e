/* norm family (BatchNormalization, InstanceNormalization, LayerNormalization, LRN): typed parameters. */
#ifndef KILN_IR_OPS_NORM_H
#define KILN_IR_OPS_NORM_H

#include "ir/graph.h"

#include <stdbool.h>
#include <stdint.h>

/* One struct for the family; fields an op does not use stay zero. */
typedef struct kiln_norm_params {
  float epsilon;
  /* BatchNormalization */
  float momentum;
  bool per_element; /* opset < 9 with spatial = 0: scale/B/mean/var have shape [C, D1, ...] */
  bool training;    /* opset >= 14 training_mode = 1: batch statistics, outputs running mean/var */
  /* LayerNormalization */
  int64_t axis;       /* as written (may be negative) */
  int64_t stash_type; /* ONNX dtype the statistics are computed and output in */
  /* LRN */
  float alpha, beta, bias;
  int64_t size;
} kiln_norm_params;

#endif
