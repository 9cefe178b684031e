/*
 * elementwise family: arithmetic (Add..Pow, Mod), unary math functions and the variadic
 * Min/Max/Mean/Sum.
 *
 * This header also carries what the three elementwise-shaped families (activation, elementwise,
 * logic) share:
 *   - dtype masks and checks used by their infer hooks;
 *   - the numpy-style broadcast walker their reference kernels use (PRelu, every binary and
 *     variadic op, Where). It is header-only (static inline) so that any kernel, reference or
 *     fast, can use it without a link dependency between backend files.
 */
#ifndef KILN_IR_OPS_ELEMENTWISE_H
#define KILN_IR_OPS_ELEMENTWISE_H

#include "core/dtype.h"
#include "ir/graph.h"

#include <stdbool.h>
#include <stdint.h>

/* Mod's attribute. Other elementwise ops have no parameters (n->params stays NULL). */
typedef struct kiln_elementwise_params {
  int32_t fmod; /* 1: C fmod (sign of the dividend); 0: sign of the divisor, like Python's % */
} kiln_elementwise_params;

/* ---- dtype masks ---------------------------------------------------------------------------------- */
#define KILN_DTMASK(dt) (1u << (unsigned)(dt))
#define KILN_DTMASK_FLOAT                                                                            \
  (KILN_DTMASK(KILN_DTYPE_FLOAT32) | KILN_DTMASK(KILN_DTYPE_FLOAT64) | KILN_DTMASK(KILN_DTYPE_FLOAT16) | \
   KILN_DTMASK(KILN_DTYPE_BFLOAT16))
#define KILN_DTMASK_SINT                                                                             \
  (KILN_DTMASK(KILN_DTYPE_INT8) | KILN_DTMASK(KILN_DTYPE_INT16) | KILN_DTMASK(KILN_DTYPE_INT32) |      \
   KILN_DTMASK(KILN_DTYPE_INT64))
#define KILN_DTMASK_UINT                                                                             \
  (KILN_DTMASK(KILN_DTYPE_UINT8) | KILN_DTMASK(KILN_DTYPE_UINT16) | KILN_DTMASK(KILN_DTYPE_UINT32) |   \
   KILN_DTMASK(KILN_DTYPE_UINT64))
#define KILN_DTMASK_BOOL KILN_DTMASK(KILN_DTYPE_BOOL)
#define KILN_DTMASK_NUMERIC (KILN_DTMASK_FLOAT | KILN_DTMASK_SINT | KILN_DTMASK_UINT)
#define KILN_DTMASK_ANY (KILN_DTMASK_NUMERIC | KILN_DTMASK_BOOL)

static inline bool kiln_dtype_in_mask(kiln_dtype dt, uint32_t mask) {
  return (unsigned)dt < 32 && (mask & KILN_DTMASK(dt)) != 0;
}

/* How kernels compute on a dtype: floats in double, signed ints in int64 and unsigned ints (and
 * bool) in uint64, both with wrap-around, then narrowed to the output dtype on store. */
typedef enum kiln_num_class { KILN_NUM_FLOAT, KILN_NUM_SIGNED, KILN_NUM_UNSIGNED } kiln_num_class;

static inline kiln_num_class kiln_num_class_of(kiln_dtype dt) {
  if (kiln_dtype_is_float(dt)) return KILN_NUM_FLOAT;
  if (kiln_dtype_is_signed(dt)) return KILN_NUM_SIGNED;
  return KILN_NUM_UNSIGNED;
}

/* load_i64 keeps uint64's bit pattern, so the cast back is exact for every unsigned width. */
static inline uint64_t kiln_dtype_load_u64(kiln_dtype dt, const void *data, int64_t i) {
  return (uint64_t)kiln_dtype_load_i64(dt, data, i);
}

/* Infer-time helpers shared by activation / elementwise / logic (defined in ir/ops/elementwise.c). */
/* Input i must be present with a dtype in `mask`; KILN_ERR_SHAPE naming the tensor otherwise. */
kiln_status kiln_ew_require_input(const kiln_graph *g, const kiln_node *n, int i, uint32_t mask,
                                  const kiln_value **out);
/* Broadcast the shapes of inputs [first, first+count) numpy-style into *out; every present input
 * must have the dtype of input `first`. */
kiln_status kiln_ew_broadcast_inputs(const kiln_graph *g, const kiln_node *n, int first, int count,
                                     kiln_shape *out);
/* Opset < 7 binary ops carry broadcast/axis attributes. broadcast=1 with an axis that is not the
 * numpy suffix alignment cannot be expressed by numpy broadcasting: refused as unsupported. */
kiln_status kiln_ew_check_legacy_broadcast(const kiln_graph *g, const kiln_node *n);

/* ---- broadcast walker for kernels ------------------------------------------------------------------ */
#define KILN_BCAST_MAX_OPERANDS 4

/* Walks the elements of an output tensor in row-major order and keeps, for up to
 * KILN_BCAST_MAX_OPERANDS operands broadcast to it, the element offset that feeds the current
 * output element. Broadcast dims get stride 0, so the walk costs a few adds per element.
 *   kiln_bcast_iter it;
 *   KILN_TRY(kiln_bcast_iter_init(&it, &out[0], ops, 2));
 *   for (int64_t i = 0; i < it.count; i++, kiln_bcast_iter_next(&it)) f(a[it.off[0]], b[it.off[1]]);
 */
typedef struct kiln_bcast_iter {
  int32_t rank;
  int32_t n;     /* operands walked */
  int64_t count; /* output elements */
  int64_t dims[KILN_MAX_RANK];
  int64_t idx[KILN_MAX_RANK];
  int64_t strides[KILN_BCAST_MAX_OPERANDS][KILN_MAX_RANK];
  int64_t off[KILN_BCAST_MAX_OPERANDS];
} kiln_bcast_iter;

/* True if t broadcasts numpy-style to out's dims (rank no larger; each dim 1 or equal). */
static inline bool kiln_bcast_compatible(const kiln_tensor *t, const kiln_tensor *out) {
  if (t->rank < 0 || t->rank > out->rank || out->rank > KILN_MAX_RANK) return false;
  int32_t shift = out->rank - t->rank;
  for (int32_t d = 0; d < t->rank; d++)
    if (t->dims[d] != 1 && t->dims[d] != out->dims[d + shift]) return false;
  return true;
}

/* The kernel contract promises consistent shapes, but a kernel must never read out of bounds when
 * handed inconsistent ones, so every operand is checked (and must have data). */
static inline kiln_status kiln_bcast_iter_init(kiln_bcast_iter *it, const kiln_tensor *out,
                                               const kiln_tensor *const *ops, int n) {
  it->rank = 0; /* a well-defined empty walk even on the error paths */
  it->n = 0;
  it->count = 0;
  if (n < 0 || n > KILN_BCAST_MAX_OPERANDS)
    return kiln_error(KILN_ERR_INTERNAL, "broadcast walker takes at most %d operands", KILN_BCAST_MAX_OPERANDS);
  if (out->rank < 0 || out->rank > KILN_MAX_RANK)
    return kiln_error(KILN_ERR_SHAPE, "output rank %d is not supported", out->rank);
  it->rank = out->rank;
  it->n = n;
  it->count = 1;
  for (int32_t d = 0; d < out->rank; d++) {
    if (out->dims[d] < 0) return kiln_error(KILN_ERR_SHAPE, "output has a dynamic dim");
    it->dims[d] = out->dims[d];
    it->idx[d] = 0;
    it->count *= out->dims[d];
  }
  for (int k = 0; k < n; k++) {
    const kiln_tensor *t = ops[k];
    if (!t->data && it->count > 0) return kiln_error(KILN_ERR_INTERNAL, "operand %d has no data", k);
    if (!kiln_bcast_compatible(t, out))
      return kiln_error(KILN_ERR_SHAPE, "operand %d does not broadcast to the output shape", k);
    int32_t shift = out->rank - t->rank;
    int64_t stride = 1;
    for (int32_t d = out->rank - 1; d >= 0; d--) {
      int32_t td = d - shift;
      if (td < 0 || t->dims[td] == 1) {
        it->strides[k][d] = 0;
      } else {
        it->strides[k][d] = stride;
        stride *= t->dims[td];
      }
    }
    it->off[k] = 0;
  }
  return NULL;
}

/* Advance to the next output element (odometer over the dims, innermost fastest). */
static inline void kiln_bcast_iter_next(kiln_bcast_iter *it) {
  for (int32_t d = it->rank - 1; d >= 0; d--) {
    for (int k = 0; k < it->n; k++) it->off[k] += it->strides[k][d];
    if (++it->idx[d] < it->dims[d]) return;
    for (int k = 0; k < it->n; k++) it->off[k] -= it->strides[k][d] * it->dims[d];
    it->idx[d] = 0;
  }
}

/* Offset in t (checked with kiln_bcast_compatible) of the element feeding the iterator's current
 * output element: for variadic ops with more operands than the walker keeps. */
static inline int64_t kiln_bcast_offset(const kiln_bcast_iter *it, const kiln_tensor *t) {
  int32_t shift = it->rank - t->rank;
  int64_t off = 0;
  for (int32_t d = 0; d < t->rank; d++) off = off * t->dims[d] + (t->dims[d] == 1 ? 0 : it->idx[d + shift]);
  return off;
}

#endif
