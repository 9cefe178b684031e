/*
 * Elementwise math the activations of eltwise_cuda.h do not cover (ONNX Exp, Log, Erf, Round, trig,
 * Elu/Selu/Softplus, Gelu, ...) and the boolean pair: comparisons (a op b -> bool, 1 byte) and Where,
 * with numpy broadcasting. fp32 only (the LINEAR tensors of CUDA engines are fp32); math in fp32 with the
 * accurate libdevice functions (no fast intrinsics), matching the CPU reference within fp32 rounding.
 * Asynchronous on the given stream, no allocation, no sync; errors only for bad arguments or launches.
 */
#ifndef KILN_BACKEND_CUDA_UNARY_CUDA_H
#define KILN_BACKEND_CUDA_UNARY_CUDA_H

#include "backend/cuda/cuda_types.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum kiln_cuda_unary_op {
  KILN_CUDA_UN_EXP = 0, KILN_CUDA_UN_LOG, KILN_CUDA_UN_SQRT, KILN_CUDA_UN_NEG, KILN_CUDA_UN_ABS,
  KILN_CUDA_UN_RECIPROCAL, KILN_CUDA_UN_ERF, KILN_CUDA_UN_FLOOR, KILN_CUDA_UN_CEIL, KILN_CUDA_UN_ROUND,
  KILN_CUDA_UN_SIGN, KILN_CUDA_UN_SIN, KILN_CUDA_UN_COS, KILN_CUDA_UN_TAN, KILN_CUDA_UN_ASIN, KILN_CUDA_UN_ACOS,
  KILN_CUDA_UN_ATAN, KILN_CUDA_UN_SINH, KILN_CUDA_UN_COSH, KILN_CUDA_UN_ASINH, KILN_CUDA_UN_ACOSH,
  KILN_CUDA_UN_ATANH,
  KILN_CUDA_UN_ELU,         /* x < 0 ? alpha * expm1(x) : x */
  KILN_CUDA_UN_SELU,        /* beta (gamma) * (x > 0 ? x : alpha * (exp(x) - 1)) */
  KILN_CUDA_UN_CELU,        /* max(0, x) + min(0, alpha * expm1(x / alpha)) */
  KILN_CUDA_UN_THRESHOLDED_RELU, /* x > alpha ? x : 0 */
  KILN_CUDA_UN_SOFTPLUS,    /* log(1 + exp(x)), stable */
  KILN_CUDA_UN_SOFTSIGN,    /* x / (1 + |x|) */
  KILN_CUDA_UN_GELU_TANH,   /* 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) */
  KILN_CUDA_UN_MISH,        /* x * tanh(softplus(x)) */
  KILN_CUDA_UN_GELU,        /* 0.5 x (1 + erf(x / sqrt 2)) */
  KILN_CUDA_UN_COUNT
} kiln_cuda_unary_op;

/* y[i] = f(x[i]) for n fp32 elements; y may equal x. */
kiln_status kiln_cuda_unary(kiln_cuda_unary_op op, float alpha, float beta, int64_t n, const float *x, float *y,
                            kiln_cuda_stream stream);

#define KILN_CUDA_SELECT_MAX_RANK 6
typedef enum kiln_cuda_select_op {
  KILN_CUDA_CMP_EQ = 0, KILN_CUDA_CMP_LT, KILN_CUDA_CMP_GT, KILN_CUDA_CMP_LE, KILN_CUDA_CMP_GE,
  KILN_CUDA_WHERE, /* y = cond ? a : b (cond bool, a/b/y fp32) */
  KILN_CUDA_SELECT_COUNT
} kiln_cuda_select_op;

/* Comparisons: operands a, b fp32 (y bool, 1 byte). Where: c (bool), a, b fp32, y fp32. Every operand has
 * its own dims (rank <= 6, right-aligned numpy broadcasting to y_dims; the caller checks that they
 * broadcast); c is unused (NULL) for comparisons. */
kiln_status kiln_cuda_select(kiln_cuda_select_op op, int y_rank, const int64_t *y_dims, const void *c, int c_rank,
                             const int64_t *c_dims, const float *a, int a_rank, const int64_t *a_dims, const float *b,
                             int b_rank, const int64_t *b_dims, void *y, kiln_cuda_stream stream);

#ifdef __cplusplus
}
#endif
#endif
