// Batched GEMM: exact fp32 FMA tiles and fp16 tensor-core tiles (see gemm_cuda.h).
#include "backend/cuda/gemm_cuda.h"
#include "backend/cuda/cuda_common.cuh"

namespace {

// Everything a kernel needs, by value (kernel parameter space), with the transposes folded into
// element strides: A(m, k) = a[m*sam + k*sak], B(k, n) = b[k*sbk + n*sbn].
struct GemmP {
  int M, N, K;
  long long sam, sak, sbk, sbn, ldy, csm, csn, ybs;
  int brank;
  long long bdims[KILN_CUDA_GEMM_MAX_BATCH_RANK];
  long long abs_[KILN_CUDA_GEMM_MAX_BATCH_RANK], bbs[KILN_CUDA_GEMM_MAX_BATCH_RANK],
      cbs[KILN_CUDA_GEMM_MAX_BATCH_RANK];
  long long batch;
  float alpha, beta;
  int c_half; // C's element type, read through a runtime branch so C does not multiply the templates
};

// Offsets of batch item bz in A, B and C: the flattened index decomposed over the batch dims (last
// fastest, as numpy), each operand weighted by its own strides (0 where it broadcasts).
__device__ __forceinline__ void batch_offsets(const GemmP &p, long long bz, long long &oa, long long &ob,
                                              long long &oc) {
  oa = ob = oc = 0;
  for (int d = p.brank - 1; d >= 0; d--) {
    long long i = bz % p.bdims[d];
    bz /= p.bdims[d];
    oa += i * p.abs_[d], ob += i * p.bbs[d], oc += i * p.cbs[d];
  }
}

template <typename TO>
__device__ __forceinline__ void store_out(const GemmP &p, const void *c, long long oc, TO *y, int m, int n,
                                          float acc) {
  float v = p.alpha * acc;
  if (c) {
    long long ci = oc + m * p.csm + n * p.csn;
    float cv = p.c_half ? __half2float(((const __half *)c)[ci]) : ((const float *)c)[ci];
    v += p.beta * cv;
  }
  kiln_st(y + (long long)m * p.ldy + n, v);
}

// ---- exact fp32: 64x64 block tile, K step 16, 256 threads with 4x4 outputs each ----------------------
constexpr int FBM = 64, FBN = 64, FBK = 16;

template <typename TO>
__global__ void __launch_bounds__(256) gemm_fma_kernel(GemmP p, const float *a, const float *b, const void *c,
                                                       TO *y) {
  // +1 column: the k-fastest fill (A row-major, B transposed) would otherwise hit one bank 16 times.
  __shared__ float As[FBK][FBM + 1];
  __shared__ float Bs[FBK][FBN + 1];
  const int tid = threadIdx.x, tx = tid & 15, ty = tid >> 4;
  const int m0 = blockIdx.y * FBM, n0 = blockIdx.x * FBN;
  for (long long bz = blockIdx.z; bz < p.batch; bz += gridDim.z) {
    long long oa, ob, oc;
    batch_offsets(p, bz, oa, ob, oc);
    const float *ab = a + oa, *bb = b + ob;
    float acc[4][4] = {};
    for (int k0 = 0; k0 < p.K; k0 += FBK) {
      // Fill order follows the operand's contiguous dim, so a warp's global loads coalesce.
#pragma unroll
      for (int r = 0; r < 4; r++) {
        int idx = tid + r * 256, mm, kk;
        if (p.sak == 1) mm = idx >> 4, kk = idx & 15;
        else kk = idx >> 6, mm = idx & 63;
        int gm = m0 + mm, gk = k0 + kk;
        As[kk][mm] = (gm < p.M && gk < p.K) ? ab[gm * p.sam + gk * p.sak] : 0.f;
        int nn;
        if (p.sbn == 1) kk = idx >> 6, nn = idx & 63;
        else nn = idx >> 4, kk = idx & 15;
        int gn = n0 + nn;
        gk = k0 + kk;
        Bs[kk][nn] = (gn < p.N && gk < p.K) ? bb[gk * p.sbk + gn * p.sbn] : 0.f;
      }
      __syncthreads();
#pragma unroll
      for (int kk = 0; kk < FBK; kk++) {
        float av[4], bv[4];
#pragma unroll
        for (int i = 0; i < 4; i++) av[i] = As[kk][ty + 16 * i], bv[i] = Bs[kk][tx + 16 * i];
#pragma unroll
        for (int i = 0; i < 4; i++)
#pragma unroll
          for (int j = 0; j < 4; j++) acc[i][j] = fmaf(av[i], bv[j], acc[i][j]);
      }
      __syncthreads();
    }
    TO *yb = y + bz * p.ybs;
#pragma unroll
    for (int i = 0; i < 4; i++) {
      int m = m0 + ty + 16 * i;
      if (m >= p.M) continue;
#pragma unroll
      for (int j = 0; j < 4; j++) {
        int n = n0 + tx + 16 * j;
        if (n < p.N) store_out(p, c, oc, yb, m, n, acc[i][j]);
      }
    }
  }
}

// ---- fp16 tensor cores: 64x64 block tile, K step 32, 4 warps in 2x2, 32x32 per warp ----------------
// mma.sync.m16n8k16 (row.col): A fragments are read from As[m][k], B fragments from Bs[n][k], both
// k-contiguous so each register is one 32-bit shared load. Rows are padded to 40 halves (80 bytes):
// the 8 row groups of a fragment load then fall on distinct banks.
constexpr int HBM = 64, HBN = 64, HBK = 32, HPAD = HBK + 8;

__device__ __forceinline__ void mma16816(float *d, const uint32_t *a, const uint32_t *b) {
  asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
               "{%0,%1,%2,%3};\n"
               : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
               : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}

template <typename TO>
__global__ void __launch_bounds__(128) gemm_mma_kernel(GemmP p, const __half *a, const __half *b, const void *c,
                                                       TO *y) {
  __shared__ __align__(16) __half As[HBM][HPAD];
  __shared__ __align__(16) __half Bs[HBN][HPAD];
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int wm = warp >> 1, wn = warp & 1, g = lane >> 2, t = lane & 3;
  const int m0 = blockIdx.y * HBM, n0 = blockIdx.x * HBN;
  const __half zero = __float2half(0.f);
  for (long long bz = blockIdx.z; bz < p.batch; bz += gridDim.z) {
    long long oa, ob, oc;
    batch_offsets(p, bz, oa, ob, oc);
    const __half *ab = a + oa, *bb = b + ob;
    float acc[2][4][4] = {};
    for (int k0 = 0; k0 < p.K; k0 += HBK) {
#pragma unroll 4
      for (int r = 0; r < (HBM * HBK) / 128; r++) {
        int idx = tid + r * 128, mm, kk;
        if (p.sak == 1) mm = idx >> 5, kk = idx & 31;
        else kk = idx >> 6, mm = idx & 63;
        int gm = m0 + mm, gk = k0 + kk;
        As[mm][kk] = (gm < p.M && gk < p.K) ? ab[gm * p.sam + gk * p.sak] : zero;
        int nn;
        if (p.sbn == 1) kk = idx >> 6, nn = idx & 63;
        else nn = idx >> 5, kk = idx & 31;
        int gn = n0 + nn;
        gk = k0 + kk;
        Bs[nn][kk] = (gn < p.N && gk < p.K) ? bb[gk * p.sbk + gn * p.sbn] : zero;
      }
      __syncthreads();
#pragma unroll
      for (int ks = 0; ks < HBK; ks += 16) {
        uint32_t af[2][4], bf[4][2];
#pragma unroll
        for (int mi = 0; mi < 2; mi++) {
          int r = wm * 32 + mi * 16 + g;
          af[mi][0] = *(const uint32_t *)&As[r][ks + 2 * t];
          af[mi][1] = *(const uint32_t *)&As[r + 8][ks + 2 * t];
          af[mi][2] = *(const uint32_t *)&As[r][ks + 2 * t + 8];
          af[mi][3] = *(const uint32_t *)&As[r + 8][ks + 2 * t + 8];
        }
#pragma unroll
        for (int ni = 0; ni < 4; ni++) {
          int n = wn * 32 + ni * 8 + g;
          bf[ni][0] = *(const uint32_t *)&Bs[n][ks + 2 * t];
          bf[ni][1] = *(const uint32_t *)&Bs[n][ks + 2 * t + 8];
        }
#pragma unroll
        for (int mi = 0; mi < 2; mi++)
#pragma unroll
          for (int ni = 0; ni < 4; ni++) mma16816(acc[mi][ni], af[mi], bf[ni]);
      }
      __syncthreads();
    }
    // Accumulator layout: c0, c1 at (row g, cols 2t, 2t+1), c2, c3 at row g + 8.
    TO *yb = y + bz * p.ybs;
#pragma unroll
    for (int mi = 0; mi < 2; mi++)
#pragma unroll
      for (int ni = 0; ni < 4; ni++)
#pragma unroll
        for (int e = 0; e < 4; e++) {
          int m = m0 + wm * 32 + mi * 16 + g + (e >> 1) * 8, n = n0 + wn * 32 + ni * 8 + 2 * t + (e & 1);
          if (m < p.M && n < p.N) store_out(p, c, oc, yb, m, n, acc[mi][ni][e]);
        }
  }
}

bool is_float(kiln_cuda_dtype t) { return t == KILN_CUDA_F32 || t == KILN_CUDA_F16; }

} // namespace

extern "C" kiln_status kiln_cuda_gemm_validate(const kiln_cuda_gemm_desc *d) {
  if (!d) return kiln_error(KILN_ERR_INVALID_ARGUMENT, "cuda gemm: no descriptor");
  if (d->m < 0 || d->n < 0 || d->k < 0 || d->m > 0x7fffffff || d->n > 0x7fffffff || d->k > 0x7fffffff)
    return kiln_error(KILN_ERR_INVALID_ARGUMENT, "cuda gemm: bad M/N/K %lld/%lld/%lld", (long long)d->m,
                      (long long)d->n, (long long)d->k);
  if (!is_float(d->compute) || !is_float(d->out_dtype) || !is_float(d->c_dtype))
    return kiln_error(KILN_ERR_INVALID_ARGUMENT, "cuda gemm: dtypes must be fp32 or fp16");
  int64_t a_cols = d->trans_a ? d->m : d->k, b_cols = d->trans_b ? d->k : d->n;
  if ((d->lda && d->lda < a_cols) || (d->ldb && d->ldb < b_cols) || (d->ldy && d->ldy < d->n) || d->lda < 0 ||
      d->ldb < 0 || d->ldy < 0)
    return kiln_error(KILN_ERR_INVALID_ARGUMENT, "cuda gemm: leading dimension smaller than the row");
  if (d->batch_rank < 0 || d->batch_rank > KILN_CUDA_GEMM_MAX_BATCH_RANK)
    return kiln_error(KILN_ERR_INVALID_ARGUMENT, "cuda gemm: batch rank %d (max %d)", d->batch_rank,
                      KILN_CUDA_GEMM_MAX_BATCH_RANK);
  for (int i = 0; i < d->batch_rank; i++)
    if (d->batch_dims[i] < 0)
      return kiln_error(KILN_ERR_INVALID_ARGUMENT, "cuda gemm: negative batch dim");
  if (d->y_batch_stride < 0) return kiln_error(KILN_ERR_INVALID_ARGUMENT, "cuda gemm: negative y batch stride");
  return NULL;
}

extern "C" const char *kiln_cuda_gemm_kernel_name(const kiln_cuda_gemm_desc *d) {
  return d && d->compute == KILN_CUDA_F16 ? "gemm_mma.f16" : "gemm_fma.f32";
}

extern "C" kiln_status kiln_cuda_gemm(const kiln_cuda_gemm_desc *d, const void *a, const void *b, const void *c,
                                      void *y, kiln_cuda_stream stream) {
  kiln_status st = kiln_cuda_gemm_validate(d);
  if (st) return st;
  GemmP p;
  p.M = (int)d->m, p.N = (int)d->n, p.K = (int)d->k;
  long long lda = d->lda ? d->lda : (d->trans_a ? d->m : d->k);
  long long ldb = d->ldb ? d->ldb : (d->trans_b ? d->k : d->n);
  p.sam = d->trans_a ? 1 : lda, p.sak = d->trans_a ? lda : 1;
  p.sbk = d->trans_b ? 1 : ldb, p.sbn = d->trans_b ? ldb : 1;
  // A 1-wide operand has both strides usable as "contiguous"; prefer the fill order that coalesces.
  if (p.K == 1) p.sak = 1;
  if (p.N == 1) p.sbn = 1;
  p.ldy = d->ldy ? d->ldy : d->n;
  p.ybs = d->y_batch_stride ? d->y_batch_stride : (long long)d->m * p.ldy;
  p.alpha = d->alpha, p.beta = d->beta;
  p.csm = d->c_stride_m, p.csn = d->c_stride_n, p.c_half = d->c_dtype == KILN_CUDA_F16;
  if (d->beta == 0.f) c = NULL; // ONNX: beta 0 means C does not contribute (even NaN or Inf in it)
  p.brank = d->batch_rank, p.batch = 1;
  for (int i = 0; i < KILN_CUDA_GEMM_MAX_BATCH_RANK; i++) {
    bool in = i < d->batch_rank;
    p.bdims[i] = in ? d->batch_dims[i] : 1;
    p.abs_[i] = in ? d->a_batch_stride[i] : 0, p.bbs[i] = in ? d->b_batch_stride[i] : 0;
    p.cbs[i] = in ? d->c_batch_stride[i] : 0;
    if (in) p.batch *= d->batch_dims[i];
  }
  if (!p.M || !p.N || !p.batch) return NULL;
  if (!a || !b || !y) return kiln_error(KILN_ERR_INVALID_ARGUMENT, "cuda gemm: null pointer");
  // K == 0 still writes y = beta * C (the tiles see only zeros).
  cudaStream_t s = (cudaStream_t)stream;
  unsigned gz = (unsigned)(p.batch < 65535 ? p.batch : 65535); // the kernels loop over the rest
  if (d->compute == KILN_CUDA_F32) {
    dim3 grid((unsigned)((p.N + FBN - 1) / FBN), (unsigned)((p.M + FBM - 1) / FBM), gz);
    if (grid.y > 65535) return kiln_error(KILN_ERR_INVALID_ARGUMENT, "cuda gemm: M too large");
    if (d->out_dtype == KILN_CUDA_F32)
      gemm_fma_kernel<float><<<grid, 256, 0, s>>>(p, (const float *)a, (const float *)b, c, (float *)y);
    else
      gemm_fma_kernel<__half><<<grid, 256, 0, s>>>(p, (const float *)a, (const float *)b, c, (__half *)y);
  } else {
    dim3 grid((unsigned)((p.N + HBN - 1) / HBN), (unsigned)((p.M + HBM - 1) / HBM), gz);
    if (grid.y > 65535) return kiln_error(KILN_ERR_INVALID_ARGUMENT, "cuda gemm: M too large");
    if (d->out_dtype == KILN_CUDA_F32)
      gemm_mma_kernel<float><<<grid, 128, 0, s>>>(p, (const __half *)a, (const __half *)b, c, (float *)y);
    else
      gemm_mma_kernel<__half><<<grid, 128, 0, s>>>(p, (const __half *)a, (const __half *)b, c, (__half *)y);
  }
  KILN_CUDA_LAUNCH_CHECK();
  return NULL;
}
