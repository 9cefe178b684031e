// Strided N-D copy, Gather along one axis and Pad, by element size (see copy_cuda.h).
#include "backend/cuda/copy_cuda.h"
#include "backend/cuda/cuda_common.cuh"

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

constexpr int R = KILN_CUDA_COPY_MAX_RANK;

struct CopyP {
  int rank;
  long long dims[R], ss[R], ds[R];
  long long soff, total;
};

// One thread per copied element, in dst order (the innermost dim fastest), so whichever side is dense
// coalesces; the index is peeled from the last dim.
template <typename T>
__global__ void strided_copy_kernel(CopyP p, const T *src, T *dst) {
  GRID_STRIDE(i, p.total) {
    long long t = i, so = p.soff, dof = 0;
    for (int d = p.rank - 1; d >= 0; d--) {
      long long k = t % p.dims[d];
      t /= p.dims[d];
      so += k * p.ss[d], dof += k * p.ds[d];
    }
    dst[dof] = src[so];
  }
}

template <typename T>
__global__ void gather_kernel(const T *x, const int64_t *idx, T *y, long long n, long long axis, long long inner,
                              long long total) {
  GRID_STRIDE(i, total) {
    long long in = i % inner, t = i / inner, j = t % n, o = t / n;
    long long k = idx[j];
    if (k < 0) k += axis;
    y[i] = (k >= 0 && k < axis) ? x[(o * axis + k) * inner + in] : T(0);
  }
}

struct PadP {
  int rank, mode;
  long long in[R], out[R], pb[R];
  long long total;
  unsigned long long value; // the constant element's bytes (low elem_size bytes used)
};

template <typename T>
__global__ void pad_kernel(PadP p, const T *x, T *y) {
  T val;
  memcpy(&val, &p.value, sizeof(T));
  GRID_STRIDE(i, p.total) {
    long long t = i, xo = 0, mul = 1;
    bool outside = false;
    for (int d = p.rank - 1; d >= 0; d--) {
      long long o = t % p.out[d], n = p.in[d];
      t /= p.out[d];
      long long k = o - p.pb[d];
      if (k < 0 || k >= n) {
        if (p.mode == KILN_CUDA_PAD_CONSTANT) {
          outside = true;
          break;
        } else if (p.mode == KILN_CUDA_PAD_EDGE) {
          k = k < 0 ? 0 : n - 1;
        } else if (n == 1) {
          k = 0;
        } else {
          // Reflect without repeating the edge: period 2(n-1), folded back into [0, n).
          long long per = 2 * (n - 1);
          k %= per;
          if (k < 0) k += per;
          if (k >= n) k = per - k;
        }
      }
      xo += k * mul;
      mul *= n;
    }
    y[i] = outside ? val : x[xo];
  }
}

template <typename K>
kiln_status by_size(size_t es, K k) {
  switch (es) {
  case 1: k((uint8_t)0); break;
  case 2: k((uint16_t)0); break;
  case 4: k((uint32_t)0); break;
  default: k((unsigned long long)0); break;
  }
  KILN_CUDA_LAUNCH_CHECK();
  return NULL;
}

bool good_size(size_t es) { return es == 1 || es == 2 || es == 4 || es == 8; }

} // namespace

extern "C" kiln_status kiln_cuda_strided_copy(size_t elem_size, int rank, const int64_t *dims, const void *src,
                                              int64_t src_offset, const int64_t *src_strides, void *dst,
                                              const int64_t *dst_strides, kiln_cuda_stream stream) {
  if (!good_size(elem_size) || rank < 0 || rank > R || (rank && (!dims || !src_strides)))
    return kiln_error(KILN_ERR_INVALID_ARGUMENT, "cuda strided copy: bad element size or rank %d", rank);
  long long dense[R], total = 1;
  for (int d = rank - 1; d >= 0; d--) {
    if (dims[d] < 0) return kiln_error(KILN_ERR_INVALID_ARGUMENT, "cuda strided copy: negative dim");
    dense[d] = total;
    total *= dims[d];
  }
  if (!total) return NULL;
  // Drop 1-dims and merge neighbours that are contiguous on both sides: fewer divisions per element.
  CopyP p;
  p.rank = 0, p.soff = src_offset, p.total = total;
  for (int d = 0; d < rank; d++) {
    if (dims[d] == 1) continue;
    long long ss = src_strides[d], ds = dst_strides ? dst_strides[d] : dense[d];
    if (p.rank && p.ss[p.rank - 1] == ss * dims[d] && p.ds[p.rank - 1] == ds * dims[d]) {
      p.dims[p.rank - 1] *= dims[d], p.ss[p.rank - 1] = ss, p.ds[p.rank - 1] = ds;
    } else {
      p.dims[p.rank] = dims[d], p.ss[p.rank] = ss, p.ds[p.rank] = ds;
      p.rank++;
    }
  }
  cudaStream_t s = (cudaStream_t)stream;
  return by_size(elem_size, [&](auto z) {
    using T = decltype(z);
    strided_copy_kernel<T><<<blocks_for(total), TPB, 0, s>>>(p, (const T *)src, (T *)dst);
  });
}

extern "C" kiln_status kiln_cuda_gather(size_t elem_size, int64_t outer, int64_t axis_len, int64_t inner,
                                        const void *x, const int64_t *indices, int64_t n_indices, void *y,
                                        kiln_cuda_stream stream) {
  if (!good_size(elem_size) || outer < 0 || axis_len < 0 || inner < 0 || n_indices < 0)
    return kiln_error(KILN_ERR_INVALID_ARGUMENT, "cuda gather: bad element size or shape");
  long long total = (long long)outer * n_indices * inner;
  if (!total) return NULL;
  cudaStream_t s = (cudaStream_t)stream;
  return by_size(elem_size, [&](auto z) {
    using T = decltype(z);
    gather_kernel<T><<<blocks_for(total), TPB, 0, s>>>((const T *)x, indices, (T *)y, n_indices, axis_len, inner,
                                                       total);
  });
}

extern "C" kiln_status kiln_cuda_pad(size_t elem_size, kiln_cuda_pad_mode mode, int rank, const int64_t *in_dims,
                                     const int64_t *pads_begin, const int64_t *pads_end, const void *value,
                                     const void *x, void *y, kiln_cuda_stream stream) {
  if (!good_size(elem_size) || rank < 0 || rank > R || (int)mode < 0 || mode > KILN_CUDA_PAD_REFLECT ||
      (rank && (!in_dims || !pads_begin || !pads_end)))
    return kiln_error(KILN_ERR_INVALID_ARGUMENT, "cuda pad: bad element size, mode or rank");
  PadP p;
  p.rank = rank, p.mode = (int)mode, p.total = 1, p.value = 0;
  if (value) memcpy(&p.value, value, elem_size);
  for (int d = 0; d < rank; d++) {
    p.in[d] = in_dims[d], p.pb[d] = pads_begin[d];
    p.out[d] = in_dims[d] + pads_begin[d] + pads_end[d];
    if (in_dims[d] < 0 || p.out[d] < 0)
      return kiln_error(KILN_ERR_INVALID_ARGUMENT, "cuda pad: dim %d: negative size", d);
    if (mode != KILN_CUDA_PAD_CONSTANT && in_dims[d] == 0 && p.out[d] > 0)
      return kiln_error(KILN_ERR_INVALID_ARGUMENT, "cuda pad: dim %d: edge/reflect of an empty dim", d);
    p.total *= p.out[d];
  }
  if (!p.total) return NULL;
  cudaStream_t s = (cudaStream_t)stream;
  return by_size(elem_size, [&](auto z) {
    using T = decltype(z);
    pad_kernel<T><<<blocks_for(p.total), TPB, 0, s>>>(p, (const T *)x, (T *)y);
  });
}
