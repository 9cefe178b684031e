// Direct convolution from a LINEAR NCHW input (the network input) to NHWC: the "stem" path of
// conv_cuda.h (desc->in_layout_nchw). See conv_stem_cuda.h for why and for the blob layout.
#include "backend/cuda/conv_stem_cuda.h"
#include "backend/cuda/conv_mma.cuh" // mma16816, ld8 / st8
#include "backend/cuda/cuda_common.cuh"

#include <string.h>

namespace {

// Block: 32 x 4 threads over a tile of 32 output columns x 8 output rows. Thread (tx, ty) computes the
// pixels (ty, tx) and (ty + 4, tx) for OCB output channels: each weight read from shared memory (a
// broadcast, all lanes read the same word) feeds two pixels, the 32 lanes of a warp read 32 consecutive
// input words (conflict-free, see the phase layout below) and store 32 consecutive NHWC pixels.
constexpr int TX = 32, TY = 4, TROWS = 2 * TY, THREADS = TX * TY;
constexpr int MAX_IC = 4;
constexpr int64_t SMEM_MAX = 48 * 1024; // no opt-in needed; the YOLO stem uses ~15 KB

struct StemP {
  int N, IC, IH, IW, OC, OH, OW, KH, KW, SH, SW, PT, PL, DH, DW;
  int taps;              // IC * KH * KW, in (ic, kh, kw) order as packed
  int rows_in, cw, pitch; // input tile: rows, columns per stride phase, floats per tile row
  int cols_in, n_ocb;
  int n_tiles, tpb, nbuf; // row tiles of the image, row tiles per block, input buffers (2: double-buffered)
  long long out_ps, res_ps;
  int act, has_res, res_before, vec, fast;
  float alpha, beta;
};

struct Geo {
  int64_t ocb, n_ocb, taps, rows_in, cols_in, cw, pitch, smem_bytes, nbuf;
  size_t bias_off, total;
};

size_t align256(size_t n) { return (n + 255) & ~(size_t)255; }

Geo geo_of(const kiln_cuda_conv_desc *d) {
  Geo g;
  g.ocb = d->out_c <= 8 ? 8 : 16; // 16: two 16-byte fp16 stores per pixel; 8 keeps tiny OC from wasting half
  g.n_ocb = (d->out_c + g.ocb - 1) / g.ocb;
  g.taps = d->in_c * d->kernel_h * d->kernel_w;
  g.rows_in = (TROWS - 1) * d->stride_h + (d->kernel_h - 1) * d->dilation_h + 1;
  g.cols_in = (TX - 1) * d->stride_w + (d->kernel_w - 1) * d->dilation_w + 1;
  g.cw = (g.cols_in + d->stride_w - 1) / d->stride_w;
  g.pitch = g.cw * d->stride_w;
  // Two input buffers when they fit (the next row tile loads while this one computes), else one.
  const int64_t fixed = (g.taps * g.ocb + g.ocb) * 4, window = d->in_c * g.rows_in * g.pitch * 4;
  g.nbuf = fixed + 2 * window <= SMEM_MAX ? 2 : 1;
  g.smem_bytes = fixed + g.nbuf * window;
  g.bias_off = align256((size_t)(g.n_ocb * g.taps * g.ocb) * 4);
  g.total = align256(g.bias_off + (size_t)(g.n_ocb * g.ocb) * 4);
  return g;
}

// Staging the input window: a plain load + shared store per element makes each warp wait out one global
// latency per row segment (measured: the YOLO stem at batch 32 ran at 0.8 TB/s). cp.async instead puts
// every element of the window in flight at once (4-byte copies, zero-filled outside the image; src is
// then any valid address and is not read). fp16 inputs (2-byte elements, below cp.async's minimum) load
// and convert in registers.
__device__ __forceinline__ void stage(float *dst, const float *src, bool ok) {
  asm volatile("cp.async.ca.shared.global [%0], [%1], 4, %2;\n" ::"r"((uint32_t)__cvta_generic_to_shared(dst)),
               "l"(src), "r"(ok ? 4 : 0));
}
__device__ __forceinline__ void stage(float *dst, const __half *src, bool ok) {
  *dst = ok ? __half2float(__ldg(src)) : 0.f;
}
__device__ __forceinline__ void stage16(float4 *dst, const float4 *src) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"((uint32_t)__cvta_generic_to_shared(dst)), "l"(src));
}

// fp16 engines (p.fast) take the fast exp / divide for SiLU and sigmoid, as the tensor-core path does
// (error far below fp16 rounding); fp32 engines keep kiln_cuda_act's expf (held to 1e-4). ACT < 0: the
// activation and p.fast are read at run time (the generic kernel); ACT >= 0: both are compile-time
// (FAST), so the unrolled epilogue of the specialised stem is a few instructions per value instead of
// 32 inlined copies of the activation switch (which overflowed the instruction cache).
template <int ACT, bool FAST>
__device__ __forceinline__ float stem_act(const StemP &p, float v) {
  if (ACT < 0) {
    if (p.fast && p.act == KILN_ACT_SILU) return __fdividef(v, 1.f + __expf(-v));
    if (p.fast && p.act == KILN_ACT_SIGMOID) return __fdividef(1.f, 1.f + __expf(-v));
    return kiln_cuda_act(v, p.act, p.alpha, p.beta);
  }
  if (ACT == KILN_ACT_SILU) return FAST ? __fdividef(v, 1.f + __expf(-v)) : v / (1.f + expf(-v));
  if (ACT == KILN_ACT_SIGMOID) return FAST ? __fdividef(1.f, 1.f + __expf(-v)) : 1.f / (1.f + expf(-v));
  return kiln_cuda_act(v, ACT, 0.f, 0.f); // NONE, RELU: no parameters
}

template <int ACT, bool FAST>
__device__ __forceinline__ float stem_epi(const StemP &p, float acc, float b, float r) {
  float v = acc + b;
  if (p.res_before) v += r;
  v = stem_act<ACT, FAST>(p, v);
  if (!p.res_before) v += r;
  return v;
}

// Channels oc0 .. oc0+OCB-1 of pixel m. y may alias res exactly (each element is read, then written,
// by this thread), so neither is __restrict__.
template <int ACT, bool FAST, int OCB, typename OutT>
__device__ __forceinline__ void store_px(const StemP &p, const float *sb, const float (&a)[OCB], const OutT *res,
                                         OutT *y, long long m, int oc0) {
  OutT *yp = y + m * p.out_ps + oc0;
  const OutT *rp = p.has_res ? res + m * p.res_ps + oc0 : res; // only dereferenced with p.has_res
  if (p.vec && oc0 + OCB <= p.OC) {
#pragma unroll
    for (int g = 0; g < OCB / 8; g++) {
      float v[8], r[8];
      if (p.has_res) kiln_conv::ld8(rp + 8 * g, r);
      else {
#pragma unroll
        for (int k = 0; k < 8; k++) r[k] = 0.f;
      }
#pragma unroll
      for (int k = 0; k < 8; k++) v[k] = stem_epi<ACT, FAST>(p, a[8 * g + k], sb[8 * g + k], r[k]);
      kiln_conv::st8(yp + 8 * g, v);
    }
  } else {
#pragma unroll
    for (int j = 0; j < OCB; j++)
      if (oc0 + j < p.OC) kiln_st(yp + j, stem_epi<ACT, FAST>(p, a[j], sb[j], p.has_res ? kiln_ld(rp + j) : 0.f));
  }
}

// The input window of row tile t, IC x rows_in x cols_in, zero outside the image, into sx. A warp loads
// one row segment at a time (consecutive addresses). Columns are stored by stride phase (col % SW, then
// col / SW), so for any tap the 32 lanes (output columns SW apart in the input) read consecutive words.
template <int S, typename InT>
__device__ __forceinline__ void stage_tile(const StemP &p, const InT *xn, float *sx, int t, int ow0) {
  const int SW = S ? S : p.SW, SH = S ? S : p.SH;
  const int ih0 = t * TROWS * SH - p.PT, iw0 = ow0 * SW - p.PL;
  for (int r = threadIdx.y; r < p.IC * p.rows_in; r += TY) {
    const int c = r / p.rows_in, ih = ih0 + r - c * p.rows_in;
    const bool rok = ih >= 0 && ih < p.IH;
    const InT *row = xn + ((long long)c * p.IH + (rok ? ih : 0)) * p.IW;
    float *dst = sx + r * p.pitch;
    for (int col = threadIdx.x; col < p.cols_in; col += TX) {
      const int iw = iw0 + col;
      const bool ok = rok && iw >= 0 && iw < p.IW;
      stage(dst + (col % SW) * p.cw + col / SW, ok ? row + iw : row, ok);
    }
  }
  asm volatile("cp.async.commit_group;\n" ::);
}

// KS: 3 = a 3x3 window with dilation 1 (unrolled), 0 = any (from p). S: the stride in both axes, 0 = any.
// A block owns a column strip of one image and OC block, and walks p.tpb row tiles of it. With two input
// buffers the next tile's window is in flight (cp.async) while this one computes: the first version
// (one tile per block: load, wait, compute) kept too few bytes in flight and ran at ~40% of the memory
// floor at batch 32.
template <int OCB, int KS, int S, typename InT, typename OutT>
__global__ void __launch_bounds__(THREADS, 6)
    conv_nchw_kernel(const StemP p, const InT *__restrict__ x, const float *__restrict__ w,
                     const float *__restrict__ bias, const OutT *res, OutT *y) {
  extern __shared__ float4 smem4[];
  float *sw = reinterpret_cast<float *>(smem4), *sb = sw + p.taps * OCB, *sx0 = sb + OCB;
  const int window = p.IC * p.rows_in * p.pitch;
  const int KH = KS ? KS : p.KH, KW = KS ? KS : p.KW, DH = KS ? 1 : p.DH, DW = KS ? 1 : p.DW;
  const int SH = S ? S : p.SH, SW = S ? S : p.SW;
  const int tx = threadIdx.x, ty = threadIdx.y, tid = ty * TX + tx;
  const int n = blockIdx.z / p.n_ocb, ocb = blockIdx.z - n * p.n_ocb;
  const int ow0 = blockIdx.x * TX, t0 = blockIdx.y * p.tpb, t1 = min(t0 + p.tpb, p.n_tiles);
  const InT *xn = x + (long long)n * p.IC * p.IH * p.IW;

  // This OC block's weights (16-byte copies: the blob is 256-byte aligned and taps * OCB % 4 == 0) and
  // bias; they join the first tile's copy group.
  const float4 *wsrc = reinterpret_cast<const float4 *>(w + (size_t)ocb * p.taps * OCB);
  for (int i = tid; i < p.taps * OCB / 4; i += THREADS) stage16(smem4 + i, wsrc + i);
  if (tid < OCB) sb[tid] = __ldg(bias + ocb * OCB + tid);
  if (p.nbuf == 2) stage_tile<S>(p, xn, sx0, t0, ow0);

  const int ow = ow0 + tx, oc0 = ocb * OCB;
  for (int t = t0; t < t1; t++) {
    float *sx = sx0 + (p.nbuf == 2 ? ((t - t0) & 1) * window : 0);
    if (p.nbuf == 1) {
      stage_tile<S>(p, xn, sx, t, ow0);
      asm volatile("cp.async.wait_group 0;\n" ::);
    } else if (t + 1 < t1) {
      stage_tile<S>(p, xn, sx0 + ((t + 1 - t0) & 1) * window, t + 1, ow0);
      asm volatile("cp.async.wait_group 1;\n" ::);
    } else {
      asm volatile("cp.async.wait_group 0;\n" ::);
    }
    __syncthreads();

    float a0[OCB], a1[OCB];
#pragma unroll
    for (int j = 0; j < OCB; j++) a0[j] = a1[j] = 0.f;
    const float *x0 = sx + ty * SH * p.pitch + tx, *x1 = x0 + TY * SH * p.pitch;
    int tap = 0;
    for (int c = 0; c < p.IC; c++)
#pragma unroll
      for (int kh = 0; kh < KH; kh++) {
        const int ro = (c * p.rows_in + kh * DH) * p.pitch;
#pragma unroll
        for (int kw = 0; kw < KW; kw++, tap++) {
          const int off = kw * DW, xo = ro + (off % SW) * p.cw + off / SW;
          const float v0 = x0[xo], v1 = x1[xo];
          const float4 *wv = reinterpret_cast<const float4 *>(sw + tap * OCB);
#pragma unroll
          for (int j = 0; j < OCB / 4; j++) {
            const float4 q = wv[j];
            a0[4 * j] = fmaf(v0, q.x, a0[4 * j]), a1[4 * j] = fmaf(v1, q.x, a1[4 * j]);
            a0[4 * j + 1] = fmaf(v0, q.y, a0[4 * j + 1]), a1[4 * j + 1] = fmaf(v1, q.y, a1[4 * j + 1]);
            a0[4 * j + 2] = fmaf(v0, q.z, a0[4 * j + 2]), a1[4 * j + 2] = fmaf(v1, q.z, a1[4 * j + 2]);
            a0[4 * j + 3] = fmaf(v0, q.w, a0[4 * j + 3]), a1[4 * j + 3] = fmaf(v1, q.w, a1[4 * j + 3]);
          }
        }
      }
    // every thread is done reading sx before the next iteration's copies overwrite the other buffer
    // (two iterations on, this one)
    __syncthreads();

    if (ow < p.OW) {
      const int oh_a = t * TROWS + ty, oh_b = oh_a + TY;
      if (oh_a < p.OH) store_px<-1, false, OCB, OutT>(p, sb, a0, res, y, ((long long)n * p.OH + oh_a) * p.OW + ow, oc0);
      if (oh_b < p.OH) store_px<-1, false, OCB, OutT>(p, sb, a1, res, y, ((long long)n * p.OH + oh_b) * p.OW + ow, oc0);
    }
  }
}

// ---- The YOLO stem, specialised: 3 fp32 input channels, 3x3, stride 2, 16 output channels per block ----
// The generic kernel above is issue-bound on this shape (ncu at batch 32: IPC ~3 of 4, the FMA pipe only
// 29% busy): its window geometry is runtime, so every tap's shared offset, the staging's row / column
// split (an integer division) and per-element bounds checks cost instructions. Here the geometry is
// compile-time, so the 27 taps read shared memory at immediate offsets, and a row of the window is staged
// as 16-byte cp.async chunks (the image width a multiple of 4 floats, so a chunk is entirely inside or
// entirely outside the image and zero-fills as one). Columns stay in image order: the lanes of a warp
// then read words two apart (a 2-way bank conflict on 2 of the 6 shared loads per tap), which is
// cheaper than the instructions a de-interleaving copy would take.
namespace s2 {
constexpr int IC = 3, K = 3, S = 2, OCB = 16, TAPS = IC * K * K;
constexpr int ROWS = (TROWS - 1) * S + K; // 17 input rows per 8 output rows
constexpr int LEAD = 4;                   // the window starts LEAD columns left of 2 * ow0 (16-byte aligned)
constexpr int CHUNKS = ((TX - 1) * S + K + LEAD + 3) / 4; // 16-byte chunks per window row (18)
constexpr int PITCH = CHUNKS * 4;                          // floats per window row (72)
constexpr int WINDOW = IC * ROWS * PITCH;                  // floats per buffer
constexpr int SMEM = (TAPS * OCB + OCB + 2 * WINDOW) * 4;  // two buffers
static_assert(SMEM <= SMEM_MAX, "the specialised stem fits the default shared memory limit");
} // namespace s2

__device__ __forceinline__ void stage_tile_s2(const StemP &p, const float *xn, float *sx, int t, int cs) {
  const int ih0 = t * TROWS * s2::S - p.PT;
  for (int id = threadIdx.y * TX + threadIdx.x; id < s2::IC * s2::ROWS * s2::CHUNKS; id += THREADS) {
    const int r = id / s2::CHUNKS, k = id - r * s2::CHUNKS; // constant divisors: multiply-shift
    const int c = r / s2::ROWS, ih = ih0 + r - c * s2::ROWS, iw = cs + 4 * k;
    const bool ok = ih >= 0 && ih < p.IH && iw >= 0 && iw < p.IW;
    const float *src = ok ? xn + ((long long)c * p.IH + ih) * p.IW + iw : xn;
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(
                     (uint32_t)__cvta_generic_to_shared(sx + r * s2::PITCH + 4 * k)),
                 "l"(src), "r"(ok ? 16 : 0));
  }
  asm volatile("cp.async.commit_group;\n" ::);
}

// Both stem s2 kernels: this OC block's weights (16-byte copies: the blob is 256-byte aligned and
// TAPS * OCB % 4 == 0) and bias, then the first tile's window; the weights join its copy group.
__device__ __forceinline__ void s2_prologue(const StemP &p, const float *w, const float *bias, float4 *sw4, float *sb,
                                            const float *xn, float *sx0, int ocb, int t0, int cs) {
  const int tid = threadIdx.y * TX + threadIdx.x;
  const float4 *wsrc = reinterpret_cast<const float4 *>(w + (size_t)ocb * s2::TAPS * s2::OCB);
  for (int i = tid; i < s2::TAPS * s2::OCB / 4; i += THREADS) stage16(sw4 + i, wsrc + i);
  if (tid < s2::OCB) sb[tid] = __ldg(bias + ocb * s2::OCB + tid);
  stage_tile_s2(p, xn, sx0, t0, cs);
}

// Row tile t of t0..t1-1: start the next tile's copies into the other buffer (an empty group after the
// last tile), wait for all but those, and return this tile's window.
__device__ __forceinline__ const float *s2_next_tile(const StemP &p, const float *xn, float *sx0, int t, int t0, int t1,
                                                     int cs) {
  if (t + 1 < t1) stage_tile_s2(p, xn, sx0 + ((t + 1 - t0) & 1) * s2::WINDOW, t + 1, cs);
  else asm volatile("cp.async.commit_group;\n" ::);
  asm volatile("cp.async.wait_group 1;\n" ::);
  __syncthreads();
  return sx0 + ((t - t0) & 1) * s2::WINDOW;
}

template <typename OutT, int ACT>
__global__ void __launch_bounds__(THREADS, 6)
    conv_stem_s2_kernel(const StemP p, const float *__restrict__ x, const float *__restrict__ w,
                        const float *__restrict__ bias, const OutT *res, OutT *y) {
  extern __shared__ float4 smem4[];
  float *sw = reinterpret_cast<float *>(smem4), *sb = sw + s2::TAPS * s2::OCB, *sx0 = sb + s2::OCB;
  const int tx = threadIdx.x, ty = threadIdx.y;
  const int n = blockIdx.z / p.n_ocb, ocb = blockIdx.z - n * p.n_ocb;
  const int ow0 = blockIdx.x * TX, t0 = blockIdx.y * p.tpb, t1 = min(t0 + p.tpb, p.n_tiles);
  const int cs = ow0 * s2::S - s2::LEAD; // the window's first column (a multiple of 4)
  const float *xn = x + (long long)n * s2::IC * p.IH * p.IW;

  s2_prologue(p, w, bias, smem4, sb, xn, sx0, ocb, t0, cs);

  const int ow = ow0 + tx, oc0 = ocb * s2::OCB;
  // this thread's first tap: output row ty (and ty + 4), column tx; input column 2 * ow - PL
  const int base = ty * s2::S * s2::PITCH + s2::LEAD - p.PL + s2::S * tx;
  for (int t = t0; t < t1; t++) {
    const float *sx = s2_next_tile(p, xn, sx0, t, t0, t1, cs);

    float a0[s2::OCB], a1[s2::OCB];
#pragma unroll
    for (int j = 0; j < s2::OCB; j++) a0[j] = a1[j] = 0.f;
    const float *x0 = sx + base;
#pragma unroll
    for (int c = 0; c < s2::IC; c++)
#pragma unroll
      for (int kh = 0; kh < s2::K; kh++)
#pragma unroll
        for (int kw = 0; kw < s2::K; kw++) {
          const int tap = (c * s2::K + kh) * s2::K + kw, xo = (c * s2::ROWS + kh) * s2::PITCH + kw;
          const float v0 = x0[xo], v1 = x0[xo + TY * s2::S * s2::PITCH];
          const float4 *wv = reinterpret_cast<const float4 *>(sw + tap * s2::OCB);
#pragma unroll
          for (int j = 0; j < s2::OCB / 4; j++) {
            const float4 q = wv[j];
            a0[4 * j] = fmaf(v0, q.x, a0[4 * j]), a1[4 * j] = fmaf(v1, q.x, a1[4 * j]);
            a0[4 * j + 1] = fmaf(v0, q.y, a0[4 * j + 1]), a1[4 * j + 1] = fmaf(v1, q.y, a1[4 * j + 1]);
            a0[4 * j + 2] = fmaf(v0, q.z, a0[4 * j + 2]), a1[4 * j + 2] = fmaf(v1, q.z, a1[4 * j + 2]);
            a0[4 * j + 3] = fmaf(v0, q.w, a0[4 * j + 3]), a1[4 * j + 3] = fmaf(v1, q.w, a1[4 * j + 3]);
          }
        }
    __syncthreads(); // all reads of this buffer are done before the copy two tiles on overwrites it

    if (ow < p.OW) {
      const int oh_a = t * TROWS + ty, oh_b = oh_a + TY;
      if (oh_a < p.OH) store_px<ACT, sizeof(OutT) == 2, s2::OCB, OutT>(p, sb, a0, res, y, ((long long)n * p.OH + oh_a) * p.OW + ow, oc0);
      if (oh_b < p.OH) store_px<ACT, sizeof(OutT) == 2, s2::OCB, OutT>(p, sb, a1, res, y, ((long long)n * p.OH + oh_b) * p.OW + ow, oc0);
    }
  }
}

// The same stem on tensor cores, for fp16 engines (fp16 output, 16-byte aligned stores): the window stays
// fp32 in shared memory as above, and each warp gathers its im2col A fragments from it (K = 27 taps padded
// to 32: two m16n8k16 steps), rounding to fp16 on the way, against weights held in registers as fp16 B
// fragments for the whole block. Per 64 output pixels a lane issues 64 shared loads, 32 packs and 16 mma
// instead of the FFMA kernel's ~1,000 FMA and shared loads: the FMA-bound inner loop becomes small next
// to the staging and the epilogue. Warp w owns output rows 2w and 2w + 1 of the tile, four m16 tiles of
// 16 columns; lane (g = lane / 4, q = lane % 4) holds pixels g and g + 8 of each.
template <int ACT>
__global__ void __launch_bounds__(THREADS, 6)
    conv_stem_s2_mma_kernel(const StemP p, const float *__restrict__ x, const float *__restrict__ w,
                            const float *__restrict__ bias, const __half *res, __half *y) {
  extern __shared__ float4 smem4[];
  float *sw = reinterpret_cast<float *>(smem4), *sb = sw + s2::TAPS * s2::OCB, *sx0 = sb + s2::OCB;
  const int tid = threadIdx.y * TX + threadIdx.x, warp = tid >> 5, lane = tid & 31, g = lane >> 2, q = lane & 3;
  const int n = blockIdx.z / p.n_ocb, ocb = blockIdx.z - n * p.n_ocb;
  const int ow0 = blockIdx.x * TX, t0 = blockIdx.y * p.tpb, t1 = min(t0 + p.tpb, p.n_tiles);
  const int cs = ow0 * s2::S - s2::LEAD;
  const float *xn = x + (long long)n * s2::IC * p.IH * p.IW;

  s2_prologue(p, w, bias, smem4, sb, xn, sx0, ocb, t0, cs);

  // This lane's 8 taps (k = 16 s + 2 q + {0, 1} + {0, 8}, s = 0, 1) as window offsets; taps past 27 are zero.
  int koff[8];
  bool kok[8];
#pragma unroll
  for (int s = 0; s < 2; s++)
#pragma unroll
    for (int h = 0; h < 2; h++)
#pragma unroll
      for (int e = 0; e < 2; e++) {
        const int k = 16 * s + 8 * h + 2 * q + e, i = 4 * s + 2 * h + e;
        const int kk = k < s2::TAPS ? k : 0, c = kk / 9, kh = (kk / 3) % 3, kw = kk % 3;
        koff[i] = (c * s2::ROWS + kh) * s2::PITCH + kw;
        kok[i] = k < s2::TAPS;
      }

  const int base = 2 * warp * s2::S * s2::PITCH + s2::LEAD - p.PL; // row 2 * warp, column 0 of the tile
  for (int t = t0; t < t1; t++) {
    const float *sx = s2_next_tile(p, xn, sx0, t, t0, t1, cs);

    // B fragments (the weights, fp16): b[s][j] for k-step s and output channels 8 j .. 8 j + 7.
    uint32_t b[2][2][2];
#pragma unroll
    for (int s = 0; s < 2; s++)
#pragma unroll
      for (int j = 0; j < 2; j++)
#pragma unroll
        for (int h = 0; h < 2; h++) {
          const int k = 16 * s + 8 * h + 2 * q, oc = 8 * j + g;
          const float lo = k < s2::TAPS ? sw[k * s2::OCB + oc] : 0.f, hi = k + 1 < s2::TAPS ? sw[(k + 1) * s2::OCB + oc] : 0.f;
          __half2 v = __floats2half2_rn(lo, hi);
          b[s][j][h] = *reinterpret_cast<uint32_t *>(&v);
        }

    float acc[4][2][4];
#pragma unroll
    for (int mt = 0; mt < 4; mt++) {
#pragma unroll
      for (int j = 0; j < 2; j++)
#pragma unroll
        for (int e = 0; e < 4; e++) acc[mt][j][e] = 0.f;
      // pixel rows: tile row 2 * warp + mt / 2, columns 16 (mt % 2) + g and + 8
      const float *p0 = sx + base + (mt >> 1) * s2::S * s2::PITCH + s2::S * (16 * (mt & 1) + g);
      const float *p1 = p0 + s2::S * 8;
#pragma unroll
      for (int s = 0; s < 2; s++) {
        uint32_t a[4];
#pragma unroll
        for (int h = 0; h < 2; h++) {
          const int i = 4 * s + 2 * h;
          const float x00 = kok[i] ? p0[koff[i]] : 0.f, x01 = kok[i + 1] ? p0[koff[i + 1]] : 0.f;
          const float x10 = kok[i] ? p1[koff[i]] : 0.f, x11 = kok[i + 1] ? p1[koff[i + 1]] : 0.f;
          __half2 v0 = __floats2half2_rn(x00, x01), v1 = __floats2half2_rn(x10, x11);
          a[2 * h] = *reinterpret_cast<uint32_t *>(&v0);     // rows g, k 2q (+8 h)
          a[2 * h + 1] = *reinterpret_cast<uint32_t *>(&v1); // rows g + 8
        }
#pragma unroll
        for (int j = 0; j < 2; j++) kiln_conv::mma16816(acc[mt][j], a, b[s][j]);
      }
    }
    __syncthreads(); // all reads of this buffer are done before the copy two tiles on overwrites it

    const int oc0 = ocb * s2::OCB;
#pragma unroll
    for (int mt = 0; mt < 4; mt++) {
      const int oh = t * TROWS + 2 * warp + (mt >> 1);
      if (oh >= p.OH) continue;
#pragma unroll
      for (int r = 0; r < 2; r++) {
        const int ow = ow0 + 16 * (mt & 1) + g + 8 * r;
        if (ow >= p.OW) continue;
        const long long m = ((long long)n * p.OH + oh) * p.OW + ow;
#pragma unroll
        for (int j = 0; j < 2; j++) {
          const int oc = 8 * j + 2 * q;
          if (oc0 + oc >= p.OC) continue; // OC is a multiple of 8 here (checked at launch): pairs stay whole
          float2 rv = make_float2(0.f, 0.f);
          if (p.has_res) rv = __half22float2(*reinterpret_cast<const __half2 *>(res + m * p.res_ps + oc0 + oc));
          const float v0 = stem_epi<ACT, true>(p, acc[mt][j][2 * r], sb[oc], rv.x);
          const float v1 = stem_epi<ACT, true>(p, acc[mt][j][2 * r + 1], sb[oc + 1], rv.y);
          *reinterpret_cast<__half2 *>(y + m * p.out_ps + oc0 + oc) = __floats2half2_rn(v0, v1);
        }
      }
    }
  }
}

template <int ACT>
void launch_s2_mma(const StemP &p, dim3 grid, cudaStream_t s, const float *x, const float *w, const float *b,
                   const void *res, void *y) {
  conv_stem_s2_mma_kernel<ACT><<<grid, dim3(TX, TY), s2::SMEM, s>>>(p, x, w, b, (const __half *)res, (__half *)y);
}

void launch_s2_mma(const StemP &p, dim3 grid, cudaStream_t s, const float *x, const float *w, const float *b,
                   const void *res, void *y) {
  switch (p.act) {
  case KILN_ACT_SILU: launch_s2_mma<KILN_ACT_SILU>(p, grid, s, x, w, b, res, y); break;
  case KILN_ACT_SIGMOID: launch_s2_mma<KILN_ACT_SIGMOID>(p, grid, s, x, w, b, res, y); break;
  case KILN_ACT_RELU: launch_s2_mma<KILN_ACT_RELU>(p, grid, s, x, w, b, res, y); break;
  default: launch_s2_mma<KILN_ACT_NONE>(p, grid, s, x, w, b, res, y); break;
  }
}

// The specialised stem applies: 3 fp32 channels, 3x3 dilation 1, stride 2 both ways, left pad 1..LEAD,
// a width that is a multiple of 4 (whole 16-byte chunks) and a 16-byte aligned input.
bool stem_s2_applies(const kiln_cuda_conv_desc *d, const void *x) {
  return d->in_c == s2::IC && d->kernel_h == 3 && d->kernel_w == 3 && d->stride_h == 2 && d->stride_w == 2 &&
         d->dilation_h == 1 && d->dilation_w == 1 && d->out_c > 8 && d->pad_left >= 1 && d->pad_left <= s2::LEAD &&
         d->in_w % 4 == 0 && (uintptr_t)x % 16 == 0 && (d->in_dtype ? d->in_dtype : d->compute) == KILN_CUDA_F32 &&
         (d->out_dtype == KILN_CUDA_F16) == (d->compute == KILN_CUDA_F16) && // FAST follows the output type
         (d->epilogue.act == KILN_ACT_NONE || d->epilogue.act == KILN_ACT_RELU || d->epilogue.act == KILN_ACT_SILU ||
          d->epilogue.act == KILN_ACT_SIGMOID);
}

template <typename OutT, int ACT>
void launch_s2(const StemP &p, dim3 grid, cudaStream_t s, const float *x, const float *w, const float *b,
               const void *res, void *y) {
  conv_stem_s2_kernel<OutT, ACT><<<grid, dim3(TX, TY), s2::SMEM, s>>>(p, x, w, b, (const OutT *)res, (OutT *)y);
}

template <typename OutT>
void launch_s2(const StemP &p, dim3 grid, cudaStream_t s, const float *x, const float *w, const float *b,
               const void *res, void *y) {
  switch (p.act) {
  case KILN_ACT_SILU: launch_s2<OutT, KILN_ACT_SILU>(p, grid, s, x, w, b, res, y); break;
  case KILN_ACT_SIGMOID: launch_s2<OutT, KILN_ACT_SIGMOID>(p, grid, s, x, w, b, res, y); break;
  case KILN_ACT_RELU: launch_s2<OutT, KILN_ACT_RELU>(p, grid, s, x, w, b, res, y); break;
  default: launch_s2<OutT, KILN_ACT_NONE>(p, grid, s, x, w, b, res, y); break;
  }
}

// 0: OC <= 8, any window; 1: 3x3 stride 2 (the YOLO stem); 2: 3x3 stride 1; 3: any window.
int variant_of(const kiln_cuda_conv_desc *d, const Geo &g) {
  if (g.ocb == 8) return 0;
  if (d->kernel_h == 3 && d->kernel_w == 3 && d->dilation_h == 1 && d->dilation_w == 1 && d->stride_h == d->stride_w &&
      (d->stride_h == 1 || d->stride_h == 2))
    return d->stride_h == 2 ? 1 : 2;
  return 3;
}

template <typename InT, typename OutT>
void launch(int variant, const StemP &p, dim3 grid, int smem, cudaStream_t s, const void *x, const float *w,
            const float *b, const void *res, void *y) {
  const dim3 block(TX, TY);
  const InT *xi = (const InT *)x;
  const OutT *r = (const OutT *)res;
  OutT *yo = (OutT *)y;
  switch (variant) {
  case 0: conv_nchw_kernel<8, 0, 0, InT, OutT><<<grid, block, smem, s>>>(p, xi, w, b, r, yo); break;
  case 1: conv_nchw_kernel<16, 3, 2, InT, OutT><<<grid, block, smem, s>>>(p, xi, w, b, r, yo); break;
  case 2: conv_nchw_kernel<16, 3, 1, InT, OutT><<<grid, block, smem, s>>>(p, xi, w, b, r, yo); break;
  default: conv_nchw_kernel<16, 0, 0, InT, OutT><<<grid, block, smem, s>>>(p, xi, w, b, r, yo); break;
  }
}

kiln_cuda_dtype in_dtype_of(const kiln_cuda_conv_desc *d) { return d->in_dtype ? d->in_dtype : d->compute; }

} // namespace

extern "C" kiln_status kiln_cuda_conv_nchw_check(const kiln_cuda_conv_desc *d) {
  if (!d->in_layout_nchw) {
    if (d->in_dtype && d->in_dtype != d->compute)
      return kiln_error(KILN_ERR_UNSUPPORTED, "cuda conv: an input type other than the compute type needs in_layout_nchw");
    return NULL;
  }
  if (d->group != 1 || d->in_c > MAX_IC)
    return kiln_error(KILN_ERR_UNSUPPORTED, "cuda conv: the NCHW-input path takes group-1 convs with at most %d input "
                      "channels (got group %lld, %lld channels)", MAX_IC, (long long)d->group, (long long)d->in_c);
  if (d->in_pixel_stride || d->in_zero_padded)
    return kiln_error(KILN_ERR_SHAPE, "cuda conv: an NCHW input has no pixel stride or channel padding");
  kiln_cuda_dtype it = in_dtype_of(d);
  if (it != KILN_CUDA_F32 && it != KILN_CUDA_F16)
    return kiln_error(KILN_ERR_UNSUPPORTED, "cuda conv: the NCHW input must be fp32 or fp16");
  Geo g = geo_of(d);
  if (g.smem_bytes > SMEM_MAX)
    return kiln_error(KILN_ERR_UNSUPPORTED, "cuda conv: the NCHW-input path needs %lld bytes of shared memory for this "
                      "window (at most %lld)", (long long)g.smem_bytes, (long long)SMEM_MAX);
  if ((d->out_h + TROWS - 1) / TROWS > 65535 || d->batch * g.n_ocb > 65535 ||
      d->batch * d->in_c * d->in_h * d->in_w > ((int64_t)1 << 40))
    return kiln_error(KILN_ERR_UNSUPPORTED, "cuda conv: tensor too large for the NCHW-input path's grid");
  return NULL;
}

extern "C" int kiln_cuda_conv_nchw_supported(const kiln_cuda_conv_desc *d) {
  if (!d) return 0;
  kiln_cuda_conv_desc c = *d;
  c.in_layout_nchw = 1, c.in_pixel_stride = 0, c.in_zero_padded = 0, c.tactic = 0;
  kiln_status st = kiln_cuda_conv_validate(&c);
  kiln_status_destroy(st);
  return st == NULL;
}

extern "C" size_t kiln_cuda_conv_nchw_packed_size(const kiln_cuda_conv_desc *d) { return geo_of(d).total; }

extern "C" void kiln_cuda_conv_nchw_pack(const kiln_cuda_conv_desc *d, const float *weights, const float *bias,
                                         void *packed) {
  Geo g = geo_of(d);
  memset(packed, 0, g.total); // the padding channels of the last OC block compute zeros, never stored
  float *wp = (float *)packed;
  const int64_t KH = d->kernel_h, KW = d->kernel_w, IC = d->in_c;
  for (int64_t oc = 0; oc < d->out_c; oc++)
    for (int64_t c = 0; c < IC; c++)
      for (int64_t kh = 0; kh < KH; kh++)
        for (int64_t kw = 0; kw < KW; kw++) {
          const int64_t tap = (c * KH + kh) * KW + kw;
          wp[((oc / g.ocb) * g.taps + tap) * g.ocb + oc % g.ocb] = weights[((oc * IC + c) * KH + kh) * KW + kw];
        }
  if (bias && d->has_bias) memcpy((char *)packed + g.bias_off, bias, (size_t)d->out_c * sizeof(float));
}

extern "C" const char *kiln_cuda_conv_nchw_name(const kiln_cuda_conv_desc *d) {
  return d->compute == KILN_CUDA_F16 ? "conv_direct_nchw.f16" : "conv_direct_nchw.f32";
}

extern "C" kiln_status kiln_cuda_conv_nchw_run(const kiln_cuda_conv_desc *d, const void *packed, const void *x,
                                               const void *residual, void *y, kiln_cuda_stream stream) {
  return kiln_cuda_conv_nchw_run_tiles(d, packed, x, residual, y, stream, 0);
}

extern "C" kiln_status kiln_cuda_conv_nchw_run_tiles(const kiln_cuda_conv_desc *d, const void *packed, const void *x,
                                                     const void *residual, void *y, kiln_cuda_stream stream,
                                                     int tiles_per_block) {
  const Geo g = geo_of(d);
  StemP p;
  p.N = (int)d->batch, p.IC = (int)d->in_c, p.IH = (int)d->in_h, p.IW = (int)d->in_w;
  p.OC = (int)d->out_c, p.OH = (int)d->out_h, p.OW = (int)d->out_w;
  p.KH = (int)d->kernel_h, p.KW = (int)d->kernel_w, p.SH = (int)d->stride_h, p.SW = (int)d->stride_w;
  p.PT = (int)d->pad_top, p.PL = (int)d->pad_left, p.DH = (int)d->dilation_h, p.DW = (int)d->dilation_w;
  p.taps = (int)g.taps, p.rows_in = (int)g.rows_in, p.cw = (int)g.cw, p.pitch = (int)g.pitch;
  p.cols_in = (int)g.cols_in, p.n_ocb = (int)g.n_ocb;
  p.out_ps = d->out_pixel_stride ? d->out_pixel_stride : d->out_c_offset + d->out_c;
  p.res_ps = d->residual_pixel_stride ? d->residual_pixel_stride : d->out_c;
  p.act = (int)d->epilogue.act, p.alpha = d->epilogue.alpha, p.beta = d->epilogue.beta;
  p.has_res = d->has_residual && residual, p.res_before = p.has_res && d->epilogue.residual_before_act;
  p.fast = d->compute == KILN_CUDA_F16;
  const bool f16out = d->out_dtype == KILN_CUDA_F16;
  const size_t osz = f16out ? 2 : 4;
  const long long per16 = (long long)(16 / osz); // elements in 16 bytes
  char *yo = (char *)y + d->out_c_offset * osz;
  p.vec = p.out_ps % per16 == 0 && (uintptr_t)yo % 16 == 0 &&
          (!p.has_res || (p.res_ps % per16 == 0 && (uintptr_t)residual % 16 == 0));
  const float *w = (const float *)packed, *bias = (const float *)((const char *)packed + g.bias_off);
  // Row tiles per block: enough blocks for ~4 waves of resident blocks (7 per SM fit, by registers),
  // each walking as many tiles as that leaves (up to 16), so the copy of one overlaps the math of another.
  int sms = 132, dev = 0;
  if (tiles_per_block <= 0 && (cudaGetDevice(&dev) != cudaSuccess ||
                               cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev) != cudaSuccess)) {
    (void)cudaGetLastError(); // a guess only: the launch below reports real errors, not this one
    sms = 132;
  }
  const int64_t gx = (d->out_w + TX - 1) / TX, gz = d->batch * g.n_ocb, n_tiles = (d->out_h + TROWS - 1) / TROWS;
  int64_t tpb = (gx * gz * n_tiles) / ((int64_t)sms * 7 * 4);
  if (tiles_per_block > 0) tpb = tiles_per_block;
  tpb = tpb < 1 ? 1 : tpb > 16 ? 16 : tpb;
  const int64_t gy = (n_tiles + tpb - 1) / tpb;
  tpb = (n_tiles + gy - 1) / gy; // the same groups, evened out
  p.n_tiles = (int)n_tiles, p.tpb = (int)tpb, p.nbuf = (int)g.nbuf;
  const dim3 grid((unsigned)gx, (unsigned)gy, (unsigned)gz);
  const int v = variant_of(d, g), smem = (int)g.smem_bytes;
  cudaStream_t s = (cudaStream_t)stream;
  if (stem_s2_applies(d, x)) {
    p.nbuf = 2;
    // tensor cores for fp16 engines when every pixel's channels allow 4-byte stores (and OC % 8 == 0)
    if (f16out && p.vec && d->out_c % 8 == 0) launch_s2_mma(p, grid, s, (const float *)x, w, bias, residual, yo);
    else if (f16out) launch_s2<__half>(p, grid, s, (const float *)x, w, bias, residual, yo);
    else launch_s2<float>(p, grid, s, (const float *)x, w, bias, residual, yo);
    KILN_CUDA_LAUNCH_CHECK();
    return NULL;
  }
  const bool f16in = in_dtype_of(d) == KILN_CUDA_F16;
  if (f16in && f16out) launch<__half, __half>(v, p, grid, smem, s, x, w, bias, residual, yo);
  else if (f16in) launch<__half, float>(v, p, grid, smem, s, x, w, bias, residual, yo);
  else if (f16out) launch<float, __half>(v, p, grid, smem, s, x, w, bias, residual, yo);
  else launch<float, float>(v, p, grid, smem, s, x, w, bias, residual, yo);
  KILN_CUDA_LAUNCH_CHECK();
  return NULL;
}
