/* matrix family: reference kernels for MatMul (numpy batch broadcasting, 1-D operands), Gemm and Einsum.
 * Floats accumulate in double; integers in 64-bit two's complement and wrap on store, as ONNX Runtime's
 * integer GEMM does. */
#include "backend/cpu/reference/reference.h"

#include "core/dtype.h"
#include "ir/ops/matrix.h"

#include <stdlib.h>
#include <string.h>

static inline double ld_f(const kiln_tensor *t, int64_t i) { return kiln_dtype_load_f64(t->dtype, t->data, i); }
static inline uint64_t ld_i(const kiln_tensor *t, int64_t i) { return (uint64_t)kiln_dtype_load_i64(t->dtype, t->data, i); }

static kiln_status check_dtype(kiln_dtype dt, bool einsum) {
  if (kiln_dtype_is_float(dt)) return NULL;
  if (einsum && kiln_dtype_is_int(dt)) return NULL;
  if (dt == KILN_DTYPE_INT32 || dt == KILN_DTYPE_INT64 || dt == KILN_DTYPE_UINT32 || dt == KILN_DTYPE_UINT64) return NULL;
  return kiln_error(KILN_ERR_UNSUPPORTED, "dtype %s is not supported", kiln_dtype_name(dt));
}

static kiln_status ref_matmul(const kiln_tensor *A, const kiln_tensor *B, kiln_tensor *Y) {
  KILN_TRY(check_dtype(A->dtype, false));
  if (B->dtype != A->dtype || Y->dtype != A->dtype) return kiln_error(KILN_ERR_SHAPE, "dtype mismatch");
  if (A->rank < 1 || B->rank < 1) return kiln_error(KILN_ERR_SHAPE, "MatMul operands must have rank >= 1");
  /* Promote 1-D operands to [1, K] / [K, 1]. */
  int64_t ad[KILN_MAX_RANK + 1], bd[KILN_MAX_RANK + 1];
  int32_t ra = A->rank, rb = B->rank;
  if (ra == 1) ad[0] = 1, ad[1] = A->dims[0], ra = 2;
  else memcpy(ad, A->dims, sizeof(int64_t) * (size_t)ra);
  if (rb == 1) bd[0] = B->dims[0], bd[1] = 1, rb = 2;
  else memcpy(bd, B->dims, sizeof(int64_t) * (size_t)rb);
  int64_t M = ad[ra - 2], K = ad[ra - 1], N = bd[rb - 1];
  if (bd[rb - 2] != K) return kiln_error(KILN_ERR_SHAPE, "inner dims differ");
  int32_t R = (ra > rb ? ra : rb) - 2;
  int64_t bdims[KILN_MAX_RANK], sa[KILN_MAX_RANK], sb[KILN_MAX_RANK];
  int64_t nbatch = 1;
  /* Batch strides (in matrices) with 0 for broadcast dims. */
  int64_t stra = 1, strb = 1;
  for (int32_t i = R - 1; i >= 0; i--) {
    int32_t ia = i - (R - (ra - 2)), ib = i - (R - (rb - 2));
    int64_t da = ia >= 0 ? ad[ia] : 1, db = ib >= 0 ? bd[ib] : 1;
    if (da != db && da != 1 && db != 1) return kiln_error(KILN_ERR_SHAPE, "batch dims do not broadcast");
    bdims[i] = da > db ? da : db;
    if (da == 0 || db == 0) bdims[i] = 0;
    sa[i] = da == 1 ? 0 : stra;
    sb[i] = db == 1 ? 0 : strb;
    stra *= da, strb *= db;
    nbatch *= bdims[i];
  }
  if (kiln_tensor_numel(Y) != nbatch * M * N) return kiln_error(KILN_ERR_SHAPE, "output size does not match");
  bool is_int = !kiln_dtype_is_float(A->dtype);
  for (int64_t bi = 0; bi < nbatch; bi++) {
    int64_t rem = bi, oa = 0, ob = 0;
    for (int32_t i = R - 1; i >= 0; i--) {
      int64_t c = rem % bdims[i];
      rem /= bdims[i];
      oa += c * sa[i], ob += c * sb[i];
    }
    oa *= M * K, ob *= K * N;
    for (int64_t m = 0; m < M; m++)
      for (int64_t nn = 0; nn < N; nn++) {
        int64_t yi = (bi * M + m) * N + nn;
        if (is_int) {
          uint64_t acc = 0;
          for (int64_t k = 0; k < K; k++) acc += ld_i(A, oa + m * K + k) * ld_i(B, ob + k * N + nn);
          kiln_dtype_store_i64(Y->dtype, Y->data, yi, (int64_t)acc);
        } else {
          double acc = 0;
          for (int64_t k = 0; k < K; k++) acc += ld_f(A, oa + m * K + k) * ld_f(B, ob + k * N + nn);
          kiln_dtype_store_f64(Y->dtype, Y->data, yi, acc);
        }
      }
  }
  return NULL;
}

static kiln_status ref_gemm(const kiln_gemm_params *p, const kiln_tensor *A, const kiln_tensor *B, const kiln_tensor *C,
                            kiln_tensor *Y) {
  KILN_TRY(check_dtype(A->dtype, false));
  if (B->dtype != A->dtype || Y->dtype != A->dtype || (C && C->dtype != A->dtype))
    return kiln_error(KILN_ERR_SHAPE, "dtype mismatch");
  if (A->rank != 2 || B->rank != 2 || Y->rank != 2 || (C && C->rank > 2))
    return kiln_error(KILN_ERR_SHAPE, "Gemm needs 2-D A and B");
  int64_t M = p->trans_a ? A->dims[1] : A->dims[0], K = p->trans_a ? A->dims[0] : A->dims[1];
  int64_t N = p->trans_b ? B->dims[0] : B->dims[1], Kb = p->trans_b ? B->dims[1] : B->dims[0];
  if (K != Kb || Y->dims[0] != M || Y->dims[1] != N) return kiln_error(KILN_ERR_SHAPE, "shapes do not match");
  /* C broadcasts unidirectionally to [M, N]: a dim of 1 (or a missing one) repeats. */
  int64_t cm = 1, cn = 1;
  if (C && C->rank == 2) cm = C->dims[0], cn = C->dims[1];
  else if (C && C->rank == 1) cn = C->dims[0];
  if ((cm != 1 && cm != M) || (cn != 1 && cn != N)) return kiln_error(KILN_ERR_SHAPE, "C does not broadcast to [M, N]");
  bool is_int = !kiln_dtype_is_float(A->dtype);
  for (int64_t m = 0; m < M; m++)
    for (int64_t nn = 0; nn < N; nn++) {
      int64_t ci = (cm == 1 ? 0 : m) * cn + (cn == 1 ? 0 : nn);
      if (is_int) {
        /* Integer Gemm: alpha/beta apply as integers (ONNX Runtime truncates them the same way). */
        uint64_t acc = 0;
        for (int64_t k = 0; k < K; k++)
          acc += ld_i(A, p->trans_a ? k * M + m : m * K + k) * ld_i(B, p->trans_b ? nn * K + k : k * N + nn);
        uint64_t r = acc * (uint64_t)(int64_t)p->alpha;
        if (C) r += (uint64_t)(int64_t)p->beta * ld_i(C, ci);
        kiln_dtype_store_i64(Y->dtype, Y->data, m * N + nn, (int64_t)r);
      } else {
        double acc = 0;
        for (int64_t k = 0; k < K; k++)
          acc += ld_f(A, p->trans_a ? k * M + m : m * K + k) * ld_f(B, p->trans_b ? nn * K + k : k * N + nn);
        double r = (double)p->alpha * acc;
        if (C) r += (double)p->beta * ld_f(C, ci);
        kiln_dtype_store_f64(Y->dtype, Y->data, m * N + nn, r);
      }
    }
  return NULL;
}

static kiln_status ref_einsum(const kiln_node *n, const kiln_tensor *in, kiln_tensor *Y) {
  const kiln_einsum_params *p = n->params;
  int32_t nop = n->n_inputs;
  int32_t ranks[KILN_EINSUM_MAX_OPERANDS];
  const int64_t *dims[KILN_EINSUM_MAX_OPERANDS];
  for (int32_t k = 0; k < nop; k++) {
    if (!in[k].data && kiln_tensor_numel(&in[k]) > 0) return kiln_error(KILN_ERR_INTERNAL, "missing operand");
    if (in[k].dtype != in[0].dtype) return kiln_error(KILN_ERR_SHAPE, "operands differ in dtype");
    ranks[k] = in[k].rank;
    dims[k] = in[k].dims;
  }
  KILN_TRY(check_dtype(in[0].dtype, true));
  if (Y->dtype != in[0].dtype) return kiln_error(KILN_ERR_SHAPE, "dtype mismatch");
  kiln_einsum_plan plan;
  KILN_TRY(kiln_einsum_plan_make(p, nop, ranks, dims, &plan));
  if (plan.out_rank != Y->rank) return kiln_error(KILN_ERR_SHAPE, "output rank does not match");
  for (int32_t j = 0; j < Y->rank; j++)
    if (Y->dims[j] != plan.extent[plan.out_label[j]]) return kiln_error(KILN_ERR_SHAPE, "output shape does not match");
  /* Every used label: output labels first, then the summed ones. A repeated label in one operand adds
   * its strides, which walks the diagonal. Broadcast (size-1) ellipsis dims get stride 0. */
  int8_t order[KILN_EINSUM_MAX_LABELS];
  int32_t nl = 0;
  bool is_out[KILN_EINSUM_MAX_LABELS] = {false};
  for (int32_t j = 0; j < plan.out_rank; j++) order[nl++] = plan.out_label[j], is_out[plan.out_label[j]] = true;
  for (int l = 0; l < KILN_EINSUM_MAX_LABELS; l++)
    if (plan.extent[l] != -2 && !is_out[l]) order[nl++] = (int8_t)l;
  int64_t stride[KILN_EINSUM_MAX_OPERANDS][KILN_EINSUM_MAX_LABELS];
  memset(stride, 0, sizeof stride);
  for (int32_t k = 0; k < nop; k++) {
    int64_t s = 1;
    for (int32_t j = ranks[k] - 1; j >= 0; j--) {
      int l = plan.dim_label[k][j];
      if (!(dims[k][j] == 1 && plan.extent[l] != 1)) stride[k][l] += s;
      s *= dims[k][j];
    }
  }
  int64_t n_out = 1, n_red = 1;
  for (int32_t i = 0; i < nl; i++) {
    if (i < plan.out_rank) n_out *= plan.extent[order[i]];
    else n_red *= plan.extent[order[i]];
  }
  bool is_int = !kiln_dtype_is_float(in[0].dtype);
  int64_t idx[KILN_EINSUM_MAX_LABELS];
  for (int64_t o = 0; o < n_out; o++) {
    int64_t rem = o;
    for (int32_t i = plan.out_rank - 1; i >= 0; i--) idx[i] = rem % plan.extent[order[i]], rem /= plan.extent[order[i]];
    double facc = 0;
    uint64_t iacc = 0;
    for (int64_t r = 0; r < n_red; r++) {
      rem = r;
      for (int32_t i = nl - 1; i >= plan.out_rank; i--) idx[i] = rem % plan.extent[order[i]], rem /= plan.extent[order[i]];
      double fp = 1;
      uint64_t ip = 1;
      for (int32_t k = 0; k < nop; k++) {
        int64_t off = 0;
        for (int32_t i = 0; i < nl; i++) off += idx[i] * stride[k][order[i]];
        if (is_int) ip *= ld_i(&in[k], off);
        else fp *= ld_f(&in[k], off);
      }
      facc += fp, iacc += ip;
    }
    if (is_int) kiln_dtype_store_i64(Y->dtype, Y->data, o, (int64_t)iacc);
    else kiln_dtype_store_f64(Y->dtype, Y->data, o, facc);
  }
  return NULL;
}

kiln_status kiln_ref_matrix(const kiln_graph *g, const kiln_node *n, const kiln_tensor *in, kiln_tensor *out) {
  (void)g;
  switch (n->op) {
  case KILN_OP_MatMul: return ref_matmul(&in[0], &in[1], &out[0]);
  case KILN_OP_Gemm:
    if (!n->params) return kiln_error(KILN_ERR_INTERNAL, "not parsed");
    return ref_gemm(n->params, &in[0], &in[1], n->n_inputs > 2 && in[2].data ? &in[2] : NULL, &out[0]);
  case KILN_OP_Einsum:
    if (!n->params) return kiln_error(KILN_ERR_INTERNAL, "not parsed");
    return ref_einsum(n, in, &out[0]);
  default: return kiln_error(KILN_ERR_INTERNAL, "not a matrix op");
  }
}
