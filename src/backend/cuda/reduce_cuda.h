/*
 * Reductions of the CUDA backend (ONNX Reduce* and ArgMax/ArgMin). The reduced axes must be adjacent:
 * x is viewed as [outer][len][inner] (len = product of the reduced dims, inner = product of the dims
 * after them) and y as [outer][inner]; keepdims only changes y's shape, not its bytes. Reductions over
 * axes that are not adjacent take a Transpose first (or, for Sum/Max/Min/Prod, two passes).
 *
 * inner == 1 (reduced dims innermost, the common case: ReduceMean over H*W in NCHW, LayerNorm-like
 * rows): a warp per row with shuffle reductions, or a whole block per row (warp shuffles, then the
 * warp results through shared memory) when rows are long. inner > 1: each thread owns one column and
 * loops across len, neighbouring threads reading neighbouring elements (coalesced); a block also splits
 * len over 8 thread rows and combines them in shared memory so a small outer*inner still fills the GPU.
 *
 * fp32 or fp16 x and y (same type), math and accumulation in fp32. Empty reductions (len 0) give the
 * identity: Sum/L1/L2/SumSquare 0, Prod 1, Max -inf, Min +inf, Mean NaN, LogSum/LogSumExp -inf.
 * Asynchronous on the given stream, no allocation, no sync; errors only for bad arguments or launches.
 */
#ifndef KILN_BACKEND_CUDA_REDUCE_CUDA_H
#define KILN_BACKEND_CUDA_REDUCE_CUDA_H

#include "backend/cuda/cuda_types.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum kiln_cuda_reduce_op {
  KILN_CUDA_REDUCE_SUM = 0,
  KILN_CUDA_REDUCE_MEAN,
  KILN_CUDA_REDUCE_MAX,
  KILN_CUDA_REDUCE_MIN,
  KILN_CUDA_REDUCE_PROD,
  KILN_CUDA_REDUCE_L1,
  KILN_CUDA_REDUCE_L2,
  KILN_CUDA_REDUCE_SUM_SQUARE,
  KILN_CUDA_REDUCE_LOG_SUM,
  KILN_CUDA_REDUCE_LOG_SUM_EXP, /* max-shifted: log(sum(exp(x - max))) + max, no overflow */
} kiln_cuda_reduce_op;

/* y[o][i] = reduce over j of x[o][j][i]. y must not alias x. */
kiln_status kiln_cuda_reduce(kiln_cuda_reduce_op op, kiln_cuda_dtype dt, int64_t outer, int64_t len,
                             int64_t inner, const void *x, void *y, kiln_cuda_stream stream);

/* ArgMax (is_min 0) / ArgMin (is_min 1) over the middle dim: y[o][i] (int64) = the j of the largest
 * (smallest) x[o][j][i]; ties go to the first j, or to the last with select_last 1 (ONNX
 * select_last_index). With NaN in x the result is unspecified (ONNX does not define it). len >= 1. */
kiln_status kiln_cuda_argreduce(int is_min, int select_last, kiln_cuda_dtype dt, int64_t outer, int64_t len,
                                int64_t inner, const void *x, int64_t *y, kiln_cuda_stream stream);

#ifdef __cplusplus
}
#endif
#endif
