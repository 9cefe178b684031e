/*
 * Elementwise fp32 kernels: binary ops with numpy broadcasting (up to 8 dims) and an optional fused
 * activation, unary ops / activations (in place or not), SiLU as one pass.
 *
 * Binary: describe the operands once (build time), get a plan with the dims collapsed, run it:
 *   kiln_fast_binary_desc d = {.op = KILN_FAST_MUL, .isa = kiln_cpu_isa(),
 *                              .rank = 4, .dims = {1, 64, 80, 80},
 *                              .a_rank = 4, .a_dims = {1, 64, 80, 80},
 *                              .b_rank = 3, .b_dims = {64, 1, 1}};   // per-channel scale
 *   kiln_fast_binary_plan p;
 *   KILN_TRY(kiln_fast_binary_prepare(&d, &p));
 *   kiln_fast_binary_run(&p, a, b, y, tp);
 * Operand dims align to the output numpy-style (from the right). Each operand (and the output) may be
 * strided along its own outermost dim (`*_outer_stride`, elements; 0 = dense): a channel slice of a
 * bigger NCHW buffer is [N, c, H, W] with outer stride C*H*W. Collapsing merges neighbouring dims that
 * are contiguous for every operand, so same-shape, scalar and per-channel cases become one long row
 * or rows with a scalar operand, run by vector loops. The output may alias an input of its shape.
 *
 * Pow: exponent 2 and 0.5 given as a scalar operand run vectorized (x*x, sqrt); other exponents use
 * libm powf. Max/Min follow the x86 max/min rule for NaN (the second operand wins when unordered).
 */
#ifndef KILN_BACKEND_CPU_FAST_ELTWISE_H
#define KILN_BACKEND_CPU_FAST_ELTWISE_H

#include "backend/cpu/epilogue.h"
#include "backend/cpu/fast_common.h"
#include "core/status.h"

typedef enum kiln_fast_binop {
  KILN_FAST_ADD,
  KILN_FAST_SUB,
  KILN_FAST_MUL,
  KILN_FAST_DIV,
  KILN_FAST_MAX,
  KILN_FAST_MIN,
  KILN_FAST_POW,
} kiln_fast_binop;

typedef struct kiln_fast_binary_desc {
  kiln_fast_binop op;
  kiln_isa isa;
  int32_t rank; /* output */
  int64_t dims[KILN_FAST_MAX_RANK];
  int32_t a_rank, b_rank; /* <= rank; dims aligned from the right */
  int64_t a_dims[KILN_FAST_MAX_RANK], b_dims[KILN_FAST_MAX_RANK];
  int64_t a_outer_stride, b_outer_stride, y_outer_stride; /* elements between items of dim 0; 0 = dense */
  kiln_act act; /* applied to the result */
  float alpha, beta;
} kiln_fast_binary_desc;

typedef struct kiln_fast_binary_plan {
  kiln_fast_binop op;
  kiln_isa isa;
  kiln_act act;
  float alpha, beta;
  int32_t rank; /* collapsed; >= 1 */
  int64_t dims[KILN_FAST_MAX_RANK];
  int64_t sa[KILN_FAST_MAX_RANK], sb[KILN_FAST_MAX_RANK], sy[KILN_FAST_MAX_RANK]; /* element strides */
  int64_t rows, row_len, chunk, units; /* work split */
} kiln_fast_binary_plan;

/* Validates the shapes (numpy broadcast) and collapses them. No allocation. */
kiln_status kiln_fast_binary_prepare(const kiln_fast_binary_desc *d, kiln_fast_binary_plan *p);
void kiln_fast_binary_run(const kiln_fast_binary_plan *p, const float *a, const float *b, float *y,
                          kiln_threadpool *tp);

/* Unary: every kiln_act (KILN_FAST_UN_ACT with .act) plus the math functions below. */
typedef enum kiln_fast_unop {
  KILN_FAST_UN_ACT = 0, /* kiln_act `act` with alpha/beta (SiLU = x * sigmoid(x) in one pass) */
  KILN_FAST_UN_SQRT,
  KILN_FAST_UN_EXP,
  KILN_FAST_UN_NEG,
  KILN_FAST_UN_ABS,
  KILN_FAST_UN_RECIPROCAL,
  KILN_FAST_UN_ERF,
} kiln_fast_unop;

/* y[o*y_stride + i] = f(x[o*x_stride + i]) for o < outer, i < inner (strides 0 = inner: dense).
 * x == y (in place) is fine. */
typedef struct kiln_fast_unary_desc {
  kiln_fast_unop op;
  kiln_act act;
  float alpha, beta;
  int64_t outer, inner;
  int64_t x_stride, y_stride;
  kiln_isa isa;
} kiln_fast_unary_desc;

void kiln_fast_unary_run(const kiln_fast_unary_desc *d, const float *x, float *y, kiln_threadpool *tp);

/* y = x * sigmoid(x) over n dense elements (YOLO's activation when not fused into a conv). */
void kiln_fast_silu_run(int64_t n, const float *x, float *y, kiln_isa isa, kiln_threadpool *tp);

#endif
