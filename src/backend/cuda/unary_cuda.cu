// Unary math, comparisons and Where for LINEAR fp32 tensors (see unary_cuda.h).
#include "backend/cuda/unary_cuda.h"
#include "backend/cuda/cuda_common.cuh"

#include <math.h>
#include <string.h>

namespace {

constexpr int TPB = 256;
constexpr unsigned MAX_BLOCKS = 65536u * 4;

unsigned blocks_for(long long n) {
  unsigned b = kiln_cuda_blocks(n, TPB);
  return b > MAX_BLOCKS ? MAX_BLOCKS : b;
}

#define GRID_STRIDE(i, n)                                                                            \
  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < (n);                      \
       i += (long long)gridDim.x * blockDim.x)

// Round half to even, independent of the rounding mode (as the CPU reference).
__device__ __forceinline__ float round_half_even(float x) {
  float r = floorf(x), d = x - r;
  if (d > 0.5f || (d == 0.5f && fmodf(r, 2.f) != 0.f)) r += 1.f;
  return r == 0.f ? copysignf(0.f, x) : r;
}

__device__ __forceinline__ float softplus(float x) { return x > 0.f ? x + log1pf(expf(-x)) : log1pf(expf(x)); }

__device__ __forceinline__ float unary_f(int op, float x, float alpha, float beta) {
  switch (op) {
  case KILN_CUDA_UN_EXP: return expf(x);
  case KILN_CUDA_UN_LOG: return logf(x);
  case KILN_CUDA_UN_SQRT: return sqrtf(x);
  case KILN_CUDA_UN_NEG: return -x;
  case KILN_CUDA_UN_ABS: return fabsf(x);
  case KILN_CUDA_UN_RECIPROCAL: return 1.f / x;
  case KILN_CUDA_UN_ERF: return erff(x);
  case KILN_CUDA_UN_FLOOR: return floorf(x);
  case KILN_CUDA_UN_CEIL: return ceilf(x);
  case KILN_CUDA_UN_ROUND: return round_half_even(x);
  case KILN_CUDA_UN_SIGN: return x > 0.f ? 1.f : x < 0.f ? -1.f : x; // keeps 0 and NaN
  case KILN_CUDA_UN_SIN: return sinf(x);
  case KILN_CUDA_UN_COS: return cosf(x);
  case KILN_CUDA_UN_TAN: return tanf(x);
  case KILN_CUDA_UN_ASIN: return asinf(x);
  case KILN_CUDA_UN_ACOS: return acosf(x);
  case KILN_CUDA_UN_ATAN: return atanf(x);
  case KILN_CUDA_UN_SINH: return sinhf(x);
  case KILN_CUDA_UN_COSH: return coshf(x);
  case KILN_CUDA_UN_ASINH: return asinhf(x);
  case KILN_CUDA_UN_ACOSH: return acoshf(x);
  case KILN_CUDA_UN_ATANH: return atanhf(x);
  case KILN_CUDA_UN_ELU: return x < 0.f ? alpha * expm1f(x) : x;
  case KILN_CUDA_UN_SELU: return x > 0.f ? beta * x : beta * (alpha * expf(x) - alpha);
  case KILN_CUDA_UN_CELU: {
    if (x != x) return x;
    float neg = alpha * expm1f(x / alpha);
    return (x > 0.f ? x : 0.f) + (neg < 0.f ? neg : 0.f);
  }
  case KILN_CUDA_UN_THRESHOLDED_RELU: return x > alpha || x != x ? x : 0.f;
  case KILN_CUDA_UN_SOFTPLUS: return softplus(x);
  case KILN_CUDA_UN_SOFTSIGN: return x / (1.f + fabsf(x));
  case KILN_CUDA_UN_GELU_TANH: return 0.5f * x * (1.f + tanhf(0.7978845608028654f * (x + 0.044715f * x * x * x)));
  case KILN_CUDA_UN_MISH: return x * tanhf(softplus(x));
  case KILN_CUDA_UN_GELU: return 0.5f * x * (1.f + erff(x * 0.70710678118654752f));
  default: return x;
  }
}

__global__ void unary_kernel(int op, float alpha, float beta, long long n, const float *x, float *y) {
  GRID_STRIDE(i, n) y[i] = unary_f(op, x[i], alpha, beta);
}

constexpr int SR = KILN_CUDA_SELECT_MAX_RANK;
struct SelP {
  int rank, op;
  long long dims[SR], cs[SR], as[SR], bs[SR];
  long long total;
};

__global__ void select_kernel(SelP p, const unsigned char *c, const float *a, const float *b, void *y) {
  GRID_STRIDE(i, p.total) {
    long long t = i, co = 0, ao = 0, bo = 0;
    for (int d = p.rank - 1; d >= 0; d--) {
      long long k = t % p.dims[d];
      t /= p.dims[d];
      co += k * p.cs[d], ao += k * p.as[d], bo += k * p.bs[d];
    }
    float va = a[ao], vb = b[bo];
    switch (p.op) {
    case KILN_CUDA_CMP_EQ: ((unsigned char *)y)[i] = va == vb; break;
    case KILN_CUDA_CMP_LT: ((unsigned char *)y)[i] = va < vb; break;
    case KILN_CUDA_CMP_GT: ((unsigned char *)y)[i] = va > vb; break;
    case KILN_CUDA_CMP_LE: ((unsigned char *)y)[i] = va <= vb; break;
    case KILN_CUDA_CMP_GE: ((unsigned char *)y)[i] = va >= vb; break;
    default: ((float *)y)[i] = c[co] ? va : vb; break;
    }
  }
}

// Element strides of an operand broadcast to y's dims (right-aligned; 0 where it stretches).
bool bstrides(int y_rank, const int64_t *y_dims, int r, const int64_t *dims, long long *s) {
  if (r < 0 || r > y_rank || (r && !dims)) return false;
  long long st = 1;
  for (int d = y_rank - 1; d >= 0; d--) {
    int k = d - (y_rank - r);
    long long n = k >= 0 ? dims[k] : 1;
    if (n != 1 && n != y_dims[d]) return false;
    s[d] = n == 1 ? 0 : st;
    st *= n;
  }
  return true;
}

} // namespace

extern "C" kiln_status kiln_cuda_unary(kiln_cuda_unary_op op, float alpha, float beta, int64_t n, const float *x, float *y,
                                       kiln_cuda_stream stream) {
  if ((int)op < 0 || op >= KILN_CUDA_UN_COUNT || n < 0)
    return kiln_error(KILN_ERR_INVALID_ARGUMENT, "cuda unary: bad op %d or size", (int)op);
  if (!n) return NULL;
  unary_kernel<<<blocks_for(n), TPB, 0, (cudaStream_t)stream>>>((int)op, alpha, beta, n, x, y);
  KILN_CUDA_LAUNCH_CHECK();
  return NULL;
}

extern "C" kiln_status kiln_cuda_select(kiln_cuda_select_op op, int y_rank, const int64_t *y_dims, const void *c, int c_rank,
                                        const int64_t *c_dims, const float *a, int a_rank, const int64_t *a_dims,
                                        const float *b, int b_rank, const int64_t *b_dims, void *y,
                                        kiln_cuda_stream stream) {
  if ((int)op < 0 || op >= KILN_CUDA_SELECT_COUNT || y_rank < 0 || y_rank > SR || (y_rank && !y_dims))
    return kiln_error(KILN_ERR_INVALID_ARGUMENT, "cuda select: bad op %d or rank %d", (int)op, y_rank);
  SelP p;
  memset(&p, 0, sizeof p);
  p.rank = y_rank, p.op = (int)op, p.total = 1;
  for (int d = 0; d < y_rank; d++) {
    if (y_dims[d] < 0) return kiln_error(KILN_ERR_INVALID_ARGUMENT, "cuda select: negative dim");
    p.dims[d] = y_dims[d], p.total *= y_dims[d];
  }
  if (!bstrides(y_rank, y_dims, a_rank, a_dims, p.as) || !bstrides(y_rank, y_dims, b_rank, b_dims, p.bs) ||
      (op == KILN_CUDA_WHERE && !bstrides(y_rank, y_dims, c_rank, c_dims, p.cs)))
    return kiln_error(KILN_ERR_INVALID_ARGUMENT, "cuda select: operands do not broadcast to the result");
  if (!p.total) return NULL;
  select_kernel<<<blocks_for(p.total), TPB, 0, (cudaStream_t)stream>>>(p, (const unsigned char *)c, a, b, y);
  KILN_CUDA_LAUNCH_CHECK();
  return NULL;
}
