/* The CUDA lowering's shared state and helpers (lower_cuda.c), for the op files that extend it
 * (lower_cuda_ops.c). See lower_cuda.c for the layout and precision rules. */
#ifndef KILN_BUILD_LOWER_CUDA_H
#define KILN_BUILD_LOWER_CUDA_H

#include "build/builder.h"

typedef enum node_kind {
  K_OTHER = 0, /* LINEAR */
  K_CONV,
  K_POOL,
  K_RESIZE,
  K_CONCAT_C, /* Concat along the channels of 4-D tensors */
  K_SPLIT_C,  /* Split along the channels of 4-D tensors */
  K_ELTWISE,  /* activation or same-shape binary op on 4-D tensors */
} node_kind;

typedef struct cuda_lower {
  kiln_lower_ctx *lc;
  kiln_graph *g;
  int fp16;
  uint8_t *kind;    /* per node: node_kind */
  uint8_t *nhwc;    /* per value: lives NHWC */
  uint8_t *half;    /* per value: NHWC and fp16 */
  int32_t *alt;     /* per value: its copy in the other layout (cuda.convert output), -1 */
  int32_t *io_of;   /* per value: the IO tensor an NHWC-produced graph output is converted into, -1 */
  uint8_t *spatial_concat; /* per node: a Concat of flattened NHWC maps, lowered as one cuda.convert_concat */
  int32_t *concat_act;     /* per node: for those, the activation node fused into it, -1 */
  struct kiln_conv_tuner *tuner; /* conv layers whose kernel is chosen by timing after lowering */
} cuda_lower;

/* The record of engine tensor `id`. */
const kiln_tensor_rec *kiln_cuda_lower_rec(cuda_lower *cl, int32_t id);
/* The tensor holding value v in this layout and dtype; converts once per value if needed (constants are
 * WEIGHT tensors, LINEAR). pad8: NHWC padded to 8 channels with zeros (the stem's input). */
kiln_status kiln_cuda_lower_tensor_as(cuda_lower *cl, int32_t v, uint32_t layout, uint32_t dtype, bool pad8, int32_t *out);
/* A LINEAR output tensor for value v (its binding when v is a graph output). */
kiln_status kiln_cuda_lower_linear_output(cuda_lower *cl, int32_t v, int32_t *out);
kiln_status kiln_cuda_lower_add_layer(cuda_lower *cl, const char *name, const char *kernel, const char *op, const int32_t *ins,
                                      int n_in, const int32_t *outs, int n_out, const void *params, size_t size, uint64_t ws,
                                      uint64_t macs);
/* LINEAR ops beyond lower_cuda.c's own (MatMul/Gemm, reductions, general Slice, Resize, Pad, ...):
 * *done = false leaves node i unsupported. */
kiln_status kiln_lower_cuda_ops(cuda_lower *cl, int32_t i, bool *done);

#endif
