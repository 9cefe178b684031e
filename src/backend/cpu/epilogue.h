/* Fused epilogues of CPU kernels: what is applied to an accumulator before it is stored. */
#ifndef KILN_BACKEND_CPU_EPILOGUE_H
#define KILN_BACKEND_CPU_EPILOGUE_H

typedef enum kiln_act {
  KILN_ACT_NONE = 0,
  KILN_ACT_RELU,       /* max(x, 0) */
  KILN_ACT_LEAKY_RELU, /* x < 0 ? alpha * x : x */
  KILN_ACT_CLIP,       /* min(max(x, alpha), beta) (ReLU6: 0, 6) */
  KILN_ACT_SIGMOID,    /* 1 / (1 + exp(-x)) */
  KILN_ACT_SILU,       /* x * sigmoid(x)  (YOLOv5/v8/v11's activation) */
  KILN_ACT_HARDSWISH,  /* x * clip(x/6 + 1/2, 0, 1) */
  KILN_ACT_HARDSIGMOID,/* clip(alpha * x + beta, 0, 1) */
  KILN_ACT_TANH,
  KILN_ACT_GELU,       /* exact (erf) */
} kiln_act;

typedef struct kiln_epilogue {
  kiln_act act;
  float alpha, beta;
  /* A residual tensor of the output's shape is added: after the activation (YOLO bottleneck:
   * x + act(conv)) or before it (ResNet: act(conv + x)). */
  int residual_before_act;
} kiln_epilogue;

#endif
