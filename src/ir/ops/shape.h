/*
 * shape family: Concat, Split, Slice, Reshape, Flatten, Squeeze, Unsqueeze, Transpose, Expand, Tile, Pad,
 * DepthToSpace, SpaceToDepth, Trilu.
 *
 * Also the small helpers the shape, index and source families share (they all read integer inputs
 * that may or may not be constant, and all fold tiny shape-arithmetic tensors during inference).
 *
 * Why one resolver: the output shapes of these ops depend on integer inputs (Slice starts, Reshape
 * target, Pad pads, ...). Shape inference sees them only when they are constants; the reference
 * kernel always sees them. Both call kiln_shape_resolve with whatever is known, so the rules (clamping,
 * negative axes, 0/-1 in Reshape) live in one place and infer and kernels cannot disagree.
 */
#ifndef KILN_IR_OPS_SHAPE_H
#define KILN_IR_OPS_SHAPE_H

#include "ir/graph.h"

#include <stdbool.h>

/* Longest integer list kiln reads as op parameters (Split sizes, pads, axes...). Shape-arithmetic
 * tensors are tiny; anything longer is treated as "not known" during inference. */
#define KILN_INTS_MAX 64

/* An integer list that may be unknown (a non-constant input during inference). */
typedef struct kiln_ints {
  bool known;
  int64_t n;
  int64_t v[KILN_INTS_MAX];
} kiln_ints;

enum { KILN_PAD_CONSTANT = 0, KILN_PAD_REFLECT, KILN_PAD_EDGE, KILN_PAD_WRAP };
enum { KILN_D2S_DCR = 0, KILN_D2S_CRD };

typedef struct kiln_shape_params {
  int64_t axis;        /* Concat, Split, Flatten */
  int64_t blocksize;   /* DepthToSpace, SpaceToDepth */
  int64_t num_outputs; /* Split (opset 18); 0 = not given */
  int32_t mode;        /* Pad: KILN_PAD_*; DepthToSpace: KILN_D2S_* */
  bool upper;          /* Trilu */
  bool allowzero;      /* Reshape (opset 14) */
  double pad_value;    /* Pad (opset < 11 'value' attribute) */
  /* Lists that older opsets give as attributes (newer ones as inputs): Split 'split', Slice 'starts',
   * Squeeze/Unsqueeze 'axes', Transpose 'perm', Pad 'pads' in a; Slice 'ends' in b; Slice 'axes' in c. */
  kiln_ints a, b, c;
} kiln_shape_params;

/* Per-run parameters derived from the input shapes and integer inputs. */
typedef struct kiln_shape_resolved {
  int32_t axis;
  int64_t start[KILN_MAX_RANK], step[KILN_MAX_RANK]; /* Slice, per input axis (0 / 1 if not sliced) */
  int32_t perm[KILN_MAX_RANK];                       /* Transpose */
  int64_t pads[2 * KILN_MAX_RANK];                   /* Pad: begins for every axis, then ends */
  int64_t split[KILN_INTS_MAX];                      /* Split sizes */
} kiln_shape_resolved;

/* Output shapes of a shape-family node (n_outputs entries into `out`) and the resolved parameters.
 * `in` has n->n_inputs shapes (rank -1 for omitted or unknown), `ints` the integer data of each input
 * where known. Unknown data gives dynamic dims; inconsistent data returns an error. */
kiln_status kiln_shape_resolve(const kiln_graph *g, const kiln_node *n, const kiln_shape *in, const kiln_ints *ints,
                               kiln_shape_resolved *r, kiln_shape *out);

/* ---- helpers shared by the shape, index and source families ------------------------------------ */
/* The integer contents of a value (known only if constant, integer-typed and at most KILN_INTS_MAX long). */
void kiln_ints_from_value(const kiln_value *v, kiln_ints *out);
/* The integer contents of a tensor (known only for integer dtypes, at most KILN_INTS_MAX elements). */
void kiln_ints_from_tensor(const kiln_tensor *t, kiln_ints *out);
void kiln_shape_from_tensor(const kiln_tensor *t, kiln_shape *out);
/* Reference kernels: error unless output idx has exactly the expected (static) shape. */
kiln_status kiln_shape_check_output(const kiln_tensor *out, int idx, const kiln_shape *expect);
/* Drop constant data that an earlier inference put on n's outputs (inputs may have changed since). */
void kiln_shape_clear_folded(kiln_graph *g, const kiln_node *n);
/* If every input of n is constant and every output is tiny (shape arithmetic), evaluate n with the
 * reference kernel and make its outputs constants, so Shape -> Gather -> Concat -> Reshape chains give
 * Reshape a constant target during a single inference sweep. Call after the outputs' shapes are set. */
kiln_status kiln_shape_fold_small(kiln_graph *g, const kiln_node *n);

#endif
