/* Strided N-D copy and transpose (see fast_copy.h / fast_transpose.h). */
#include "backend/cpu/fast_copy.h"
#include "backend/cpu/fast_transpose.h"

#include <immintrin.h>
#include <string.h>

void kiln_fast_contiguous_strides(int32_t rank, const int64_t *dims, int64_t *strides) {
  int64_t s = 1;
  for (int32_t i = rank - 1; i >= 0; i--) strides[i] = s, s *= dims[i];
}

/* The copy after merging: kind says how the innermost one or two dims are done. */
enum { COPY_ROWS, COPY_TILE, COPY_ELEMS };

typedef struct copy_plan {
  int32_t rank;
  int64_t dims[KILN_FAST_MAX_RANK], ss[KILN_FAST_MAX_RANK], ds[KILN_FAST_MAX_RANK];
  int32_t esz, kind;
  int32_t tdim;        /* COPY_TILE: the dim along which the source is contiguous */
  int64_t tblock;      /* COPY_TILE: the tdim range one work unit covers */
  int64_t units;       /* work units = outer index count (x tdim blocks for COPY_TILE) */
  kiln_isa isa;
  const char *src;
  char *dst;
} copy_plan;

/* ---- 2-D transpose: dst[i*dld + j] = src[j*sld + i], i < R, j < C ---------------------------- */

KILN_FAST_AVX2 static inline void tr8x8_ps(const float *s, int64_t sld, float *d, int64_t dld) {
  __m256 r0 = _mm256_loadu_ps(s + 0 * sld), r1 = _mm256_loadu_ps(s + 1 * sld), r2 = _mm256_loadu_ps(s + 2 * sld),
         r3 = _mm256_loadu_ps(s + 3 * sld), r4 = _mm256_loadu_ps(s + 4 * sld), r5 = _mm256_loadu_ps(s + 5 * sld),
         r6 = _mm256_loadu_ps(s + 6 * sld), r7 = _mm256_loadu_ps(s + 7 * sld);
  __m256 t0 = _mm256_unpacklo_ps(r0, r1), t1 = _mm256_unpackhi_ps(r0, r1), t2 = _mm256_unpacklo_ps(r2, r3),
         t3 = _mm256_unpackhi_ps(r2, r3), t4 = _mm256_unpacklo_ps(r4, r5), t5 = _mm256_unpackhi_ps(r4, r5),
         t6 = _mm256_unpacklo_ps(r6, r7), t7 = _mm256_unpackhi_ps(r6, r7);
  __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE),
         u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE),
         u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE),
         u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
  _mm256_storeu_ps(d + 0 * dld, _mm256_permute2f128_ps(u0, u4, 0x20));
  _mm256_storeu_ps(d + 1 * dld, _mm256_permute2f128_ps(u1, u5, 0x20));
  _mm256_storeu_ps(d + 2 * dld, _mm256_permute2f128_ps(u2, u6, 0x20));
  _mm256_storeu_ps(d + 3 * dld, _mm256_permute2f128_ps(u3, u7, 0x20));
  _mm256_storeu_ps(d + 4 * dld, _mm256_permute2f128_ps(u0, u4, 0x31));
  _mm256_storeu_ps(d + 5 * dld, _mm256_permute2f128_ps(u1, u5, 0x31));
  _mm256_storeu_ps(d + 6 * dld, _mm256_permute2f128_ps(u2, u6, 0x31));
  _mm256_storeu_ps(d + 7 * dld, _mm256_permute2f128_ps(u3, u7, 0x31));
}

/* 4-byte transpose with 8x8 register tiles, walked in 32x32 blocks so both sides stay in L1.
 * (An AVX-512 16x16 tile would halve the shuffle count but the copy is memory bound; the AVX2 tile
 * runs on every AVX-512 machine too.) */
KILN_FAST_AVX2 static void tr2d_f32_avx2(const float *s, int64_t sld, float *d, int64_t dld, int64_t R, int64_t C) {
  for (int64_t j0 = 0; j0 < C; j0 += 32)
    for (int64_t i0 = 0; i0 < R; i0 += 32) {
      int64_t je = j0 + 32 < C ? j0 + 32 : C, ie = i0 + 32 < R ? i0 + 32 : R;
      int64_t j = j0;
      for (; j + 8 <= je; j += 8) {
        int64_t i = i0;
        for (; i + 8 <= ie; i += 8) tr8x8_ps(s + j * sld + i, sld, d + i * dld + j, dld);
        for (; i < ie; i++)
          for (int64_t jj = j; jj < j + 8; jj++) d[i * dld + jj] = s[jj * sld + i];
      }
      for (; j < je; j++)
        for (int64_t i = i0; i < ie; i++) d[i * dld + j] = s[j * sld + i];
    }
}

#define TR2D_SCALAR(T)                                                                               \
  static void tr2d_##T(const T *s, int64_t sld, T *d, int64_t dld, int64_t R, int64_t C) {           \
    for (int64_t j0 = 0; j0 < C; j0 += 32)                                                           \
      for (int64_t i0 = 0; i0 < R; i0 += 32) {                                                       \
        int64_t je = j0 + 32 < C ? j0 + 32 : C, ie = i0 + 32 < R ? i0 + 32 : R;                       \
        for (int64_t i = i0; i < ie; i++)                                                            \
          for (int64_t j = j0; j < je; j++) d[i * dld + j] = s[j * sld + i];                         \
      }                                                                                              \
  }
TR2D_SCALAR(uint8_t)
TR2D_SCALAR(uint16_t)
TR2D_SCALAR(uint32_t)
TR2D_SCALAR(uint64_t)

static void tr2d(const copy_plan *p, const char *s, int64_t sld, char *d, int64_t dld, int64_t R, int64_t C) {
  switch (p->esz) {
  case 1: tr2d_uint8_t((const uint8_t *)s, sld, (uint8_t *)d, dld, R, C); break;
  case 2: tr2d_uint16_t((const uint16_t *)s, sld, (uint16_t *)d, dld, R, C); break;
  case 4:
    if (p->isa >= KILN_ISA_AVX2) tr2d_f32_avx2((const float *)s, sld, (float *)d, dld, R, C);
    else tr2d_uint32_t((const uint32_t *)s, sld, (uint32_t *)d, dld, R, C);
    break;
  case 8: tr2d_uint64_t((const uint64_t *)s, sld, (uint64_t *)d, dld, R, C); break;
  }
}

static void copy_elems(const copy_plan *p, const char *s, int64_t ss, char *d, int64_t ds, int64_t n) {
  size_t e = (size_t)p->esz;
  switch (e) { /* fixed-size copies the compiler turns into single moves */
  case 4:
    for (int64_t i = 0; i < n; i++) memcpy(d + i * ds * 4, s + i * ss * 4, 4);
    return;
  case 2:
    for (int64_t i = 0; i < n; i++) memcpy(d + i * ds * 2, s + i * ss * 2, 2);
    return;
  case 8:
    for (int64_t i = 0; i < n; i++) memcpy(d + i * ds * 8, s + i * ss * 8, 8);
    return;
  case 1:
    for (int64_t i = 0; i < n; i++) d[i * ds] = s[i * ss];
    return;
  default:
    for (int64_t i = 0; i < n; i++) memcpy(d + i * ds * (int64_t)e, s + i * ss * (int64_t)e, e);
  }
}

static void copy_units(void *ctx, int64_t begin, int64_t end, int thread_index) {
  (void)thread_index;
  const copy_plan *p = ctx;
  int32_t r = p->rank, last = r - 1;
  int64_t esz = p->esz;
  for (int64_t u = begin; u < end; u++) {
    /* decompose u over the outer dims (all but the innermost, and for tiles also the tile dim,
     * which is split into blocks) */
    int64_t rem = u, so = 0, dof = 0, tb = 0;
    if (p->kind == COPY_TILE) {
      int64_t nb = (p->dims[p->tdim] + p->tblock - 1) / p->tblock;
      tb = rem % nb;
      rem /= nb;
    }
    for (int32_t i = last - 1; i >= 0; i--) {
      if (p->kind == COPY_TILE && i == p->tdim) continue;
      int64_t c = rem % p->dims[i];
      rem /= p->dims[i];
      so += c * p->ss[i], dof += c * p->ds[i];
    }
    const char *s = p->src + so * esz;
    char *d = p->dst + dof * esz;
    if (p->kind == COPY_ROWS) {
      memcpy(d, s, (size_t)(p->dims[last] * esz));
    } else if (p->kind == COPY_ELEMS) {
      copy_elems(p, s, p->ss[last], d, p->ds[last], p->dims[last]);
    } else {
      int64_t i0 = tb * p->tblock, R = p->dims[p->tdim] - i0 < p->tblock ? p->dims[p->tdim] - i0 : p->tblock;
      tr2d(p, s + i0 * esz, p->ss[last], d + i0 * p->ds[p->tdim] * esz, p->ds[p->tdim], R, p->dims[last]);
    }
  }
}

void kiln_fast_copy_run(const kiln_fast_copy_desc *dsc, const void *src, void *dst, kiln_threadpool *tp) {
  copy_plan p;
  memset(&p, 0, sizeof p);
  p.esz = dsc->elem_size;
  p.isa = kiln_fast_isa(dsc->isa);
  p.src = src;
  p.dst = dst;
  int64_t total = 1;
  /* drop size-1 dims, then merge neighbours whose strides line up on both sides */
  for (int32_t i = 0; i < dsc->rank; i++) {
    if (dsc->dims[i] == 0) return;
    total *= dsc->dims[i];
    if (dsc->dims[i] == 1) continue;
    if (p.rank > 0) {
      int32_t k = p.rank - 1;
      if (p.ss[k] == dsc->src_strides[i] * dsc->dims[i] && p.ds[k] == dsc->dst_strides[i] * dsc->dims[i]) {
        p.dims[k] *= dsc->dims[i];
        p.ss[k] = dsc->src_strides[i], p.ds[k] = dsc->dst_strides[i];
        continue;
      }
    }
    p.dims[p.rank] = dsc->dims[i], p.ss[p.rank] = dsc->src_strides[i], p.ds[p.rank] = dsc->dst_strides[i];
    p.rank++;
  }
  if (p.rank == 0) { /* one element */
    memcpy(dst, src, (size_t)p.esz);
    return;
  }
  int32_t last = p.rank - 1;
  p.kind = (p.ss[last] == 1 && p.ds[last] == 1) ? COPY_ROWS : COPY_ELEMS;
  if (p.kind == COPY_ELEMS && p.ds[last] == 1 && (p.esz == 1 || p.esz == 2 || p.esz == 4 || p.esz == 8))
    for (int32_t i = last - 1; i >= 0; i--)
      if (p.ss[i] == 1) {
        p.kind = COPY_TILE, p.tdim = i;
        break;
      }
  p.units = 1;
  for (int32_t i = 0; i < last; i++)
    if (!(p.kind == COPY_TILE && i == p.tdim)) p.units *= p.dims[i];
  if (p.kind == COPY_TILE) {
    /* blocks of the tile dim give parallelism to a single big 2-D transpose */
    p.tblock = 64;
    p.units *= (p.dims[p.tdim] + p.tblock - 1) / p.tblock;
  }
  kiln_threadpool *t = kiln_fast_tp_for(tp, 2 * total * p.esz);
  int64_t per_unit = total / p.units;
  int64_t grain = per_unit >= 16384 ? 1 : 16384 / (per_unit ? per_unit : 1);
  if (t) {
    int64_t nt = kiln_threadpool_size(t), g2 = p.units / (4 * nt);
    if (g2 < grain) grain = g2 > 0 ? g2 : 1;
  }
  kiln_threadpool_run(t, p.units, grain, copy_units, &p);
}

/* ---- transpose ------------------------------------------------------------------------------- */

kiln_status kiln_fast_transpose_check(const kiln_fast_transpose_desc *d) {
  if (d->rank < 0 || d->rank > KILN_FAST_MAX_RANK)
    return kiln_error(KILN_ERR_UNSUPPORTED, "transpose rank %d (at most %d)", d->rank, KILN_FAST_MAX_RANK);
  if (d->elem_size < 1) return kiln_error(KILN_ERR_INVALID_ARGUMENT, "transpose element size %d", d->elem_size);
  int seen[KILN_FAST_MAX_RANK] = {0};
  for (int32_t i = 0; i < d->rank; i++) {
    if (d->perm[i] < 0 || d->perm[i] >= d->rank || seen[d->perm[i]])
      return kiln_error(KILN_ERR_INVALID_ARGUMENT, "transpose perm is not a permutation of 0..%d", d->rank - 1);
    seen[d->perm[i]] = 1;
  }
  return NULL;
}

void kiln_fast_transpose_run(const kiln_fast_transpose_desc *d, const void *src, void *dst, kiln_threadpool *tp) {
  kiln_fast_copy_desc c;
  memset(&c, 0, sizeof c);
  int64_t in_strides[KILN_FAST_MAX_RANK];
  kiln_fast_contiguous_strides(d->rank, d->in_dims, in_strides);
  c.rank = d->rank;
  c.elem_size = d->elem_size;
  c.isa = d->isa;
  for (int32_t i = 0; i < d->rank; i++) c.dims[i] = d->in_dims[d->perm[i]], c.src_strides[i] = in_strides[d->perm[i]];
  kiln_fast_contiguous_strides(c.rank, c.dims, c.dst_strides);
  kiln_fast_copy_run(&c, src, dst, tp);
}
