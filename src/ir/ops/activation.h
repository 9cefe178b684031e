/* activation family: typed parameters of the unary activations (Relu .. Clip). */
#ifndef KILN_IR_OPS_ACTIVATION_H
#define KILN_IR_OPS_ACTIVATION_H

#include "ir/graph.h"

#include <stdbool.h>

typedef enum kiln_gelu_approx {
  KILN_GELU_NONE = 0, /* 0.5 x (1 + erf(x / sqrt 2)) */
  KILN_GELU_TANH = 1, /* 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) */
} kiln_gelu_approx;

/* One struct for the family so fused epilogues (conv + activation) can carry any activation the
 * same way. Fields an op does not use keep their zero/default values. */
typedef struct kiln_activation_params {
  float alpha; /* LeakyRelu (0.01), Elu (1), Selu (1.6732632), Celu (1), ThresholdedRelu (1),
                  HardSigmoid (0.2), HardSwish (1/6, fixed) */
  float beta;  /* HardSigmoid (0.5), HardSwish (0.5, fixed) */
  float gamma; /* Selu (1.0507010) */
  kiln_gelu_approx approximate; /* Gelu */
  /* Clip before opset 11: bounds are attributes (defaults: the float range). From opset 11 they are
   * optional inputs 1 and 2 and these stay unset (has_* false). */
  bool has_min, has_max;
  float min, max;
} kiln_activation_params;

/* Clip's bounds as doubles when they are known at build time (attributes, constant inputs, or
 * absent = unbounded); *known = false if an input bound is not constant. For fusion passes
 * (e.g. Clip(0, 6) -> Relu6 epilogue). */
kiln_status kiln_clip_bounds(const kiln_graph *g, const kiln_node *n, double *lo, double *hi, bool *known);

#endif
