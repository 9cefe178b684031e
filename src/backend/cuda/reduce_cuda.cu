// Reductions and ArgMax/ArgMin over [outer][len][inner] (see reduce_cuda.h).
#include "backend/cuda/reduce_cuda.h"
#include "backend/cuda/cuda_common.cuh"

#include <math.h>

namespace {

constexpr unsigned MAX_BLOCKS = 65536u * 4;

// One running reduction. Every op keeps at most two floats: a (the accumulator, or the running max for
// LogSumExp) and b (LogSumExp's sum of exp(x - a)). The op is a runtime value: it is uniform across the
// grid, so the switch costs a predictable branch next to a memory-bound loop, and one kernel per shape
// serves all ten ops instead of thirty template instances.
struct Red {
  int op;
  float a, b;
  __device__ void init(int o) {
    op = o, b = 0.f;
    switch (op) {
    case KILN_CUDA_REDUCE_PROD: a = 1.f; break;
    case KILN_CUDA_REDUCE_MAX: case KILN_CUDA_REDUCE_LOG_SUM_EXP: a = -INFINITY; break;
    case KILN_CUDA_REDUCE_MIN: a = INFINITY; break;
    default: a = 0.f;
    }
  }
  __device__ void add(float x, long long) {
    switch (op) {
    case KILN_CUDA_REDUCE_PROD: a *= x; break;
    // NaN propagates (x != x), as numpy and ONNX Runtime's max/min do.
    case KILN_CUDA_REDUCE_MAX: a = (x > a || x != x) ? x : a; break;
    case KILN_CUDA_REDUCE_MIN: a = (x < a || x != x) ? x : a; break;
    case KILN_CUDA_REDUCE_L1: a += fabsf(x); break;
    case KILN_CUDA_REDUCE_L2: case KILN_CUDA_REDUCE_SUM_SQUARE: a = fmaf(x, x, a); break;
    case KILN_CUDA_REDUCE_LOG_SUM_EXP:
      // Online form: rescale the running sum when a new maximum arrives, so exp never overflows.
      if (x > a) b = b * expf(a - x) + 1.f, a = x;
      else if (x > -INFINITY) b += expf(x - a);
      break;
    default: a += x;
    }
  }
  __device__ void merge(float oa, float ob) {
    switch (op) {
    case KILN_CUDA_REDUCE_PROD: a *= oa; break;
    case KILN_CUDA_REDUCE_MAX: case KILN_CUDA_REDUCE_MIN: add(oa, 0); break;
    case KILN_CUDA_REDUCE_LOG_SUM_EXP: {
      float m = fmaxf(a, oa);
      // A side with an empty sum (still -inf max) must contribute 0, not 0 * exp(NaN).
      b = (b == 0.f ? 0.f : b * expf(a - m)) + (ob == 0.f ? 0.f : ob * expf(oa - m));
      a = m;
      break;
    }
    default: a += oa;
    }
  }
  __device__ void shfl_merge(int o) {
    float oa = __shfl_xor_sync(0xffffffffu, a, o), ob = __shfl_xor_sync(0xffffffffu, b, o);
    merge(oa, ob);
  }
  __device__ float result(long long len) const {
    switch (op) {
    case KILN_CUDA_REDUCE_MEAN: return a / (float)len;
    case KILN_CUDA_REDUCE_L2: return sqrtf(a);
    case KILN_CUDA_REDUCE_LOG_SUM: return logf(a);
    case KILN_CUDA_REDUCE_LOG_SUM_EXP: return a + logf(b);
    default: return a;
    }
  }
  template <typename T> __device__ void store(T *y, long long len) const { kiln_st(y, result(len)); }
};

// Running arg-extremum: the best value and its index; ties resolved by index so any merge order gives
// the first (or last) occurrence. idx -1 = nothing seen yet.
struct Arg {
  int op; // bit 0: min, bit 1: select last
  float v;
  long long i;
  __device__ void init(int o) { op = o, v = 0.f, i = -1; }
  __device__ bool better(float ov, long long oi) const {
    if (oi < 0) return false;
    if (i < 0) return true;
    bool gt = (op & 1) ? ov < v : ov > v;
    if (gt) return true;
    if (ov == v) return (op & 2) ? oi > i : oi < i;
    return false;
  }
  __device__ void add(float x, long long j) {
    if (better(x, j)) v = x, i = j;
  }
  __device__ void shfl_merge(int o) {
    float ov = __shfl_xor_sync(0xffffffffu, v, o);
    long long oi = __shfl_xor_sync(0xffffffffu, i, o);
    add(ov, oi);
  }
  __device__ void store(int64_t *y, long long) const { *y = i; }
};

// Shared-memory slot for a partial result of either reducer.
struct Slot {
  float a, b;
  long long i;
};
__device__ __forceinline__ void save(const Red &r, Slot &s) { s.a = r.a, s.b = r.b; }
__device__ __forceinline__ void load_merge(Red &r, const Slot &s) { r.merge(s.a, s.b); }
__device__ __forceinline__ void save(const Arg &r, Slot &s) { s.a = r.v, s.i = r.i; }
__device__ __forceinline__ void load_merge(Arg &r, const Slot &s) { r.add(s.a, s.i); }

// inner == 1, short rows: one warp per row, lanes stride the row (coalesced), then a shuffle tree.
template <class R, typename T, typename TY>
__global__ void row_warp_kernel(int op, const T *x, TY *y, long long rows, long long len) {
  const int lane = threadIdx.x & 31;
  long long row = (blockIdx.x * (long long)blockDim.x + threadIdx.x) >> 5;
  const long long nwarps = ((long long)gridDim.x * blockDim.x) >> 5;
  for (; row < rows; row += nwarps) {
    const T *xr = x + row * len;
    R r;
    r.init(op);
    for (long long j = lane; j < len; j += 32) r.add(kiln_ld(xr + j), j);
    for (int o = 16; o; o >>= 1) r.shfl_merge(o);
    if (lane == 0) r.store(y + row, len);
  }
}

// inner == 1, long rows: one 256-thread block per row; warp shuffles, then the 8 warp partials through
// shared memory and a last shuffle in warp 0.
template <class R, typename T, typename TY>
__global__ void __launch_bounds__(256) row_block_kernel(int op, const T *x, TY *y, long long rows, long long len) {
  __shared__ Slot part[8];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  for (long long row = blockIdx.x; row < rows; row += gridDim.x) {
    const T *xr = x + row * len;
    R r;
    r.init(op);
    for (long long j = threadIdx.x; j < len; j += 256) r.add(kiln_ld(xr + j), j);
    for (int o = 16; o; o >>= 1) r.shfl_merge(o);
    if (lane == 0) save(r, part[warp]);
    __syncthreads();
    if (warp == 0) {
      R w;
      w.init(op);
      if (lane < 8) load_merge(w, part[lane]);
      for (int o = 4; o; o >>= 1) w.shfl_merge(o);
      if (lane == 0) w.store(y + row, len);
    }
    __syncthreads(); // part[] is reused by the next row
  }
}

// inner > 1: block (32, 8). Thread x owns column col = (o, i) of the flattened [outer][inner] output,
// so a warp reads 32 consecutive elements per step; the 8 thread rows split len and meet in shared
// memory.
template <class R, typename T, typename TY>
__global__ void __launch_bounds__(256) col_kernel(int op, const T *x, TY *y, long long outer, long long len,
                                                  long long inner) {
  __shared__ Slot part[8][33];
  const int tx = threadIdx.x, ty = threadIdx.y;
  const long long cols = outer * inner;
  for (long long c0 = (long long)blockIdx.x * 32; c0 < cols; c0 += (long long)gridDim.x * 32) {
    long long col = c0 + tx;
    R r;
    r.init(op);
    if (col < cols) {
      const T *xc = x + (col / inner) * len * inner + col % inner;
      for (long long j = ty; j < len; j += 8) r.add(kiln_ld(xc + j * inner), j);
    }
    save(r, part[ty][tx]);
    __syncthreads();
    if (ty == 0 && col < cols) {
      // Merging in thread-row order keeps ArgMax's ties deterministic (indices break them anyway).
      for (int k = 1; k < 8; k++) load_merge(r, part[k][tx]);
      r.store(y + col, len);
    }
    __syncthreads();
  }
}

template <class R, typename T, typename TY>
kiln_status launch(int op, const T *x, TY *y, long long outer, long long len, long long inner, cudaStream_t s) {
  if (inner == 1 && len > 1024) {
    unsigned g = (unsigned)(outer < (long long)MAX_BLOCKS ? outer : MAX_BLOCKS);
    row_block_kernel<R><<<g, 256, 0, s>>>(op, x, y, outer, len);
  } else if (inner == 1) {
    unsigned g = kiln_cuda_blocks(outer * 32, 256);
    if (g > MAX_BLOCKS) g = MAX_BLOCKS;
    row_warp_kernel<R><<<g, 256, 0, s>>>(op, x, y, outer, len);
  } else {
    unsigned g = kiln_cuda_blocks(outer * inner, 32);
    if (g > MAX_BLOCKS) g = MAX_BLOCKS;
    col_kernel<R><<<g, dim3(32, 8), 0, s>>>(op, x, y, outer, len, inner);
  }
  KILN_CUDA_LAUNCH_CHECK();
  return NULL;
}

bool is_float(kiln_cuda_dtype t) { return t == KILN_CUDA_F32 || t == KILN_CUDA_F16; }

} // namespace

extern "C" kiln_status kiln_cuda_reduce(kiln_cuda_reduce_op op, kiln_cuda_dtype dt, int64_t outer, int64_t len,
                                        int64_t inner, const void *x, void *y, kiln_cuda_stream stream) {
  if (!is_float(dt) || (int)op < 0 || op > KILN_CUDA_REDUCE_LOG_SUM_EXP || outer < 0 || len < 0 || inner < 0)
    return kiln_error(KILN_ERR_INVALID_ARGUMENT, "cuda reduce: bad op, type or shape");
  if (!outer || !inner) return NULL;
  cudaStream_t s = (cudaStream_t)stream;
  if (dt == KILN_CUDA_F32) return launch<Red>((int)op, (const float *)x, (float *)y, outer, len, inner, s);
  return launch<Red>((int)op, (const __half *)x, (__half *)y, outer, len, inner, s);
}

extern "C" kiln_status kiln_cuda_argreduce(int is_min, int select_last, kiln_cuda_dtype dt, int64_t outer,
                                           int64_t len, int64_t inner, const void *x, int64_t *y,
                                           kiln_cuda_stream stream) {
  if (!is_float(dt) || outer < 0 || len < 1 || inner < 0)
    return kiln_error(KILN_ERR_INVALID_ARGUMENT, "cuda argmax/argmin: bad type or shape (len must be >= 1)");
  if (!outer || !inner) return NULL;
  int op = (is_min ? 1 : 0) | (select_last ? 2 : 0);
  cudaStream_t s = (cudaStream_t)stream;
  if (dt == KILN_CUDA_F32) return launch<Arg>(op, (const float *)x, y, outer, len, inner, s);
  return launch<Arg>(op, (const __half *)x, y, outer, len, inner, s);
}
