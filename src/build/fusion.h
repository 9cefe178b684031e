/*
 * Epilogue fusion shared by the CPU and CUDA lowerings: what follows a Conv and can run in its epilogue.
 *   Conv -> [activation] -> [Add residual]
 * The activation is SiLU (Sigmoid + Mul, as YOLOv5/v8/v11 export it), Relu, LeakyRelu, Sigmoid, Clip
 * (constant bounds), HardSwish or Tanh; the residual is any same-shape fp32 tensor computed before the
 * Conv. Each step fuses only when nothing else reads the intermediate value.
 */
#ifndef KILN_BUILD_FUSION_H
#define KILN_BUILD_FUSION_H

#include "backend/cpu/epilogue.h"
#include "ir/graph.h"

typedef struct kiln_conv_fusion {
  int32_t nodes[4]; /* the Conv first, then the fused nodes */
  int n_nodes;
  int32_t out;      /* the value the fused layer produces */
  int32_t residual; /* -1 if none */
  kiln_epilogue epi;
} kiln_conv_fusion;

/* Match the epilogue of the Conv at node index conv_index (f->n_nodes == 1 if nothing fuses). */
void kiln_match_conv_epilogue(const kiln_graph *g, int32_t conv_index, kiln_conv_fusion *f);
/* The only consumer of value v, or -1 (none, several, v read twice by one node, or a graph output). */
int32_t kiln_sole_consumer(const kiln_graph *g, int32_t v);

#endif
