// MaxPool, nearest Resize (NHWC) and Softmax (see spatial_cuda.h).
#include "backend/cuda/spatial_cuda.h"
#include "backend/cuda/cuda_common.cuh"

#include <limits.h>
#include <math.h>
#include <string.h>

namespace {

constexpr int TPB = 256;

#define GRID_STRIDE(i, n)                                                                            \
  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < (n);                      \
       i += (long long)gridDim.x * blockDim.x)

unsigned blocks_for(long long n) {
  unsigned b = kiln_cuda_blocks(n, TPB);
  return b > 65536u * 4 ? 65536u * 4 : b;
}

struct PoolP {
  int C, IH, IW, OH, OW, KH, KW, SH, SW, PT, PL, DH, DW;
  long long ips, ops, total;
};

// Channel fastest: a warp reads 32 consecutive channels of one pixel per tap.
template <typename T>
__global__ void maxpool_kernel(PoolP p, const T *x, T *y) {
  GRID_STRIDE(i, p.total) {
    int c = (int)(i % p.C);
    long long t = i / p.C;
    int ow = (int)(t % p.OW);
    t /= p.OW;
    int oh = (int)(t % p.OH);
    long long n = t / p.OH;
    float m = -INFINITY;
    for (int kh = 0; kh < p.KH; kh++) {
      int ih = oh * p.SH - p.PT + kh * p.DH;
      if (ih < 0 || ih >= p.IH) continue;
      for (int kw = 0; kw < p.KW; kw++) {
        int iw = ow * p.SW - p.PL + kw * p.DW;
        if (iw < 0 || iw >= p.IW) continue;
        m = fmaxf(m, kiln_ld(x + ((n * p.IH + ih) * p.IW + iw) * p.ips + c));
      }
    }
    kiln_st(y + ((n * p.OH + oh) * p.OW + ow) * p.ops + c, m);
  }
}

template <typename T>
__global__ void resize_kernel(const T *x, T *y, int C, int IH, int IW, int SH, int SW, long long ips,
                              long long ops, long long total) {
  GRID_STRIDE(i, total) {
    int c = (int)(i % C);
    long long t = i / C;
    int OW = IW * SW, OH = IH * SH;
    int ow = (int)(t % OW);
    t /= OW;
    int oh = (int)(t % OH);
    long long n = t / OH;
    y[((n * OH + oh) * OW + ow) * ops + c] = x[((n * IH + oh / SH) * IW + ow / SW) * ips + c];
  }
}

// 16-byte vectors of channels: when the channel count, both pixel strides and both pointers allow it,
// each thread handles V = 16 / sizeof(T) channels of one output pixel with one load per tap and one store
// (the element-per-thread kernels above are the general fallback). YOLO's pools and upsamples are
// memory-bound, so this is what decides their speed.
template <int BYTES> struct Unit;
template <> struct Unit<16> { typedef uint4 type; };
template <> struct Unit<8> { typedef uint2 type; };
template <> struct Unit<4> { typedef uint32_t type; };

template <typename T, int V> struct VecN {
  typedef typename Unit<V * sizeof(T)>::type U;
  union {
    U u;
    T e[V];
  };
};

// V channels per thread (16 bytes, or 4 when there are too few 16-byte vectors to fill the GPU: at
// batch 1 SPPF's pools have 6,400 of them, too few threads to hide the taps' load latency).
template <typename T, int KS, int V>
__global__ void maxpool_vec_kernel(PoolP p, const T *x, T *y) {
  typedef VecN<T, V> Vec;
  const int CV = p.C / V;
  GRID_STRIDE(i, p.total / V) {
    int cv = (int)(i % CV);
    long long t = i / CV;
    int ow = (int)(t % p.OW);
    t /= p.OW;
    int oh = (int)(t % p.OH);
    long long n = t / p.OH;
    float m[V];
#pragma unroll
    for (int k = 0; k < V; k++) m[k] = -INFINITY;
    const int KH = KS ? KS : p.KH, KW = KS ? KS : p.KW;
#pragma unroll
    for (int kh = 0; kh < KH; kh++) {
      int ih = oh * p.SH - p.PT + kh * p.DH;
      if (ih < 0 || ih >= p.IH) continue;
#pragma unroll
      for (int kw = 0; kw < KW; kw++) {
        int iw = ow * p.SW - p.PL + kw * p.DW;
        if (iw < 0 || iw >= p.IW) continue;
        Vec v;
        v.u = *(const typename Vec::U *)(x + ((n * p.IH + ih) * p.IW + iw) * p.ips + (long long)cv * V);
#pragma unroll
        for (int k = 0; k < V; k++) m[k] = fmaxf(m[k], kiln_ld(&v.e[k]));
      }
    }
    Vec o;
#pragma unroll
    for (int k = 0; k < V; k++) kiln_st(&o.e[k], m[k]);
    *(typename Vec::U *)(y + ((n * p.OH + oh) * p.OW + ow) * p.ops + (long long)cv * V) = o.u;
  }
}

template <typename T, int V>
static void launch_maxpool_vec(const PoolP &p, const T *x, T *y, cudaStream_t s) {
  unsigned g = blocks_for(p.total / V);
  if (p.KH == 5 && p.KW == 5) maxpool_vec_kernel<T, 5, V><<<g, TPB, 0, s>>>(p, x, y);
  else maxpool_vec_kernel<T, 0, V><<<g, TPB, 0, s>>>(p, x, y);
}

// ---- MaxPool chains (SPPF) -----------------------------------------------------------------------------
// Block: one image and one group of V channels (a U-byte unit per pixel), the whole H x W map in shared
// memory twice (a and b). Each pool is a row pass (a -> b: max over the clipped row window) and a column
// pass (b -> a, and out to y[i]); clipping each axis separately is exactly the 2-D window with pads as
// -inf. Values stay in their storage type (max is exact in any type); comparisons are made in fp32 with
// fmaxf, as the single-pool kernels do, so NaN handling is the same.
constexpr int CHAIN_THREADS = 256;
constexpr int CHAIN_SMEM = 48 * 1024;

struct ChainP {
  int C, H, W, RH, RW, n_out, groups; // RH / RW: window radius
  long long ips, ops;
};

template <typename T, int V>
__device__ __forceinline__ void max_into(VecN<T, V> &m, const VecN<T, V> &v) {
#pragma unroll
  for (int k = 0; k < V; k++) kiln_st(&m.e[k], fmaxf(kiln_ld(&m.e[k]), kiln_ld(&v.e[k])));
}

// The max of count >= 1 units src[first], src[first + step], ...: one clipped window row or column.
template <typename T, int V>
__device__ __forceinline__ typename VecN<T, V>::U window_max(const typename VecN<T, V>::U *src, int first, int step,
                                                             int count) {
  VecN<T, V> m, v;
  m.u = src[first];
  for (int j = 1; j < count; j++) {
    v.u = src[first + j * step];
    max_into<T, V>(m, v);
  }
  return m.u;
}

template <typename T, int V>
__global__ void __launch_bounds__(CHAIN_THREADS) maxpool_chain_kernel(ChainP p, const T *x, T *y0, T *y1, T *y2, T *y3) {
  typedef typename VecN<T, V>::U U;
  extern __shared__ uint4 chain_smem[];
  const int HW = p.H * p.W;
  U *a = reinterpret_cast<U *>(chain_smem), *b = a + HW;
  const int n = blockIdx.x / p.groups, g = blockIdx.x - n * p.groups;
  const long long c0 = (long long)g * V;
  for (int i = threadIdx.x; i < HW; i += CHAIN_THREADS)
    a[i] = *reinterpret_cast<const U *>(x + ((long long)n * HW + i) * p.ips + c0);
  __syncthreads();
  T *const ys[KILN_CUDA_POOL_CHAIN_MAX] = {y0, y1, y2, y3};
  for (int k = 0; k < p.n_out; k++) {
    for (int i = threadIdx.x; i < HW; i += CHAIN_THREADS) { // rows: a -> b
      const int h = i / p.W, w = i - h * p.W;
      const int lo = max(w - p.RW, 0), hi = min(w + p.RW, p.W - 1);
      b[i] = window_max<T, V>(a, h * p.W + lo, 1, hi - lo + 1);
    }
    __syncthreads();
    T *yk = ys[k];
    for (int i = threadIdx.x; i < HW; i += CHAIN_THREADS) { // columns: b -> a and y[k]
      const int h = i / p.W, w = i - h * p.W;
      const int lo = max(h - p.RH, 0), hi = min(h + p.RH, p.H - 1);
      const U m = window_max<T, V>(b, lo * p.W + w, p.W, hi - lo + 1);
      a[i] = m;
      *reinterpret_cast<U *>(yk + ((long long)n * HW + i) * p.ops + c0) = m;
    }
    __syncthreads();
  }
}

template <typename T, int V>
void launch_chain(const ChainP &p, int blocks, const T *x, T *const *y, cudaStream_t s) {
  const size_t smem = 2 * (size_t)p.H * p.W * V * sizeof(T);
  maxpool_chain_kernel<T, V><<<blocks, CHAIN_THREADS, smem, s>>>(p, x, y[0], y[1], y[2], y[3]);
}

template <typename T>
__global__ void resize_vec_kernel(const T *x, T *y, int C, int IH, int IW, int SH, int SW, long long ips,
                                  long long ops, long long total_vec) {
  constexpr int V = 16 / sizeof(T);
  const int CV = C / V, OW = IW * SW, OH = IH * SH;
  GRID_STRIDE(i, total_vec) {
    int cv = (int)(i % CV);
    long long t = i / CV;
    int ow = (int)(t % OW);
    t /= OW;
    int oh = (int)(t % OH);
    long long n = t / OH;
    *(uint4 *)(y + ((n * OH + oh) * OW + ow) * ops + (long long)cv * V) =
        *(const uint4 *)(x + ((n * IH + oh / SH) * IW + ow / SW) * ips + (long long)cv * V);
  }
}

// The same with one input row per grid row (blockIdx.y = image * IH + input row) and 32-bit index math:
// each thread reads one 16-byte vector of one input pixel and writes it to its SH x SW output pixels.
// The element-per-vector kernel above spends four 64-bit divisions per 16 bytes written, which made it
// instruction-bound (YOLOv8n's two upsamples at batch 32: ~60 us for ~100 MB).
template <typename T>
__global__ void resize_rows_kernel(const T *x, T *y, int CV, int IH, int IW, int SH, int SW, long long ips, long long ops) {
  constexpr int V = 16 / sizeof(T);
  const int j = blockIdx.x * blockDim.x + threadIdx.x;
  if (j >= IW * CV) return;
  const int row = blockIdx.y, n = row / IH, ih = row - n * IH, iw = j / CV, cv = j - iw * CV;
  const uint4 v = *(const uint4 *)(x + ((long long)row * IW + iw) * ips + (long long)cv * V);
  const long long OW = (long long)IW * SW;
  T *yp = y + (((long long)n * IH * SH + (long long)ih * SH) * OW + (long long)iw * SW) * ops + (long long)cv * V;
  for (int a = 0; a < SH; a++)
    for (int b = 0; b < SW; b++) *(uint4 *)(yp + ((long long)a * OW + b) * ops) = v;
}

bool vec16_ok(const void *x, const void *y, size_t es, long long c, long long ips, long long ops) {
  long long v = 16 / (long long)es;
  return ((uintptr_t)x % 16 == 0) && ((uintptr_t)y % 16 == 0) && c % v == 0 && ips % v == 0 && ops % v == 0;
}

// inner == 1: one warp per row; max and sum reduced with shuffles (each lane strides the row).
template <typename T>
__global__ void softmax_row_kernel(const T *x, T *y, long long rows, int len) {
  const int lane = threadIdx.x & 31;
  long long row = (blockIdx.x * (long long)blockDim.x + threadIdx.x) >> 5;
  long long nwarps = ((long long)gridDim.x * blockDim.x) >> 5;
  for (; row < rows; row += nwarps) {
    const T *xr = x + row * len;
    T *yr = y + row * len;
    float m = -INFINITY;
    for (int j = lane; j < len; j += 32) m = fmaxf(m, kiln_ld(xr + j));
    for (int o = 16; o; o >>= 1) m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, o));
    float s = 0.f;
    for (int j = lane; j < len; j += 32) s += expf(kiln_ld(xr + j) - m);
    for (int o = 16; o; o >>= 1) s += __shfl_xor_sync(0xffffffffu, s, o);
    float inv = 1.f / s;
    for (int j = lane; j < len; j += 32) kiln_st(yr + j, expf(kiln_ld(xr + j) - m) * inv);
  }
}

// inner > 1: one thread per (outer, inner) column; neighbouring threads read neighbouring elements.
template <typename T>
__global__ void softmax_col_kernel(const T *x, T *y, long long outer, int len, long long inner) {
  GRID_STRIDE(i, outer * inner) {
    long long o = i / inner, in = i % inner;
    const T *xc = x + o * len * inner + in;
    T *yc = y + o * len * inner + in;
    float m = -INFINITY, s = 0.f;
    for (int j = 0; j < len; j++) m = fmaxf(m, kiln_ld(xc + j * inner));
    for (int j = 0; j < len; j++) s += expf(kiln_ld(xc + j * inner) - m);
    float inv = 1.f / s;
    for (int j = 0; j < len; j++) kiln_st(yc + j * inner, expf(kiln_ld(xc + j * inner) - m) * inv);
  }
}

// Softmax over the middle dim followed by a dot product with w along it (YOLO's DFL: the expected bin
// of a distribution), one thread per (outer, inner) column. The column's `len` values are read twice
// (max, then exp / sums); the second read hits L1/L2. Same formula as the unfused layers: exp(x - max),
// sum, then sum(w * e) / sum(e).
template <typename T>
__global__ void softmax_dot_kernel(const T *x, const float *__restrict__ w, const float *bias, float *y, long long outer,
                                   int len, long long inner) {
  GRID_STRIDE(i, outer * inner) {
    long long o = i / inner, in = i - o * inner;
    const T *xc = x + o * len * inner + in;
    float m = -INFINITY;
    for (int j = 0; j < len; j++) m = fmaxf(m, kiln_ld(xc + j * inner));
    float s = 0.f, d = 0.f;
    for (int j = 0; j < len; j++) {
      float e = expf(kiln_ld(xc + j * inner) - m);
      s += e;
      d = fmaf(e, w[j], d);
    }
    y[i] = d / s + (bias ? *bias : 0.f);
  }
}

// ---- the DFL from NHWC maps ---------------------------------------------------------------------------
constexpr int DFL_MAPS = 8;
struct DflP {
  const void *x[DFL_MAPS];
  long long hw[DFL_MAPS], ps[DFL_MAPS], at[DFL_MAPS];
  int n_maps, groups, len;
  long long total, count;
};

// len consecutive channels (16-byte aligned, len * sizeof(T) a multiple of 16) as floats.
template <typename T, int LEN>
__device__ __forceinline__ void load_bins(const T *p, float (&v)[LEN]) {
  constexpr int PER = 16 / sizeof(T);
#pragma unroll
  for (int q = 0; q < LEN / PER; q++) {
    VecN<T, PER> u;
    u.u = reinterpret_cast<const uint4 *>(p)[q];
#pragma unroll
    for (int k = 0; k < PER; k++) v[q * PER + k] = kiln_ld(&u.e[k]);
  }
}

// Thread per (image, position, group), the group fastest: a warp reads 32 consecutive groups' bins
// (contiguous in NHWC), and writes 32 / groups runs of consecutive positions. LEN: compile-time bins with
// 16-byte loads (VEC), or 0 (p.len, element loads).
template <typename T, int LEN, bool VEC>
__global__ void softmax_dot_nhwc_kernel(DflP p, const float *__restrict__ w, const float *bias, float *y) {
  GRID_STRIDE(i, p.count) {
    const long long t = i / p.groups;
    const int g = (int)(i - t * p.groups);
    const long long b = t / p.total, l = t - b * p.total;
    int k = 0;
    while (k + 1 < p.n_maps && l >= p.at[k + 1]) k++;
    const T *xp = (const T *)p.x[k] + (b * p.hw[k] + (l - p.at[k])) * p.ps[k] + (long long)g * (LEN ? LEN : p.len);
    float m = -INFINITY, s = 0.f, d = 0.f;
    if (LEN) {
      float v[LEN ? LEN : 1];
      if (VEC) load_bins<T, (LEN ? LEN : 1)>(xp, v);
      else {
#pragma unroll
        for (int j = 0; j < LEN; j++) v[j] = kiln_ld(xp + j);
      }
#pragma unroll
      for (int j = 0; j < LEN; j++) m = fmaxf(m, v[j]);
#pragma unroll
      for (int j = 0; j < LEN; j++) {
        float e = expf(v[j] - m);
        s += e;
        d = fmaf(e, w[j], d);
      }
    } else {
      for (int j = 0; j < p.len; j++) m = fmaxf(m, kiln_ld(xp + j));
      for (int j = 0; j < p.len; j++) {
        float e = expf(kiln_ld(xp + j) - m);
        s += e;
        d = fmaf(e, w[j], d);
      }
    }
    y[(b * p.groups + g) * p.total + l] = d / s + (bias ? *bias : 0.f);
  }
}

template <typename T>
void launch_dfl(const DflP &p, bool vec, const float *w, const float *bias, float *y, cudaStream_t s) {
  const unsigned g = blocks_for(p.count);
  if (p.len == 16 && vec) softmax_dot_nhwc_kernel<T, 16, true><<<g, TPB, 0, s>>>(p, w, bias, y);
  else if (p.len == 16) softmax_dot_nhwc_kernel<T, 16, false><<<g, TPB, 0, s>>>(p, w, bias, y);
  else softmax_dot_nhwc_kernel<T, 0, false><<<g, TPB, 0, s>>>(p, w, bias, y);
}

bool is_float(kiln_cuda_dtype t) { return t == KILN_CUDA_F32 || t == KILN_CUDA_F16; }

} // namespace

extern "C" kiln_status kiln_cuda_maxpool2d_nhwc(const kiln_cuda_pool_desc *d, const void *x, void *y,
                                                kiln_cuda_stream stream) {
  if (!d || !is_float(d->dtype) || d->batch < 0 || d->channels <= 0 || d->in_h <= 0 || d->in_w <= 0 ||
      d->out_h <= 0 || d->out_w <= 0 || d->kernel_h <= 0 || d->kernel_w <= 0 || d->stride_h <= 0 ||
      d->stride_w <= 0 || d->dilation_h <= 0 || d->dilation_w <= 0 || d->pad_top < 0 || d->pad_left < 0 ||
      (d->in_pixel_stride && d->in_pixel_stride < d->channels) ||
      (d->out_pixel_stride && d->out_pixel_stride < d->channels))
    return kiln_error(KILN_ERR_INVALID_ARGUMENT, "cuda maxpool: bad descriptor");
  PoolP p;
  p.C = (int)d->channels, p.IH = (int)d->in_h, p.IW = (int)d->in_w, p.OH = (int)d->out_h, p.OW = (int)d->out_w;
  p.KH = (int)d->kernel_h, p.KW = (int)d->kernel_w, p.SH = (int)d->stride_h, p.SW = (int)d->stride_w;
  p.PT = (int)d->pad_top, p.PL = (int)d->pad_left, p.DH = (int)d->dilation_h, p.DW = (int)d->dilation_w;
  p.ips = d->in_pixel_stride ? d->in_pixel_stride : d->channels;
  p.ops = d->out_pixel_stride ? d->out_pixel_stride : d->channels;
  p.total = (long long)d->batch * d->out_h * d->out_w * d->channels;
  if (!p.total) return NULL;
  cudaStream_t s = (cudaStream_t)stream;
  size_t es = d->dtype == KILN_CUDA_F32 ? 4 : 2;
  if (vec16_ok(x, y, es, p.C, p.ips, p.ops)) {
    bool narrow = p.total / (16 / (long long)es) < 32768; /* too few 16-byte vectors: 4-byte units */
    if (d->dtype == KILN_CUDA_F32) {
      if (narrow) launch_maxpool_vec<float, 1>(p, (const float *)x, (float *)y, s);
      else launch_maxpool_vec<float, 4>(p, (const float *)x, (float *)y, s);
    } else {
      if (narrow) launch_maxpool_vec<__half, 2>(p, (const __half *)x, (__half *)y, s);
      else launch_maxpool_vec<__half, 8>(p, (const __half *)x, (__half *)y, s);
    }
  } else if (d->dtype == KILN_CUDA_F32)
    maxpool_kernel<<<blocks_for(p.total), TPB, 0, s>>>(p, (const float *)x, (float *)y);
  else
    maxpool_kernel<<<blocks_for(p.total), TPB, 0, s>>>(p, (const __half *)x, (__half *)y);
  KILN_CUDA_LAUNCH_CHECK();
  return NULL;
}

// Whether a chain of pools with window d runs as one kernel: same-size windows (see spatial_cuda.h) and
// the map in shared memory twice at 4 bytes per pixel (the narrowest unit the kernel takes).
extern "C" int kiln_cuda_maxpool_chain_supported(const kiln_cuda_pool_desc *d) {
  if (!d || !is_float(d->dtype) || d->batch < 1 || d->channels < 1 || d->in_h < 1 || d->in_w < 1) return 0;
  const size_t es = d->dtype == KILN_CUDA_F32 ? 4 : 2;
  return d->out_h == d->in_h && d->out_w == d->in_w && d->stride_h == 1 && d->stride_w == 1 && d->dilation_h == 1 &&
         d->dilation_w == 1 && d->kernel_h % 2 == 1 && d->kernel_w % 2 == 1 && d->pad_top == (d->kernel_h - 1) / 2 &&
         d->pad_left == (d->kernel_w - 1) / 2 && (d->channels * es) % 4 == 0 &&
         2 * d->in_h * d->in_w * 4 <= CHAIN_SMEM && d->batch * d->channels < (1ll << 31) &&
         (!d->in_pixel_stride || d->in_pixel_stride >= d->channels) &&
         (!d->out_pixel_stride || d->out_pixel_stride >= d->channels);
}

extern "C" kiln_status kiln_cuda_maxpool_chain_nhwc(const kiln_cuda_pool_desc *d, int n_out, const void *x,
                                                    void *const *y, kiln_cuda_stream stream) {
  if (!kiln_cuda_maxpool_chain_supported(d) || n_out < 1 || n_out > KILN_CUDA_POOL_CHAIN_MAX || !y)
    return kiln_error(KILN_ERR_INVALID_ARGUMENT, "cuda maxpool chain: bad descriptor or %d outputs", n_out);
  ChainP p;
  p.C = (int)d->channels, p.H = (int)d->in_h, p.W = (int)d->in_w;
  p.RH = (int)(d->kernel_h - 1) / 2, p.RW = (int)(d->kernel_w - 1) / 2, p.n_out = n_out;
  p.ips = d->in_pixel_stride ? d->in_pixel_stride : d->channels;
  p.ops = d->out_pixel_stride ? d->out_pixel_stride : d->channels;
  const size_t es = d->dtype == KILN_CUDA_F32 ? 4 : 2;
  void *ys[KILN_CUDA_POOL_CHAIN_MAX];
  bool a16 = (uintptr_t)x % 16 == 0 && (p.ips * es) % 16 == 0 && (p.ops * es) % 16 == 0 && (p.C * es) % 16 == 0;
  bool a4 = (uintptr_t)x % 4 == 0 && (p.ips * es) % 4 == 0 && (p.ops * es) % 4 == 0;
  for (int i = 0; i < KILN_CUDA_POOL_CHAIN_MAX; i++) {
    ys[i] = y[i < n_out ? i : 0];
    a16 = a16 && (uintptr_t)ys[i] % 16 == 0;
    a4 = a4 && (uintptr_t)ys[i] % 4 == 0;
  }
  // 16-byte units when the map fits and that still gives two blocks per SM-ish (132 SMs): the batch-1 SPPF
  // has 16 groups of 8 fp16 channels, too few blocks, so it takes 4-byte units (64 blocks).
  const int64_t hw = d->in_h * d->in_w, groups16 = p.C * (int64_t)es / 16;
  const bool use16 = a16 && 2 * hw * 16 <= CHAIN_SMEM && d->batch * groups16 >= 256;
  if (!use16 && !a4)
    return kiln_error(KILN_ERR_INVALID_ARGUMENT, "cuda maxpool chain: tensors not 4-byte aligned");
  const int units = use16 ? 16 : 4;
  p.groups = (int)(p.C * (int64_t)es / units);
  const long long blocks = d->batch * p.groups;
  if (blocks > INT_MAX) return kiln_error(KILN_ERR_UNSUPPORTED, "cuda maxpool chain: too many blocks");
  cudaStream_t s = (cudaStream_t)stream;
  if (d->dtype == KILN_CUDA_F32) {
    if (use16) launch_chain<float, 4>(p, (int)blocks, (const float *)x, (float *const *)ys, s);
    else launch_chain<float, 1>(p, (int)blocks, (const float *)x, (float *const *)ys, s);
  } else {
    if (use16) launch_chain<__half, 8>(p, (int)blocks, (const __half *)x, (__half *const *)ys, s);
    else launch_chain<__half, 2>(p, (int)blocks, (const __half *)x, (__half *const *)ys, s);
  }
  KILN_CUDA_LAUNCH_CHECK();
  return NULL;
}

extern "C" kiln_status kiln_cuda_resize_nearest_nhwc(kiln_cuda_dtype dt, int64_t batch, int64_t channels,
                                                     int64_t in_h, int64_t in_w, int64_t scale_h, int64_t scale_w,
                                                     const void *x, int64_t ips, void *y, int64_t ops,
                                                     kiln_cuda_stream stream) {
  if (!is_float(dt) || batch < 0 || channels <= 0 || in_h <= 0 || in_w <= 0 || scale_h <= 0 || scale_w <= 0 ||
      (ips && ips < channels) || (ops && ops < channels))
    return kiln_error(KILN_ERR_INVALID_ARGUMENT, "cuda resize: bad shape or scale");
  long long total = (long long)batch * in_h * scale_h * in_w * scale_w * channels;
  if (!total) return NULL;
  if (!ips) ips = channels;
  if (!ops) ops = channels;
  cudaStream_t s = (cudaStream_t)stream;
  size_t es = dt == KILN_CUDA_F32 ? 4 : 2;
  const long long cv = channels / (16 / (long long)es), rows = batch * in_h;
  if (vec16_ok(x, y, es, channels, ips, ops) && rows <= 65535 && in_w * cv <= INT_MAX - TPB) {
    const dim3 grid((unsigned)((in_w * cv + TPB - 1) / TPB), (unsigned)rows);
    if (dt == KILN_CUDA_F32)
      resize_rows_kernel<<<grid, TPB, 0, s>>>((const float *)x, (float *)y, (int)cv, (int)in_h, (int)in_w, (int)scale_h,
                                              (int)scale_w, ips, ops);
    else
      resize_rows_kernel<<<grid, TPB, 0, s>>>((const uint16_t *)x, (uint16_t *)y, (int)cv, (int)in_h, (int)in_w,
                                              (int)scale_h, (int)scale_w, ips, ops);
  } else if (vec16_ok(x, y, es, channels, ips, ops)) {
    long long tv = total / (16 / (long long)es);
    if (dt == KILN_CUDA_F32)
      resize_vec_kernel<<<blocks_for(tv), TPB, 0, s>>>((const float *)x, (float *)y, (int)channels, (int)in_h, (int)in_w,
                                                       (int)scale_h, (int)scale_w, ips, ops, tv);
    else
      resize_vec_kernel<<<blocks_for(tv), TPB, 0, s>>>((const uint16_t *)x, (uint16_t *)y, (int)channels, (int)in_h,
                                                       (int)in_w, (int)scale_h, (int)scale_w, ips, ops, tv);
  } else if (dt == KILN_CUDA_F32)
    resize_kernel<<<blocks_for(total), TPB, 0, s>>>((const float *)x, (float *)y, (int)channels, (int)in_h,
                                                    (int)in_w, (int)scale_h, (int)scale_w, ips, ops, total);
  else
    resize_kernel<<<blocks_for(total), TPB, 0, s>>>((const uint16_t *)x, (uint16_t *)y, (int)channels, (int)in_h,
                                                    (int)in_w, (int)scale_h, (int)scale_w, ips, ops, total);
  KILN_CUDA_LAUNCH_CHECK();
  return NULL;
}

extern "C" kiln_status kiln_cuda_softmax(kiln_cuda_dtype dt, int64_t outer, int64_t axis, int64_t inner,
                                         const void *x, void *y, kiln_cuda_stream stream) {
  if (!is_float(dt) || outer < 0 || axis <= 0 || inner <= 0 || axis > 0x7fffffff)
    return kiln_error(KILN_ERR_INVALID_ARGUMENT, "cuda softmax: bad shape");
  if (!outer) return NULL;
  cudaStream_t s = (cudaStream_t)stream;
  if (inner == 1) {
    unsigned g = blocks_for(outer * 32);
    if (dt == KILN_CUDA_F32)
      softmax_row_kernel<<<g, TPB, 0, s>>>((const float *)x, (float *)y, outer, (int)axis);
    else
      softmax_row_kernel<<<g, TPB, 0, s>>>((const __half *)x, (__half *)y, outer, (int)axis);
  } else {
    unsigned g = blocks_for(outer * inner);
    if (dt == KILN_CUDA_F32)
      softmax_col_kernel<<<g, TPB, 0, s>>>((const float *)x, (float *)y, outer, (int)axis, inner);
    else
      softmax_col_kernel<<<g, TPB, 0, s>>>((const __half *)x, (__half *)y, outer, (int)axis, inner);
  }
  KILN_CUDA_LAUNCH_CHECK();
  return NULL;
}

extern "C" kiln_status kiln_cuda_softmax_dot(kiln_cuda_dtype dt, int64_t outer, int64_t axis, int64_t inner,
                                             const void *x, const float *w, const float *bias, float *y,
                                             kiln_cuda_stream stream) {
  if (!is_float(dt) || outer < 0 || axis <= 0 || inner <= 0 || axis > 0x7fffffff || !w)
    return kiln_error(KILN_ERR_INVALID_ARGUMENT, "cuda softmax_dot: bad shape");
  if (!outer) return NULL;
  cudaStream_t s = (cudaStream_t)stream;
  unsigned g = blocks_for(outer * inner);
  if (dt == KILN_CUDA_F32)
    softmax_dot_kernel<<<g, TPB, 0, s>>>((const float *)x, w, bias, y, outer, (int)axis, inner);
  else
    softmax_dot_kernel<<<g, TPB, 0, s>>>((const __half *)x, w, bias, y, outer, (int)axis, inner);
  KILN_CUDA_LAUNCH_CHECK();
  return NULL;
}

extern "C" kiln_status kiln_cuda_softmax_dot_nhwc(const kiln_cuda_nhwc_map *maps, int n_maps, kiln_cuda_dtype dt,
                                                  int64_t batch, int64_t groups, int64_t len, int64_t total,
                                                  const float *w, const float *bias, float *y, kiln_cuda_stream stream) {
  if (!maps || n_maps < 1 || n_maps > DFL_MAPS || !is_float(dt) || batch < 0 || groups < 1 || len < 1 || total < 1 ||
      groups > 0x7fffffff || len > 0x7fffffff || !w || !y)
    return kiln_error(KILN_ERR_INVALID_ARGUMENT, "cuda softmax_dot_nhwc: bad shape or map count %d", n_maps);
  DflP p;
  memset(&p, 0, sizeof p);
  p.n_maps = n_maps, p.groups = (int)groups, p.len = (int)len, p.total = total, p.count = batch * total * groups;
  const size_t es = dt == KILN_CUDA_F32 ? 4 : 2;
  bool vec = (len * (int64_t)es) % 16 == 0;
  int64_t at = 0;
  for (int k = 0; k < n_maps; k++) {
    const int64_t ps = maps[k].x_pixel_stride ? maps[k].x_pixel_stride : groups * len;
    if (maps[k].hw < 1 || ps < groups * len || maps[k].y_offset != at || !maps[k].x)
      return kiln_error(KILN_ERR_INVALID_ARGUMENT, "cuda softmax_dot_nhwc: map %d does not continue the concatenation", k);
    p.x[k] = maps[k].x, p.hw[k] = maps[k].hw, p.ps[k] = ps, p.at[k] = at;
    vec = vec && (uintptr_t)maps[k].x % 16 == 0 && (ps * (int64_t)es) % 16 == 0;
    at += maps[k].hw;
  }
  if (at != total) return kiln_error(KILN_ERR_INVALID_ARGUMENT, "cuda softmax_dot_nhwc: the maps do not cover %lld positions",
                                     (long long)total);
  if (!p.count) return NULL;
  cudaStream_t s = (cudaStream_t)stream;
  if (dt == KILN_CUDA_F32) launch_dfl<float>(p, vec, w, bias, y, s);
  else launch_dfl<__half>(p, vec, w, bias, y, s);
  KILN_CUDA_LAUNCH_CHECK();
  return NULL;
}
