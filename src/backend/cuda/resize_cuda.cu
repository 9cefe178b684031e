// General 4-D Resize: nearest and bilinear, every ONNX coordinate mode, NCHW or NHWC (see resize_cuda.h).
#include "backend/cuda/resize_cuda.h"
#include "backend/cuda/cuda_common.cuh"

#include <math.h>

namespace {

constexpr int TPB = 256;
constexpr unsigned MAX_BLOCKS = 65536u * 4;

#define GRID_STRIDE(i, n)                                                                            \
  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < (n);                      \
       i += (long long)gridDim.x * blockDim.x)

struct Axis {
  int in, out;
  float scale;
};

struct ResizeP {
  int C, coord, nearest;
  Axis h, w;
  long long ips, ops, total;
};

// ONNX coordinate_transformation_mode, in fp32. __fadd_rn/__fmul_rn keep nvcc from contracting into an
// FMA, so the result is the same float a host computes with the same formula (the tests rely on it,
// and nearest's ties depend on exact values).
__device__ __forceinline__ float src_coord(int mode, int xo, const Axis &a) {
  float x = (float)xo;
  switch (mode) {
  case KILN_CUDA_COORD_ASYMMETRIC: return x / a.scale;
  case KILN_CUDA_COORD_TF_HALF_PIXEL_FOR_NN: return __fadd_rn(x, 0.5f) / a.scale;
  case KILN_CUDA_COORD_ALIGN_CORNERS: return a.out > 1 ? __fmul_rn(x, (float)(a.in - 1)) / (float)(a.out - 1) : 0.f;
  case KILN_CUDA_COORD_PYTORCH_HALF_PIXEL:
    return a.out > 1 ? __fadd_rn(__fadd_rn(x, 0.5f) / a.scale, -0.5f) : 0.f;
  case KILN_CUDA_COORD_HALF_PIXEL_SYMMETRIC: {
    float adj = (float)a.out / __fmul_rn(a.scale, (float)a.in);
    float off = __fmul_rn((float)a.in * 0.5f, __fadd_rn(1.f, -adj));
    return __fadd_rn(__fadd_rn(off, __fadd_rn(x, 0.5f) / a.scale), -0.5f);
  }
  default: return __fadd_rn(__fadd_rn(x, 0.5f) / a.scale, -0.5f);
  }
}

__device__ __forceinline__ int clampi(int v, int n) { return v < 0 ? 0 : (v >= n ? n - 1 : v); }

__device__ __forceinline__ int nearest_index(int nmode, float x, int n) {
  // Ties are detected exactly (x - floor(x) is exact in fp32); floorf(x + 0.5f) would be wrong for x just
  // below a tie, where the addition itself rounds up to the next integer.
  float fl = floorf(x), r;
  switch (nmode) {
  case KILN_CUDA_NEAREST_ROUND_PREFER_CEIL: r = x - fl == 0.5f ? fl + 1.f : roundf(x); break;
  case KILN_CUDA_NEAREST_FLOOR: r = fl; break;
  case KILN_CUDA_NEAREST_CEIL: r = ceilf(x); break;
  default: r = x - fl == 0.5f ? fl : roundf(x); break; // round_prefer_floor: a tie goes down
  }
  // Clamp in float first: a huge coordinate must not overflow the int conversion.
  r = fminf(fmaxf(r, -1.f), (float)n);
  return clampi((int)r, n);
}

// One thread per output element, in output memory order: channel fastest for NHWC (a warp stores 32
// consecutive channels of a pixel), w fastest for NCHW. Coordinates are recomputed per element: a few
// flops next to the gathers.
template <typename T, bool NHWC, bool LINEAR>
__global__ void resize_kernel(ResizeP p, const T *x, T *y) {
  GRID_STRIDE(i, p.total) {
    int c, ow, oh;
    long long n, t = i;
    if (NHWC) {
      c = (int)(t % p.C), t /= p.C;
      ow = (int)(t % p.w.out), t /= p.w.out;
      oh = (int)(t % p.h.out), n = t / p.h.out;
    } else {
      ow = (int)(t % p.w.out), t /= p.w.out;
      oh = (int)(t % p.h.out), t /= p.h.out;
      c = (int)(t % p.C), n = t / p.C;
    }
    // Element (h, w) of this image/channel plane.
    const long long plane = NHWC ? n * p.h.in * p.w.in * p.ips + c : (n * p.C + c) * p.h.in * p.w.in;
    const long long ps = NHWC ? p.ips : 1;
    float fy = src_coord(p.coord, oh, p.h), fx = src_coord(p.coord, ow, p.w);
    float v;
    if (!LINEAR) {
      int ih = nearest_index(p.nearest, fy, p.h.in), iw = nearest_index(p.nearest, fx, p.w.in);
      v = kiln_ld(x + plane + ((long long)ih * p.w.in + iw) * ps);
    } else {
      float y0f = floorf(fy), x0f = floorf(fx);
      float ly = fy - y0f, lx = fx - x0f;
      y0f = fminf(fmaxf(y0f, -1.f), (float)p.h.in), x0f = fminf(fmaxf(x0f, -1.f), (float)p.w.in);
      int y0 = (int)y0f, x0 = (int)x0f;
      int y1 = clampi(y0 + 1, p.h.in), x1 = clampi(x0 + 1, p.w.in);
      y0 = clampi(y0, p.h.in), x0 = clampi(x0, p.w.in);
      const T *r0 = x + plane + (long long)y0 * p.w.in * ps, *r1 = x + plane + (long long)y1 * p.w.in * ps;
      float top = (1.f - lx) * kiln_ld(r0 + x0 * ps) + lx * kiln_ld(r0 + x1 * ps);
      float bot = (1.f - lx) * kiln_ld(r1 + x0 * ps) + lx * kiln_ld(r1 + x1 * ps);
      v = (1.f - ly) * top + ly * bot;
    }
    long long yo = NHWC ? ((n * p.h.out + oh) * p.w.out + ow) * p.ops + c : i;
    kiln_st(y + yo, v);
  }
}

template <typename T>
void launch(const ResizeP &p, bool nhwc, bool linear, const T *x, T *y, cudaStream_t s) {
  unsigned g = kiln_cuda_blocks(p.total, TPB);
  if (g > MAX_BLOCKS) g = MAX_BLOCKS;
  if (nhwc && linear) resize_kernel<T, true, true><<<g, TPB, 0, s>>>(p, x, y);
  else if (nhwc) resize_kernel<T, true, false><<<g, TPB, 0, s>>>(p, x, y);
  else if (linear) resize_kernel<T, false, true><<<g, TPB, 0, s>>>(p, x, y);
  else resize_kernel<T, false, false><<<g, TPB, 0, s>>>(p, x, y);
}

} // namespace

extern "C" kiln_status kiln_cuda_resize(const kiln_cuda_resize_desc *d, const void *x, void *y,
                                        kiln_cuda_stream stream) {
  if (!d || (d->dtype != KILN_CUDA_F32 && d->dtype != KILN_CUDA_F16) || d->batch < 0 || d->channels <= 0 ||
      d->in_h <= 0 || d->in_w <= 0 || d->out_h < 0 || d->out_w < 0 || d->in_h > 0x7fffffff ||
      d->in_w > 0x7fffffff || d->out_h > 0x7fffffff || d->out_w > 0x7fffffff || d->channels > 0x7fffffff ||
      d->scale_h < 0.f || d->scale_w < 0.f || (int)d->mode < 0 || d->mode > KILN_CUDA_RESIZE_LINEAR ||
      (int)d->coord < 0 || d->coord > KILN_CUDA_COORD_TF_HALF_PIXEL_FOR_NN || (int)d->nearest < 0 ||
      d->nearest > KILN_CUDA_NEAREST_CEIL ||
      (d->nhwc && ((d->in_pixel_stride && d->in_pixel_stride < d->channels) ||
                   (d->out_pixel_stride && d->out_pixel_stride < d->channels))))
    return kiln_error(KILN_ERR_INVALID_ARGUMENT, "cuda resize: bad descriptor");
  ResizeP p;
  p.C = (int)d->channels, p.coord = (int)d->coord, p.nearest = (int)d->nearest;
  p.h = {(int)d->in_h, (int)d->out_h, d->scale_h > 0.f ? d->scale_h : (float)d->out_h / (float)d->in_h};
  p.w = {(int)d->in_w, (int)d->out_w, d->scale_w > 0.f ? d->scale_w : (float)d->out_w / (float)d->in_w};
  p.ips = d->nhwc && d->in_pixel_stride ? d->in_pixel_stride : d->channels;
  p.ops = d->nhwc && d->out_pixel_stride ? d->out_pixel_stride : d->channels;
  p.total = (long long)d->batch * d->channels * d->out_h * d->out_w;
  if (!p.total) return NULL;
  if (p.h.scale <= 0.f || p.w.scale <= 0.f)
    return kiln_error(KILN_ERR_INVALID_ARGUMENT, "cuda resize: zero scale with a non-empty output");
  cudaStream_t s = (cudaStream_t)stream;
  bool lin = d->mode == KILN_CUDA_RESIZE_LINEAR;
  if (d->dtype == KILN_CUDA_F32) launch(p, d->nhwc != 0, lin, (const float *)x, (float *)y, s);
  else launch(p, d->nhwc != 0, lin, (const __half *)x, (__half *)y, s);
  KILN_CUDA_LAUNCH_CHECK();
  return NULL;
}
