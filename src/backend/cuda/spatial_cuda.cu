// MaxPool, nearest Resize (NHWC) and Softmax (see spatial_cuda.h).
#include "backend/cuda/spatial_cuda.h"
#include "backend/cuda/cuda_common.cuh"

#include <math.h>

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
  if (vec16_ok(x, y, es, channels, ips, ops)) {
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
