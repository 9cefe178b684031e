// Elementwise and data-movement kernels (see eltwise_cuda.h).
#include "backend/cuda/eltwise_cuda.h"
#include "backend/cuda/cuda_common.cuh"
#include "backend/cuda/transpose_plan.h"

#include <math.h>
#include <string.h>

namespace {

constexpr int TPB = 256;
constexpr unsigned MAX_BLOCKS = 65536u * 4; // grid-stride loops cover larger tensors

unsigned blocks_for(long long n) {
  unsigned b = kiln_cuda_blocks(n, TPB);
  return b > MAX_BLOCKS ? MAX_BLOCKS : b;
}

#define GRID_STRIDE(i, n)                                                                            \
  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < (n);                      \
       i += (long long)gridDim.x * blockDim.x)

// Output-ordered (channel fastest) so the NHWC stores coalesce; the NCHW reads are strided by hw.
// Boundary-only, so a tiled shared-memory transpose is not worth its code yet.
// cw channels are written per pixel: c of them from x, then zeros (padding channels, see _padded).
template <typename InT, typename OutT>
__global__ void nchw_to_nhwc_kernel(const InT *x, OutT *y, long long n, int c, int cw, long long hw, long long yps) {
  GRID_STRIDE(i, n * hw * cw) {
    int ch = (int)(i % cw);
    long long t = i / cw, p = t % hw, b = t / hw;
    kiln_st(y + (b * hw + p) * yps + ch, ch < c ? kiln_ld(x + (b * c + ch) * hw + p) : 0.f);
  }
}

struct Bcast {
  int rank;
  long long dims[KILN_CUDA_MAX_RANK], as[KILN_CUDA_MAX_RANK], bs[KILN_CUDA_MAX_RANK];
  long long y_len, y_rs; // y: rows of y_len elements, y_rs apart (y_rs 0: dense)
};

__device__ __forceinline__ float binop(int op, float a, float b) {
  switch (op) {
  case KILN_CUDA_ADD: return a + b;
  case KILN_CUDA_SUB: return a - b;
  case KILN_CUDA_MUL: return a * b;
  case KILN_CUDA_DIV: return a / b;
  case KILN_CUDA_MAX: return fmaxf(a, b);
  case KILN_CUDA_MIN: return fminf(a, b);
  default: return powf(a, b);
  }
}

// fp16 NHWC output in 16-byte chunks of 8 channels, one chunk per thread with pixels fastest, so both
// the NCHW reads (one plane per channel) and the NHWC stores coalesce. Channels >= c are written as 0.
template <typename InT>
__global__ void nchw_to_nhwc_h8_kernel(const InT *x, __half *y, long long n, int c, int chunks, long long hw,
                                       long long yps) {
  GRID_STRIDE(i, n * hw * chunks) {
    long long p = i % hw, t = i / hw;
    int k = (int)(t % chunks);
    long long b = t / chunks;
    union {
      uint4 u;
      __half h[8];
    } v;
#pragma unroll
    for (int j = 0; j < 8; j++) {
      int ch = k * 8 + j;
      v.h[j] = __float2half_rn(ch < c ? kiln_ld(x + (b * c + ch) * hw + p) : 0.f);
    }
    *(uint4 *)(y + (b * hw + p) * yps + k * 8) = v.u;
  }
}

// NHWC -> NCHW through a 32x32 shared-memory tile (pixels x channels): reads coalesce along channels,
// writes along pixels. blockIdx: x = pixel tile, y = channel tile, z = image. The general path (any pixel
// stride, channel count or alignment); nhwc_to_nchw_maps_kernel below is the fast one.
template <typename InT, typename OutT>
__global__ void nhwc_to_nchw_tiled_kernel(const InT *x, long long xps, OutT *y, int c, long long hw,
                                          long long ypitch, long long yimg, kiln_epilogue act) {
  __shared__ float tile[32][33];
  const long long b = blockIdx.z, p0 = (long long)blockIdx.x * 32;
  const int c0 = blockIdx.y * 32;
  for (int j = threadIdx.y; j < 32; j += 8) {
    long long p = p0 + j;
    int ch = c0 + threadIdx.x;
    if (p < hw && ch < c) tile[j][threadIdx.x] = kiln_ld(x + (b * hw + p) * xps + ch);
  }
  __syncthreads();
  for (int j = threadIdx.y; j < 32; j += 8) {
    int ch = c0 + j;
    long long p = p0 + threadIdx.x;
    if (p < hw && ch < c) kiln_st(y + b * yimg + ch * ypitch + p, kiln_cuda_act(tile[threadIdx.x][j], act.act, act.alpha, act.beta));
  }
}

// One element per thread over (pixel, channel) of a channel-strided NHWC tensor: y = act(a [op b]).
template <typename T>
__global__ void eltwise_nhwc_kernel(int op, int act, float alpha, float beta, long long pixels, int c, const T *a,
                                    long long aps, const T *b, long long bps, T *y, long long yps) {
  GRID_STRIDE(i, pixels * c) {
    long long p = i / c;
    int ch = (int)(i % c);
    float v = kiln_ld(a + p * aps + ch);
    if (op >= 0) v = binop(op, v, kiln_ld(b + p * bps + ch));
    kiln_st(y + p * yps + ch, kiln_cuda_act(v, act, alpha, beta));
  }
}

// y row (b, ch) starts at b*yimg + ch*ypitch: dense when ypitch == hw and yimg == c*hw, else a slice of a
// wider LINEAR tensor along its last axis (the YOLO head's spatial Concat, written in place) and/or along
// the channels (that Concat's output as a member of the output Concat at batch > 1).
template <typename InT, typename OutT>
__global__ void nhwc_to_nchw_kernel(const InT *x, long long xps, OutT *y, long long n, int c, long long hw,
                                    long long ypitch, long long yimg, kiln_epilogue act) {
  GRID_STRIDE(i, n * hw * c) {
    long long p = i % hw, t = i / hw;
    int ch = (int)(t % c);
    long long b = t / c;
    kiln_st(y + b * yimg + ch * ypitch + p, kiln_cuda_act(kiln_ld(x + (b * hw + p) * xps + ch), act.act, act.alpha, act.beta));
  }
}

// ---- NHWC maps -> LINEAR rows, the fast path ---------------------------------------------------------
// A block converts NT_TP pixels x up to NT_CT channels of one image of one map: 16-byte loads of the NHWC
// input into a shared fp32 tile [channel][pixel], then 4 consecutive pixels of one channel per thread out
// (a 16-byte fp32 store, or 8 bytes of fp16), so a channel's 64 pixels are 256 contiguous bytes. The old
// kernel (32x32 tile, one 2-byte load and one 4-byte store per element) ran the YOLO head's Concats at
// ~1.5 TB/s on an H100; this is a plain memory stream.
// Load lanes: the two 16-byte chunks of one 32-byte sector of a pixel x 16 pixels per warp, so a load
// instruction uses whole sectors. Shared stores: a tile row is NT_RS = NT_TP + 4 floats (4 banks apart),
// so lanes of consecutive pixels hit consecutive banks; the odd chunk's rows are 16 banks off the even
// chunk's (fp32 chunks are 4 rows apart; fp16 chunks 8 rows apart, 0 banks, so the odd fp16 chunk writes
// its channels rotated by 4): a warp's 32 stores hit 32 distinct banks. The float4 tile reads of the
// store loop are 128 contiguous bytes per quarter warp.
constexpr int NT_TP = 64, NT_CT = 128, NT_THREADS = 256, NT_MAPS = 8, NT_RS = NT_TP + 4;

struct NhwcMaps {
  const void *x[NT_MAPS];
  long long hw[NT_MAPS], xps[NT_MAPS], yoff[NT_MAPS];
  unsigned tile0[NT_MAPS + 1]; // the map's first pixel tile (blockIdx.x); tile0[n] = all tiles
  int vec[NT_MAPS];            // the map's output rows are aligned for 4-element stores
  int n;
};

__device__ __forceinline__ void unpack16(uint4 v, float *f, const float *) {
  f[0] = __uint_as_float(v.x), f[1] = __uint_as_float(v.y), f[2] = __uint_as_float(v.z), f[3] = __uint_as_float(v.w);
}
__device__ __forceinline__ void unpack16(uint4 v, float *f, const __half *) {
  const unsigned w[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
  for (int j = 0; j < 4; j++) {
    __half2 h = *(const __half2 *)&w[j];
    float2 t = __half22float2(h);
    f[2 * j] = t.x, f[2 * j + 1] = t.y;
  }
}

__device__ __forceinline__ void store4(float *p, float4 v) { *(float4 *)p = v; }
__device__ __forceinline__ void store4(__half *p, float4 v) {
  __half2 a = __floats2half2_rn(v.x, v.y), b = __floats2half2_rn(v.z, v.w);
  uint2 u;
  u.x = *(const unsigned *)&a, u.y = *(const unsigned *)&b;
  *(uint2 *)p = u;
}

// blockIdx: x = pixel tile over all maps, y = channel tile, z = image (looping past 65535).
// Preconditions (host): c, every pixel stride a multiple of the chunk (16 bytes of InT), inputs 16-byte aligned.
template <typename InT, typename OutT>
__global__ void __launch_bounds__(NT_THREADS) nhwc_to_nchw_maps_kernel(NhwcMaps m, OutT *y, long long n, int c,
                                                                       long long ypitch, long long yimg, int act,
                                                                       float alpha, float beta) {
  extern __shared__ float tile[]; // [channel][NT_RS]
  constexpr int CH = 16 / (int)sizeof(InT);
  const unsigned t = blockIdx.x;
  int k = 0;
  while (k + 1 < m.n && t >= m.tile0[k + 1]) k++;
  const long long hw = m.hw[k], xps = m.xps[k], p0 = (long long)(t - m.tile0[k]) * NT_TP;
  const int c0 = blockIdx.y * NT_CT, ct = min(NT_CT, c - c0), chunks = ct / CH, items = (chunks + 1) / 2 * 2 * NT_TP;
  const int np = (int)min((long long)NT_TP, hw - p0);
  for (long long b = blockIdx.z; b < n; b += gridDim.z) {
    const InT *xb = (const InT *)m.x[k] + (b * hw + p0) * xps + c0;
    // item i: pixel (i / 2) % NT_TP, chunk 2 * (i / (2 * NT_TP)) + i % 2; up to 4 loads in flight per thread
    for (int i0 = threadIdx.x; i0 < items; i0 += NT_THREADS * 4) {
      uint4 v[4];
#pragma unroll
      for (int u = 0; u < 4; u++) {
        const int i = i0 + u * NT_THREADS, p = (i >> 1) % NT_TP, q = i / (2 * NT_TP) * 2 + (i & 1);
        if (i < items && p < np && q < chunks) v[u] = __ldg((const uint4 *)(xb + p * xps + q * CH));
      }
#pragma unroll
      for (int u = 0; u < 4; u++) {
        const int i = i0 + u * NT_THREADS, p = (i >> 1) % NT_TP, q = i / (2 * NT_TP) * 2 + (i & 1);
        if (i < items && p < np && q < chunks) {
          float f[CH];
          unpack16(v[u], f, (const InT *)nullptr);
          float *dst = tile + q * CH * NT_RS + p;
          const bool rot = CH == 8 && (q & 1);
#pragma unroll
          for (int j = 0; j < CH; j++) {
            const int jr = (j + 4) & 7; // compile-time indices only: f stays in registers
            if (rot) dst[jr * NT_RS] = f[jr & (CH - 1)];
            else dst[j * NT_RS] = f[j];
          }
        }
      }
    }
    __syncthreads();
    OutT *yb = y + b * yimg + (long long)c0 * ypitch + m.yoff[k] + p0;
    const bool vec = m.vec[k];
    for (int i = threadIdx.x; i < ct * (NT_TP / 4); i += NT_THREADS) {
      const int r = i / (NT_TP / 4), p = i % (NT_TP / 4) * 4;
      if (p >= np) continue;
      float4 f = *(const float4 *)(tile + r * NT_RS + p);
      f.x = kiln_cuda_act(f.x, act, alpha, beta), f.y = kiln_cuda_act(f.y, act, alpha, beta);
      f.z = kiln_cuda_act(f.z, act, alpha, beta), f.w = kiln_cuda_act(f.w, act, alpha, beta);
      OutT *dst = yb + r * ypitch + p;
      if (vec && p + 4 <= np) {
        store4(dst, f);
      } else { // a map's last pixels, or rows not aligned for vector stores
        kiln_st(dst, f.x);
        if (p + 1 < np) kiln_st(dst + 1, f.y);
        if (p + 2 < np) kiln_st(dst + 2, f.z);
        if (p + 3 < np) kiln_st(dst + 3, f.w);
      }
    }
    __syncthreads(); // the next image reuses the tile
  }
}

// Operand strides come from Bcast (row-strided operands simply have a wider dim-0 stride); the output is
// dense or row-strided. I is the index type: 32-bit wherever every index and offset fits, because 64-bit
// division is a long software sequence and this kernel divides per dim and element (the box decode's
// [32,4,8400] Mul ran at 0.6 TB/s with 64-bit indices).
template <typename T, typename I>
__global__ void binary_kernel(int op, const T *a, const T *b, T *y, Bcast bc, I n, int act, float alpha, float beta) {
  for (I i = blockIdx.x * (I)blockDim.x + threadIdx.x; i < n; i += (I)gridDim.x * blockDim.x) {
    I r = i, ao = 0, bo = 0;
    for (int d = bc.rank - 1; d >= 0; d--) {
      I c = r % (I)bc.dims[d];
      r /= (I)bc.dims[d];
      ao += c * (I)bc.as[d];
      bo += c * (I)bc.bs[d];
    }
    I yo = bc.y_rs ? i / (I)bc.y_len * (I)bc.y_rs + i % (I)bc.y_len : i;
    kiln_st(y + yo, kiln_cuda_act(binop(op, kiln_ld(a + ao), kiln_ld(b + bo)), act, alpha, beta));
  }
}

// ---- fused pointwise programs (cuda.pointwise) --------------------------------------------------------
// IEEE-rounded fp32 ops that nvcc never contracts into an FMA: the fused chain gives the bytes of its
// ops run one layer at a time.
__device__ __forceinline__ float binop_rn(int op, float a, float b) {
  switch (op) {
  case KILN_CUDA_ADD: return __fadd_rn(a, b);
  case KILN_CUDA_SUB: return __fsub_rn(a, b);
  case KILN_CUDA_MUL: return __fmul_rn(a, b);
  case KILN_CUDA_DIV: return __fdiv_rn(a, b);
  case KILN_CUDA_MAX: return fmaxf(a, b);
  case KILN_CUDA_MIN: return fminf(a, b);
  default: return powf(a, b);
  }
}

constexpr int PW_IN = KILN_CUDA_PW_MAX_IN, PW_OPS = KILN_CUDA_PW_MAX_OPS, PW_OUT = KILN_CUDA_PW_MAX_OUT;

struct PwProg {
  int rank, n_in, n_ops, n_out;
  long long dims[KILN_CUDA_MAX_RANK];
  long long st[PW_IN][KILN_CUDA_MAX_RANK]; // input k's element stride per iteration dim (0: broadcast)
  const void *in[PW_IN];
  void *out[PW_OUT];
  long long out_rs[PW_OUT], row_len; // output row strides (0: dense); elements per row of the shape
  int out_slot[PW_OUT];
  int op[PW_OPS], a[PW_OPS], b[PW_OPS], act[PW_OPS];
  float alpha[PW_OPS], beta[PW_OPS];
};

// One element per iteration: input offsets from the mixed-radix index (unused inputs have stride 0), the
// inputs into slots, the program, the outputs from their slots.
template <typename T, typename I>
__global__ void pointwise_kernel(PwProg p, I n) {
  for (I i = blockIdx.x * (I)blockDim.x + threadIdx.x; i < n; i += (I)gridDim.x * blockDim.x) {
    I off[PW_IN];
#pragma unroll
    for (int k = 0; k < PW_IN; k++) off[k] = 0;
    I r = i;
    for (int d = p.rank - 1; d >= 0; d--) {
      I c = r % (I)p.dims[d];
      r /= (I)p.dims[d];
#pragma unroll
      for (int k = 0; k < PW_IN; k++) off[k] += c * (I)p.st[k][d];
    }
    float s[PW_IN + PW_OPS];
#pragma unroll
    for (int k = 0; k < PW_IN; k++)
      if (k < p.n_in) s[k] = kiln_ld((const T *)p.in[k] + off[k]);
    for (int o = 0; o < p.n_ops; o++) {
      float v = s[p.a[o]];
      if (p.op[o] >= 0) v = binop_rn(p.op[o], v, s[p.b[o]]);
      s[p.n_in + o] = kiln_cuda_act(v, p.act[o], p.alpha[o], p.beta[o]);
    }
    I row = p.row_len ? i / (I)p.row_len : 0, col = p.row_len ? i % (I)p.row_len : i;
#pragma unroll
    for (int k = 0; k < PW_OUT; k++)
      if (k < p.n_out) kiln_st((T *)p.out[k] + (p.out_rs[k] ? row * (I)p.out_rs[k] + col : i), s[p.out_slot[k]]);
  }
}

template <typename T>
__global__ void act_kernel(const T *x, T *y, long long n, int act, float alpha, float beta) {
  GRID_STRIDE(i, n) kiln_st(y + i, kiln_cuda_act(kiln_ld(x + i), act, alpha, beta));
}

// rows of len elements, x rows xs apart, y rows ys apart
template <typename T>
__global__ void act_rows_kernel(const T *x, long long xs, T *y, long long ys, long long len, long long n, int act,
                                float alpha, float beta) {
  GRID_STRIDE(i, n) {
    long long r = i / len, j = i % len;
    kiln_st(y + r * ys + j, kiln_cuda_act(kiln_ld(x + r * xs + j), act, alpha, beta));
  }
}

struct Perm {
  int rank;
  long long out_dims[KILN_CUDA_MAX_RANK], in_strides[KILN_CUDA_MAX_RANK]; // in_strides permuted to out order
};

// Transposes that keep the innermost dim: rows of `len` contiguous units move as a whole. One block per
// row (blockIdx.y, looping past 65535), its source found once; threads stride along the row in units U
// (16 bytes where the row sizes, offsets and pointers allow). Many tiny blocks would cost more in block
// scheduling than the copy itself (YOLOv8's DFL transpose: 64 rows of 8400 floats per image).
template <typename U>
__global__ void transpose_rows_kernel(const U *x, U *y, Perm pm, long long rows, long long len) {
  for (long long row = blockIdx.y; row < rows; row += gridDim.y) {
    long long r = row, off = 0;
    for (int d = pm.rank - 2; d >= 0; d--) {
      off += (r % pm.out_dims[d]) * pm.in_strides[d];
      r /= pm.out_dims[d];
    }
    const U *src = x + off;
    U *dst = y + row * len;
    for (long long j = blockIdx.x * (long long)blockDim.x + threadIdx.x; j < len; j += (long long)gridDim.x * blockDim.x)
      dst[j] = src[j];
  }
}

template <typename T>
__global__ void transpose_kernel(const T *x, T *y, Perm pm, long long n) {
  GRID_STRIDE(i, n) {
    long long r = i, off = 0;
    for (int d = pm.rank - 1; d >= 0; d--) {
      off += (r % pm.out_dims[d]) * pm.in_strides[d];
      r /= pm.out_dims[d];
    }
    y[i] = x[off];
  }
}

bool is_float(kiln_cuda_dtype t) { return t == KILN_CUDA_F32 || t == KILN_CUDA_F16; }

} // namespace

static kiln_status nchw_to_nhwc(const void *x, kiln_cuda_dtype xt, void *y, kiln_cuda_dtype yt, int64_t n, int64_t c,
                                int64_t hw, int64_t yps, int pad, kiln_cuda_stream stream) {
  if (!is_float(xt) || !is_float(yt) || n < 0 || c <= 0 || hw < 0 || (yps && yps < c))
    return kiln_error(KILN_ERR_INVALID_ARGUMENT, "cuda nchw_to_nhwc: bad type or shape");
  if (!yps) yps = c;
  int ci = (int)c, cw = pad ? (int)yps : ci;
  long long total = (long long)n * cw * hw;
  if (!total) return NULL;
  cudaStream_t s = (cudaStream_t)stream;
  if (yt == KILN_CUDA_F16 && cw % 8 == 0 && yps % 8 == 0 && (uintptr_t)y % 16 == 0) {
    long long tc = total / 8;
    if (xt == KILN_CUDA_F32)
      nchw_to_nhwc_h8_kernel<<<blocks_for(tc), TPB, 0, s>>>((const float *)x, (__half *)y, n, ci, cw / 8, hw, yps);
    else
      nchw_to_nhwc_h8_kernel<<<blocks_for(tc), TPB, 0, s>>>((const __half *)x, (__half *)y, n, ci, cw / 8, hw, yps);
    KILN_CUDA_LAUNCH_CHECK();
    return NULL;
  }
  unsigned g = blocks_for(total);
  if (xt == KILN_CUDA_F32 && yt == KILN_CUDA_F32)
    nchw_to_nhwc_kernel<<<g, TPB, 0, s>>>((const float *)x, (float *)y, n, ci, cw, hw, yps);
  else if (xt == KILN_CUDA_F32)
    nchw_to_nhwc_kernel<<<g, TPB, 0, s>>>((const float *)x, (__half *)y, n, ci, cw, hw, yps);
  else if (yt == KILN_CUDA_F32)
    nchw_to_nhwc_kernel<<<g, TPB, 0, s>>>((const __half *)x, (float *)y, n, ci, cw, hw, yps);
  else
    nchw_to_nhwc_kernel<<<g, TPB, 0, s>>>((const __half *)x, (__half *)y, n, ci, cw, hw, yps);
  KILN_CUDA_LAUNCH_CHECK();
  return NULL;
}

extern "C" kiln_status kiln_cuda_nchw_to_nhwc(const void *x, kiln_cuda_dtype xt, void *y, kiln_cuda_dtype yt,
                                              int64_t n, int64_t c, int64_t hw, int64_t yps,
                                              kiln_cuda_stream stream) {
  return nchw_to_nhwc(x, xt, y, yt, n, c, hw, yps, 0, stream);
}

extern "C" kiln_status kiln_cuda_nchw_to_nhwc_padded(const void *x, kiln_cuda_dtype xt, void *y, kiln_cuda_dtype yt,
                                                     int64_t n, int64_t c, int64_t hw, int64_t yps,
                                                     kiln_cuda_stream stream) {
  return nchw_to_nhwc(x, xt, y, yt, n, c, hw, yps, 1, stream);
}

extern "C" kiln_status kiln_cuda_eltwise_nhwc(int op, kiln_epilogue act, kiln_cuda_dtype dt, int64_t pixels, int64_t c,
                                              const void *a, int64_t a_ps, const void *b, int64_t b_ps, void *y,
                                              int64_t y_ps, kiln_cuda_stream stream) {
  if (!is_float(dt) || pixels < 0 || c <= 0 || c > 0x7fffffff || a_ps < c || y_ps < c || (op >= 0 && (!b || b_ps < c)) ||
      op > KILN_CUDA_POW)
    return kiln_error(KILN_ERR_INVALID_ARGUMENT, "cuda eltwise_nhwc: bad op, type or shape");
  long long total = (long long)pixels * c;
  if (!total) return NULL;
  cudaStream_t s = (cudaStream_t)stream;
  if (dt == KILN_CUDA_F32)
    eltwise_nhwc_kernel<<<blocks_for(total), TPB, 0, s>>>(op, (int)act.act, act.alpha, act.beta, pixels, (int)c,
                                                          (const float *)a, a_ps, (const float *)b, b_ps, (float *)y, y_ps);
  else
    eltwise_nhwc_kernel<<<blocks_for(total), TPB, 0, s>>>(op, (int)act.act, act.alpha, act.beta, pixels, (int)c,
                                                          (const __half *)a, a_ps, (const __half *)b, b_ps, (__half *)y,
                                                          y_ps);
  KILN_CUDA_LAUNCH_CHECK();
  return NULL;
}

// The general path for one map: the 32x32 tile kernel, or one thread per element past its grid limits.
static kiln_status nhwc_to_nchw_general(const void *x, kiln_cuda_dtype xt, long long xps, void *y, kiln_cuda_dtype yt,
                                        long long n, int c, long long hw, long long ypitch, long long yimg,
                                        kiln_epilogue act, cudaStream_t s) {
  if (n <= 65535 && (c + 31) / 32 <= 65535 && (hw + 31) / 32 <= 0x7fffffff) {
    dim3 grid((unsigned)((hw + 31) / 32), (unsigned)((c + 31) / 32), (unsigned)n), block(32, 8);
    if (xt == KILN_CUDA_F32 && yt == KILN_CUDA_F32)
      nhwc_to_nchw_tiled_kernel<<<grid, block, 0, s>>>((const float *)x, xps, (float *)y, c, hw, ypitch, yimg, act);
    else if (xt == KILN_CUDA_F32)
      nhwc_to_nchw_tiled_kernel<<<grid, block, 0, s>>>((const float *)x, xps, (__half *)y, c, hw, ypitch, yimg, act);
    else if (yt == KILN_CUDA_F32)
      nhwc_to_nchw_tiled_kernel<<<grid, block, 0, s>>>((const __half *)x, xps, (float *)y, c, hw, ypitch, yimg, act);
    else
      nhwc_to_nchw_tiled_kernel<<<grid, block, 0, s>>>((const __half *)x, xps, (__half *)y, c, hw, ypitch, yimg, act);
    KILN_CUDA_LAUNCH_CHECK();
    return NULL;
  }
  unsigned g = blocks_for(n * hw * c);
  if (xt == KILN_CUDA_F32 && yt == KILN_CUDA_F32)
    nhwc_to_nchw_kernel<<<g, TPB, 0, s>>>((const float *)x, xps, (float *)y, n, c, hw, ypitch, yimg, act);
  else if (xt == KILN_CUDA_F32)
    nhwc_to_nchw_kernel<<<g, TPB, 0, s>>>((const float *)x, xps, (__half *)y, n, c, hw, ypitch, yimg, act);
  else if (yt == KILN_CUDA_F32)
    nhwc_to_nchw_kernel<<<g, TPB, 0, s>>>((const __half *)x, xps, (float *)y, n, c, hw, ypitch, yimg, act);
  else
    nhwc_to_nchw_kernel<<<g, TPB, 0, s>>>((const __half *)x, xps, (__half *)y, n, c, hw, ypitch, yimg, act);
  KILN_CUDA_LAUNCH_CHECK();
  return NULL;
}

template <typename InT, typename OutT>
static void launch_maps(const NhwcMaps &m, void *y, long long n, int c, long long ypitch, long long yimg,
                        kiln_epilogue act, cudaStream_t s) {
  int ct = c < NT_CT ? c : NT_CT;
  dim3 grid(m.tile0[m.n], (unsigned)((c + NT_CT - 1) / NT_CT), (unsigned)(n < 65535 ? n : 65535));
  nhwc_to_nchw_maps_kernel<InT, OutT><<<grid, NT_THREADS, (size_t)ct * NT_RS * sizeof(float), s>>>(
      m, (OutT *)y, n, c, ypitch, yimg, (int)act.act, act.alpha, act.beta);
}

extern "C" kiln_status kiln_cuda_nhwc_to_nchw_maps(const kiln_cuda_nhwc_map *maps, int n_maps, kiln_cuda_dtype xt,
                                                   void *y, kiln_cuda_dtype yt, int64_t n, int64_t c,
                                                   int64_t y_row_pitch, int64_t y_image_stride, kiln_epilogue act,
                                                   kiln_cuda_stream stream) {
  if (!is_float(xt) || !is_float(yt) || n < 0 || c <= 0 || c > 0x7fffffff || n_maps < 0 || (n_maps && !maps) ||
      y_row_pitch < 0 || y_image_stride < 0)
    return kiln_error(KILN_ERR_INVALID_ARGUMENT, "cuda nhwc_to_nchw: bad type or shape");
  long long cols = 0; /* the output columns the maps fill, as far as the last one reaches */
  for (int k = 0; k < n_maps; k++) {
    const kiln_cuda_nhwc_map *mp = &maps[k];
    if (mp->hw < 0 || mp->y_offset < 0 || (mp->x_pixel_stride && mp->x_pixel_stride < c))
      return kiln_error(KILN_ERR_INVALID_ARGUMENT, "cuda nhwc_to_nchw: bad map %d", k);
    if (mp->y_offset + mp->hw > cols) cols = mp->y_offset + mp->hw;
  }
  if (!y_row_pitch) y_row_pitch = cols;
  if (!y_image_stride) y_image_stride = c * y_row_pitch;
  if (cols > y_row_pitch || y_image_stride < c * y_row_pitch)
    return kiln_error(KILN_ERR_INVALID_ARGUMENT, "cuda nhwc_to_nchw: rows overlap (row pitch %lld for %lld columns, "
                      "image stride %lld)", (long long)y_row_pitch, cols, (long long)y_image_stride);
  if (!n) return NULL;
  cudaStream_t s = (cudaStream_t)stream;
  const int ci = (int)c, chunk = xt == KILN_CUDA_F16 ? 8 : 4;
  const size_t ys = yt == KILN_CUDA_F16 ? 2 : 4;
  bool fast = ci % chunk == 0 && (c + NT_CT - 1) / NT_CT <= 65535;
  for (int k = 0; fast && k < n_maps; k++) {
    long long xps = maps[k].x_pixel_stride ? maps[k].x_pixel_stride : c;
    fast = xps % chunk == 0 && (uintptr_t)maps[k].x % 16 == 0;
  }
  if (!fast) {
    for (int k = 0; k < n_maps; k++) {
      const kiln_cuda_nhwc_map *mp = &maps[k];
      if (!mp->hw) continue;
      KILN_TRY(nhwc_to_nchw_general(mp->x, xt, mp->x_pixel_stride ? mp->x_pixel_stride : c, (char *)y + mp->y_offset * ys,
                                    yt, n, ci, mp->hw, y_row_pitch, y_image_stride, act, s));
    }
    return NULL;
  }
  /* up to NT_MAPS maps per launch (YOLO heads have 3) */
  for (int k0 = 0; k0 < n_maps; k0 += NT_MAPS) {
    NhwcMaps m;
    memset(&m, 0, sizeof m);
    unsigned long long tiles = 0;
    for (int k = k0; k < n_maps && m.n < NT_MAPS; k++) {
      const kiln_cuda_nhwc_map *mp = &maps[k];
      int j = m.n++;
      m.x[j] = mp->x;
      m.hw[j] = mp->hw;
      m.xps[j] = mp->x_pixel_stride ? mp->x_pixel_stride : c;
      m.yoff[j] = mp->y_offset;
      m.tile0[j] = (unsigned)tiles;
      m.vec[j] = mp->y_offset % 4 == 0 && y_row_pitch % 4 == 0 && y_image_stride % 4 == 0 && (uintptr_t)y % (4 * ys) == 0;
      tiles += (unsigned long long)((mp->hw + NT_TP - 1) / NT_TP);
      if (tiles > 0x7fffffffull) return kiln_error(KILN_ERR_INVALID_ARGUMENT, "cuda nhwc_to_nchw: maps too large");
    }
    m.tile0[m.n] = (unsigned)tiles;
    if (!tiles) continue;
    if (xt == KILN_CUDA_F16 && yt == KILN_CUDA_F32) launch_maps<__half, float>(m, y, n, ci, y_row_pitch, y_image_stride, act, s);
    else if (xt == KILN_CUDA_F16) launch_maps<__half, __half>(m, y, n, ci, y_row_pitch, y_image_stride, act, s);
    else if (yt == KILN_CUDA_F32) launch_maps<float, float>(m, y, n, ci, y_row_pitch, y_image_stride, act, s);
    else launch_maps<float, __half>(m, y, n, ci, y_row_pitch, y_image_stride, act, s);
    KILN_CUDA_LAUNCH_CHECK();
  }
  return NULL;
}

extern "C" kiln_status kiln_cuda_nhwc_to_nchw_act(const void *x, kiln_cuda_dtype xt, int64_t xps, void *y,
                                                  kiln_cuda_dtype yt, int64_t n, int64_t c, int64_t hw,
                                                  int64_t y_row_pitch, kiln_epilogue act, kiln_cuda_stream stream) {
  if (!is_float(xt) || !is_float(yt) || n < 0 || c <= 0 || hw < 0 || (xps && xps < c) || (y_row_pitch && y_row_pitch < hw))
    return kiln_error(KILN_ERR_INVALID_ARGUMENT, "cuda nhwc_to_nchw: bad type or shape");
  kiln_cuda_nhwc_map m = {x, hw, xps, 0};
  return kiln_cuda_nhwc_to_nchw_maps(&m, 1, xt, y, yt, n, c, y_row_pitch ? y_row_pitch : hw, 0, act, stream);
}

extern "C" kiln_status kiln_cuda_nhwc_to_nchw_pitched(const void *x, kiln_cuda_dtype xt, int64_t xps, void *y,
                                                      kiln_cuda_dtype yt, int64_t n, int64_t c, int64_t hw,
                                                      int64_t y_row_pitch, kiln_cuda_stream stream) {
  return kiln_cuda_nhwc_to_nchw_act(x, xt, xps, y, yt, n, c, hw, y_row_pitch, kiln_epilogue{KILN_ACT_NONE, 0, 0, 0}, stream);
}

extern "C" kiln_status kiln_cuda_nhwc_to_nchw(const void *x, kiln_cuda_dtype xt, int64_t xps, void *y,
                                              kiln_cuda_dtype yt, int64_t n, int64_t c, int64_t hw,
                                              kiln_cuda_stream stream) {
  return kiln_cuda_nhwc_to_nchw_pitched(x, xt, xps, y, yt, n, c, hw, 0, stream);
}

extern "C" kiln_status kiln_cuda_binary_rows(kiln_cuda_binop op, kiln_cuda_dtype dt, kiln_cuda_rows a, kiln_cuda_rows b,
                                             void *y, int64_t y_rs, kiln_epilogue act, kiln_cuda_stream stream) {
  if (!is_float(dt) || a.rank < 0 || b.rank < 0 || a.rank > KILN_CUDA_MAX_RANK || b.rank > KILN_CUDA_MAX_RANK ||
      (int)op < KILN_CUDA_ADD || (int)op > KILN_CUDA_POW || a.row_stride < 0 || b.row_stride < 0 || y_rs < 0 ||
      (a.row_stride && a.rank < 1) || (b.row_stride && b.rank < 1) || (y_rs && a.rank < 1 && b.rank < 1))
    return kiln_error(KILN_ERR_INVALID_ARGUMENT, "cuda binary: bad op, type, rank or row stride");
  Bcast bc;
  memset(&bc, 0, sizeof bc);
  bc.rank = a.rank > b.rank ? a.rank : b.rank;
  long long n = 1, sa = 1, sb = 1;
  // Right-aligned broadcast; strides built from the innermost dim outwards, 0 where a dim stretches; an
  // operand's dim 0 steps by its row stride when it has one.
  for (int d = bc.rank - 1; d >= 0; d--) {
    int ia = d - (bc.rank - a.rank), ib = d - (bc.rank - b.rank);
    long long da = ia >= 0 ? a.dims[ia] : 1, db = ib >= 0 ? b.dims[ib] : 1;
    if (da != db && da != 1 && db != 1)
      return kiln_error(KILN_ERR_SHAPE, "cuda binary: dims %lld and %lld do not broadcast", da, db);
    bc.dims[d] = da > db ? da : db;
    if (da == 0 || db == 0) bc.dims[d] = 0;
    if (ia == 0 && a.row_stride) {
      if (a.row_stride < sa) return kiln_error(KILN_ERR_INVALID_ARGUMENT, "cuda binary: a's rows overlap");
      sa = a.row_stride;
    }
    if (ib == 0 && b.row_stride) {
      if (b.row_stride < sb) return kiln_error(KILN_ERR_INVALID_ARGUMENT, "cuda binary: b's rows overlap");
      sb = b.row_stride;
    }
    bc.as[d] = da == 1 ? 0 : sa;
    bc.bs[d] = db == 1 ? 0 : sb;
    sa *= da, sb *= db, n *= bc.dims[d];
  }
  if (!n) return NULL;
  if (y_rs) {
    bc.y_len = n / bc.dims[0];
    if (y_rs < bc.y_len) return kiln_error(KILN_ERR_INVALID_ARGUMENT, "cuda binary: y's rows overlap");
    bc.y_rs = y_rs == bc.y_len ? 0 : y_rs;
  }
  /* 32-bit indices when the element count and every offset fit */
  long long amax = 0, bmax = 0;
  for (int d = 0; d < bc.rank; d++) amax += (bc.dims[d] - 1) * bc.as[d], bmax += (bc.dims[d] - 1) * bc.bs[d];
  long long ymax = bc.y_rs ? (n / bc.y_len - 1) * bc.y_rs + bc.y_len : n;
  bool small = n < INT32_MAX && amax < INT32_MAX && bmax < INT32_MAX && ymax < INT32_MAX;
  cudaStream_t s = (cudaStream_t)stream;
  unsigned g = blocks_for(n);
  int ac = (int)act.act;
  if (dt == KILN_CUDA_F32 && small)
    binary_kernel<<<g, TPB, 0, s>>>((int)op, (const float *)a.p, (const float *)b.p, (float *)y, bc, (unsigned)n, ac,
                                    act.alpha, act.beta);
  else if (dt == KILN_CUDA_F32)
    binary_kernel<<<g, TPB, 0, s>>>((int)op, (const float *)a.p, (const float *)b.p, (float *)y, bc, n, ac, act.alpha,
                                    act.beta);
  else if (small)
    binary_kernel<<<g, TPB, 0, s>>>((int)op, (const __half *)a.p, (const __half *)b.p, (__half *)y, bc, (unsigned)n, ac,
                                    act.alpha, act.beta);
  else
    binary_kernel<<<g, TPB, 0, s>>>((int)op, (const __half *)a.p, (const __half *)b.p, (__half *)y, bc, n, ac, act.alpha,
                                    act.beta);
  KILN_CUDA_LAUNCH_CHECK();
  return NULL;
}

extern "C" kiln_status kiln_cuda_pointwise(kiln_cuda_dtype dt, int rank, const int64_t *dims, int n_in,
                                           const kiln_cuda_rows *in, int n_ops, const kiln_cuda_pw_op *ops, int n_out,
                                           void *const *out, const int64_t *out_rs, const int32_t *out_slot,
                                           kiln_cuda_stream stream) {
  if (!is_float(dt) || rank < 1 || rank > KILN_CUDA_MAX_RANK || n_in < 0 || n_in > PW_IN || n_ops < 1 || n_ops > PW_OPS ||
      n_out < 1 || n_out > PW_OUT)
    return kiln_error(KILN_ERR_INVALID_ARGUMENT, "cuda pointwise: bad type, rank or program size");
  PwProg p;
  memset(&p, 0, sizeof p);
  p.rank = rank, p.n_in = n_in, p.n_ops = n_ops, p.n_out = n_out;
  long long n = 1;
  for (int d = 0; d < rank; d++) {
    if (dims[d] < 0) return kiln_error(KILN_ERR_INVALID_ARGUMENT, "cuda pointwise: negative dim");
    p.dims[d] = dims[d], n *= dims[d];
  }
  long long omax = n; /* the largest element offset + 1 anything reaches */
  for (int k = 0; k < n_in; k++) { /* right-aligned broadcast; dim 0 of a row-strided input steps by its stride */
    const kiln_cuda_rows *t = &in[k];
    if (t->rank < 0 || t->rank > rank || t->row_stride < 0 || (t->row_stride && t->rank < 1))
      return kiln_error(KILN_ERR_INVALID_ARGUMENT, "cuda pointwise: input %d has a bad rank or row stride", k);
    long long st = 1, reach = 1;
    for (int d = t->rank - 1; d >= 0; d--) {
      int od = d + rank - t->rank;
      if (t->dims[d] != 1 && t->dims[d] != dims[od])
        return kiln_error(KILN_ERR_SHAPE, "cuda pointwise: input %d does not broadcast to the result", k);
      if (d == 0 && t->row_stride) {
        if (t->row_stride < st) return kiln_error(KILN_ERR_INVALID_ARGUMENT, "cuda pointwise: input %d's rows overlap", k);
        st = t->row_stride;
      }
      p.st[k][od] = t->dims[d] == 1 ? 0 : st;
      reach += (t->dims[d] - 1) * p.st[k][od];
      st *= t->dims[d];
    }
    p.in[k] = t->p;
    if (reach > omax) omax = reach;
  }
  for (int o = 0; o < n_ops; o++) {
    const kiln_cuda_pw_op *q = &ops[o];
    if (q->op < -1 || q->op > KILN_CUDA_POW || q->a < 0 || q->a >= n_in + o || (q->op >= 0 && (q->b < 0 || q->b >= n_in + o)) ||
        (int)q->act.act < 0 || q->act.act > KILN_ACT_GELU)
      return kiln_error(KILN_ERR_INVALID_ARGUMENT, "cuda pointwise: op %d reads a slot not computed yet or is unknown", o);
    p.op[o] = q->op, p.a[o] = q->a, p.b[o] = q->op >= 0 ? q->b : 0, p.act[o] = (int)q->act.act;
    p.alpha[o] = q->act.alpha, p.beta[o] = q->act.beta;
  }
  for (int k = 0; k < n_out; k++) {
    if (out_slot[k] < 0 || out_slot[k] >= n_in + n_ops || out_rs[k] < 0)
      return kiln_error(KILN_ERR_INVALID_ARGUMENT, "cuda pointwise: output %d: bad slot or row stride", k);
    p.out[k] = out[k], p.out_slot[k] = out_slot[k];
    if (out_rs[k] && n) {
      long long len = n / dims[0];
      if (out_rs[k] < len) return kiln_error(KILN_ERR_INVALID_ARGUMENT, "cuda pointwise: output %d's rows overlap", k);
      p.row_len = len;
      p.out_rs[k] = out_rs[k] == len ? 0 : out_rs[k];
      long long reach = (dims[0] - 1) * out_rs[k] + len;
      if (reach > omax) omax = reach;
    }
  }
  if (!n) return NULL;
  cudaStream_t s = (cudaStream_t)stream;
  unsigned g = blocks_for(n);
  bool small = omax < INT32_MAX;
  if (dt == KILN_CUDA_F32 && small) pointwise_kernel<float, unsigned><<<g, TPB, 0, s>>>(p, (unsigned)n);
  else if (dt == KILN_CUDA_F32) pointwise_kernel<float, long long><<<g, TPB, 0, s>>>(p, n);
  else if (small) pointwise_kernel<__half, unsigned><<<g, TPB, 0, s>>>(p, (unsigned)n);
  else pointwise_kernel<__half, long long><<<g, TPB, 0, s>>>(p, n);
  KILN_CUDA_LAUNCH_CHECK();
  return NULL;
}

extern "C" kiln_status kiln_cuda_binary(kiln_cuda_binop op, kiln_cuda_dtype dt, const void *a, int a_rank,
                                        const int64_t *a_dims, const void *b, int b_rank, const int64_t *b_dims,
                                        void *y, kiln_cuda_stream stream) {
  kiln_cuda_rows ra = {a, a_rank, a_dims, 0}, rb = {b, b_rank, b_dims, 0};
  return kiln_cuda_binary_rows(op, dt, ra, rb, y, 0, kiln_epilogue{KILN_ACT_NONE, 0, 0, 0}, stream);
}

extern "C" kiln_status kiln_cuda_activation_rows(kiln_cuda_dtype dt, kiln_epilogue ep, int64_t rows, int64_t len,
                                                 const void *x, int64_t xs, void *y, int64_t ys,
                                                 kiln_cuda_stream stream) {
  if (!is_float(dt) || rows < 0 || len < 0 || (xs && xs < len) || (ys && ys < len))
    return kiln_error(KILN_ERR_INVALID_ARGUMENT, "cuda activation: bad type, size or row stride");
  if (!xs) xs = len;
  if (!ys) ys = len;
  if (xs == len && ys == len) return kiln_cuda_activation(dt, ep, rows * len, x, y, stream);
  long long n = (long long)rows * len;
  if (!n) return NULL;
  cudaStream_t s = (cudaStream_t)stream;
  if (dt == KILN_CUDA_F32)
    act_rows_kernel<<<blocks_for(n), TPB, 0, s>>>((const float *)x, xs, (float *)y, ys, len, n, (int)ep.act, ep.alpha,
                                                  ep.beta);
  else
    act_rows_kernel<<<blocks_for(n), TPB, 0, s>>>((const __half *)x, xs, (__half *)y, ys, len, n, (int)ep.act, ep.alpha,
                                                  ep.beta);
  KILN_CUDA_LAUNCH_CHECK();
  return NULL;
}

extern "C" kiln_status kiln_cuda_activation(kiln_cuda_dtype dt, kiln_epilogue ep, int64_t n, const void *x,
                                            void *y, kiln_cuda_stream stream) {
  if (!is_float(dt) || n < 0) return kiln_error(KILN_ERR_INVALID_ARGUMENT, "cuda activation: bad type or size");
  if (!n) return NULL;
  cudaStream_t s = (cudaStream_t)stream;
  if (dt == KILN_CUDA_F32)
    act_kernel<<<blocks_for(n), TPB, 0, s>>>((const float *)x, (float *)y, n, (int)ep.act, ep.alpha, ep.beta);
  else
    act_kernel<<<blocks_for(n), TPB, 0, s>>>((const __half *)x, (__half *)y, n, (int)ep.act, ep.alpha, ep.beta);
  KILN_CUDA_LAUNCH_CHECK();
  return NULL;
}

extern "C" kiln_status kiln_cuda_transpose(size_t es, int rank, const int64_t *x_dims, const int32_t *perm,
                                           const void *x, void *y, kiln_cuda_stream stream) {
  if (rank < 1 || rank > KILN_CUDA_MAX_RANK || (es != 1 && es != 2 && es != 4 && es != 8))
    return kiln_error(KILN_ERR_INVALID_ARGUMENT, "cuda transpose: rank %d / element size %zu unsupported", rank, es);
  unsigned seen = 0;
  for (int d = 0; d < rank; d++) {
    if (perm[d] < 0 || perm[d] >= rank || (seen >> perm[d] & 1))
      return kiln_error(KILN_ERR_INVALID_ARGUMENT, "cuda transpose: perm is not a permutation");
    seen |= 1u << perm[d];
  }
  long long n = 1;
  for (int d = 0; d < rank; d++) n *= x_dims[d];
  if (!n) return NULL;
  int64_t cd[8];
  int32_t cperm[8];
  int cpr = kiln_transpose_coalesce(rank, x_dims, perm, cd, cperm);
  Perm pm;
  pm.rank = cpr;
  long long in_strides[8], st = 1;
  for (int d = cpr - 1; d >= 0; d--) in_strides[d] = st, st *= cd[d];
  for (int o = 0; o < cpr; o++) {
    pm.out_dims[o] = cd[cperm[o]];
    pm.in_strides[o] = in_strides[cperm[o]];
  }
  cudaStream_t s = (cudaStream_t)stream;
  if (cpr <= 1 || pm.in_strides[cpr - 1] == 1) { /* innermost dim kept: whole rows */
    if (cpr == 0) pm.rank = 1, pm.out_dims[0] = 1, pm.in_strides[0] = 1;
    long long len = pm.out_dims[pm.rank - 1], rows = n / len;
    /* the widest unit that divides the row and every row's start (in bytes) */
    size_t unit = 16;
    while (unit > es) {
      bool ok = (len * (long long)es) % (long long)unit == 0 && (uintptr_t)x % unit == 0 && (uintptr_t)y % unit == 0;
      for (int d = 0; ok && d < pm.rank - 1; d++) ok = (pm.in_strides[d] * (long long)es) % (long long)unit == 0;
      if (ok) break;
      unit /= 2;
    }
    long long k = (long long)(unit / es); /* elements per unit */
    Perm pu = pm;
    for (int d = 0; d < pu.rank - 1; d++) pu.in_strides[d] /= k;
    long long ulen = len / k;
    unsigned threads = ulen >= 256 ? 256 : (unsigned)((ulen + 31) / 32 * 32);
    dim3 grid(1, (unsigned)(rows < 65535 ? rows : 65535));
    switch (unit) {
    case 16: transpose_rows_kernel<<<grid, threads, 0, s>>>((const uint4 *)x, (uint4 *)y, pu, rows, ulen); break;
    case 8: transpose_rows_kernel<<<grid, threads, 0, s>>>((const uint2 *)x, (uint2 *)y, pu, rows, ulen); break;
    case 4: transpose_rows_kernel<<<grid, threads, 0, s>>>((const uint32_t *)x, (uint32_t *)y, pu, rows, ulen); break;
    case 2: transpose_rows_kernel<<<grid, threads, 0, s>>>((const uint16_t *)x, (uint16_t *)y, pu, rows, ulen); break;
    default: transpose_rows_kernel<<<grid, threads, 0, s>>>((const uint8_t *)x, (uint8_t *)y, pu, rows, ulen);
    }
    KILN_CUDA_LAUNCH_CHECK();
    return NULL;
  }
  unsigned g = blocks_for(n);
  switch (es) {
  case 1: transpose_kernel<<<g, TPB, 0, s>>>((const uint8_t *)x, (uint8_t *)y, pm, n); break;
  case 2: transpose_kernel<<<g, TPB, 0, s>>>((const uint16_t *)x, (uint16_t *)y, pm, n); break;
  case 4: transpose_kernel<<<g, TPB, 0, s>>>((const uint32_t *)x, (uint32_t *)y, pm, n); break;
  default: transpose_kernel<<<g, TPB, 0, s>>>((const unsigned long long *)x, (unsigned long long *)y, pm, n); break;
  }
  KILN_CUDA_LAUNCH_CHECK();
  return NULL;
}

// rows x len units, each row `spitch`/`dpitch` units from the last. A kernel rather than
// cudaMemcpy2DAsync: inside a CUDA graph a memcpy node costs several microseconds of fixed latency, which
// dominated the small copies of a detection head at batch 1.
template <typename U>
__global__ void copy_2d_kernel(U *dst, long long dpitch, const U *src, long long spitch, long long len, long long rows) {
  for (long long row = blockIdx.y; row < rows; row += gridDim.y)
    for (long long j = blockIdx.x * (long long)blockDim.x + threadIdx.x; j < len; j += (long long)gridDim.x * blockDim.x)
      dst[row * dpitch + j] = src[row * spitch + j];
}

extern "C" kiln_status kiln_cuda_copy_2d(void *dst, size_t dst_pitch, const void *src, size_t src_pitch, size_t row_bytes,
                                         size_t rows, kiln_cuda_stream stream) {
  if (!rows || !row_bytes) return NULL;
  if (rows > 1 && (dst_pitch < row_bytes || src_pitch < row_bytes))
    return kiln_error(KILN_ERR_INVALID_ARGUMENT, "cuda copy_2d: pitch smaller than the row");
  size_t unit = 16;
  while (unit > 1 && (row_bytes % unit || dst_pitch % unit || src_pitch % unit || (uintptr_t)dst % unit ||
                      (uintptr_t)src % unit))
    unit /= 2;
  long long len = (long long)(row_bytes / unit), dp = (long long)(dst_pitch / unit), sp = (long long)(src_pitch / unit);
  long long per_row_blocks = (len + 256 * 4 - 1) / (256 * 4); /* ~4 units per thread */
  if (per_row_blocks > 4096) per_row_blocks = 4096;
  if (per_row_blocks < 1) per_row_blocks = 1;
  dim3 grid((unsigned)per_row_blocks, (unsigned)(rows < 65535 ? rows : 65535));
  cudaStream_t s = (cudaStream_t)stream;
  switch (unit) {
  case 16: copy_2d_kernel<<<grid, 256, 0, s>>>((uint4 *)dst, dp, (const uint4 *)src, sp, len, (long long)rows); break;
  case 8: copy_2d_kernel<<<grid, 256, 0, s>>>((uint2 *)dst, dp, (const uint2 *)src, sp, len, (long long)rows); break;
  case 4: copy_2d_kernel<<<grid, 256, 0, s>>>((uint32_t *)dst, dp, (const uint32_t *)src, sp, len, (long long)rows); break;
  case 2: copy_2d_kernel<<<grid, 256, 0, s>>>((uint16_t *)dst, dp, (const uint16_t *)src, sp, len, (long long)rows); break;
  default: copy_2d_kernel<<<grid, 256, 0, s>>>((uint8_t *)dst, dp, (const uint8_t *)src, sp, len, (long long)rows);
  }
  KILN_CUDA_LAUNCH_CHECK();
  return NULL;
}
