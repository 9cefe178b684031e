/* matrix family: MatMul, Gemm, Einsum parse / infer / macs. */
#include "ir/ops/matrix.h"

#include "core/dtype.h"
#include "ir/infer_util.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

static void set_params(kiln_node *n, void *p) {
  kiln_node_set_params(n, p, NULL);
}

static int label_id(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return 26 + (c - 'a');
  return -1;
}

/* Parse one term ("ij", "...ij", "i...j") into label ids; stops at `end`. */
static kiln_status parse_term(const char *s, const char *end, int8_t *term, int32_t *len) {
  int32_t k = 0;
  bool ell = false;
  while (s < end) {
    if (*s == '.') {
      if (end - s < 3 || s[1] != '.' || s[2] != '.')
        return kiln_error(KILN_ERR_PARSE, "attribute 'equation': a '.' that is not part of '...'");
      if (ell) return kiln_error(KILN_ERR_PARSE, "attribute 'equation': a term has two ellipses");
      ell = true;
      if (k >= KILN_MAX_RANK + 1) return kiln_error(KILN_ERR_UNSUPPORTED, "attribute 'equation': term too long");
      term[k++] = KILN_EINSUM_ELLIPSIS;
      s += 3;
      continue;
    }
    int id = label_id(*s);
    if (id < 0) return kiln_error(KILN_ERR_PARSE, "attribute 'equation': bad character '%c'", *s);
    if (k - (ell ? 1 : 0) >= KILN_MAX_RANK)
      return kiln_error(KILN_ERR_UNSUPPORTED, "attribute 'equation': a term has more than %d labels", KILN_MAX_RANK);
    term[k++] = (int8_t)id;
    s++;
  }
  *len = k;
  return NULL;
}

static kiln_status einsum_parse(const kiln_node *n, kiln_einsum_params *p) {
  const char *eq;
  KILN_TRY(kiln_node_get_string(n, "equation", NULL, &eq));
  if (!eq) return kiln_error(KILN_ERR_PARSE, "attribute 'equation' is required");
  size_t len = strlen(eq);
  if (len > 1024) return kiln_error(KILN_ERR_UNSUPPORTED, "attribute 'equation' is too long");
  char buf[1025];
  size_t m = 0;
  for (size_t i = 0; i < len; i++)
    if (eq[i] != ' ' && eq[i] != '\t') buf[m++] = eq[i];
  buf[m] = 0;
  char *arrow = strstr(buf, "->");
  char *lhs_end = arrow ? arrow : buf + m;
  memset(p, 0, sizeof *p);
  const char *s = buf;
  for (;;) {
    const char *comma = memchr(s, ',', (size_t)(lhs_end - s));
    const char *e = comma ? comma : lhs_end;
    if (p->n_operands >= KILN_EINSUM_MAX_OPERANDS)
      return kiln_error(KILN_ERR_UNSUPPORTED, "Einsum with more than %d operands", KILN_EINSUM_MAX_OPERANDS);
    KILN_TRY(parse_term(s, e, p->term[p->n_operands], &p->term_len[p->n_operands]));
    p->n_operands++;
    if (!comma) break;
    s = comma + 1;
  }
  if (arrow) {
    p->explicit_output = true;
    if (strstr(arrow + 2, "->")) return kiln_error(KILN_ERR_PARSE, "attribute 'equation' has two '->'");
    KILN_TRY(parse_term(arrow + 2, buf + m, p->out, &p->out_len));
    for (int32_t i = 0; i < p->out_len; i++)
      for (int32_t j = 0; j < i; j++)
        if (p->out[i] == p->out[j])
          return kiln_error(KILN_ERR_PARSE, "attribute 'equation': output label repeated");
  }
  if (p->n_operands != n->n_inputs)
    return kiln_error(KILN_ERR_PARSE, "attribute 'equation' has %d operands but the node has %d inputs", p->n_operands,
                      n->n_inputs);
  return NULL;
}

static kiln_status merge_extent(int64_t *e, int64_t d, bool broadcast, int label) {
  if (*e == -2 || d == *e) {
    *e = d;
    return NULL;
  }
  if (broadcast && d == 1) return NULL; /* only ellipsis dims broadcast */
  if (broadcast && *e == 1) {
    *e = d;
    return NULL;
  }
  if (d == KILN_DIM_DYNAMIC) return NULL;
  if (*e == KILN_DIM_DYNAMIC) {
    *e = d;
    return NULL;
  }
  if (label < KILN_EINSUM_LETTERS)
    return kiln_error(KILN_ERR_SHAPE, "label '%c' has sizes %" PRId64 " and %" PRId64,
                      label < 26 ? 'A' + label : 'a' + label - 26, *e, d);
  return kiln_error(KILN_ERR_SHAPE, "ellipsis dims %" PRId64 " and %" PRId64 " do not broadcast", *e, d);
}

kiln_status kiln_einsum_plan_make(const kiln_einsum_params *p, int32_t n_operands, const int32_t *ranks,
                                  const int64_t *const *dims, kiln_einsum_plan *plan) {
  if (n_operands != p->n_operands)
    return kiln_error(KILN_ERR_SHAPE, "equation has %d operands, got %d", p->n_operands, n_operands);
  memset(plan, 0, sizeof *plan);
  for (int i = 0; i < KILN_EINSUM_MAX_LABELS; i++) plan->extent[i] = -2;
  int32_t ell[KILN_EINSUM_MAX_OPERANDS];
  int32_t E = 0;
  int count[KILN_EINSUM_LETTERS] = {0};
  for (int32_t k = 0; k < n_operands; k++) {
    int32_t letters = 0;
    bool has_ell = false;
    for (int32_t j = 0; j < p->term_len[k]; j++) {
      if (p->term[k][j] == KILN_EINSUM_ELLIPSIS) has_ell = true;
      else letters++, count[p->term[k][j]]++;
    }
    if (ranks[k] < 0 || ranks[k] > KILN_MAX_RANK) return kiln_error(KILN_ERR_SHAPE, "operand %d has a bad rank", k);
    if (ranks[k] < letters || (!has_ell && ranks[k] != letters))
      return kiln_error(KILN_ERR_SHAPE, "operand %d has rank %d but its term has %d labels", k, ranks[k], letters);
    ell[k] = ranks[k] - letters;
    if (ell[k] > E) E = ell[k];
    plan->rank[k] = ranks[k];
  }
  plan->n_ellipsis = E;
  for (int32_t k = 0; k < n_operands; k++) {
    int32_t d = 0;
    for (int32_t j = 0; j < p->term_len[k]; j++) {
      int8_t t = p->term[k][j];
      if (t == KILN_EINSUM_ELLIPSIS) {
        for (int32_t e = 0; e < ell[k]; e++, d++) {
          int lab = KILN_EINSUM_LETTERS + (E - ell[k]) + e;
          plan->dim_label[k][d] = (int8_t)lab;
          KILN_TRY(merge_extent(&plan->extent[lab], dims[k][d], true, lab));
        }
      } else {
        plan->dim_label[k][d] = t;
        KILN_TRY(merge_extent(&plan->extent[t], dims[k][d], false, t));
        d++;
      }
    }
  }
  int32_t r = 0;
  if (p->explicit_output) {
    for (int32_t j = 0; j < p->out_len; j++) {
      int8_t t = p->out[j];
      if (t == KILN_EINSUM_ELLIPSIS) {
        if (r + E > KILN_MAX_RANK) return kiln_error(KILN_ERR_UNSUPPORTED, "output rank exceeds %d", KILN_MAX_RANK);
        for (int32_t e = 0; e < E; e++) plan->out_label[r++] = (int8_t)(KILN_EINSUM_LETTERS + e);
      } else {
        if (plan->extent[t] == -2)
          return kiln_error(KILN_ERR_SHAPE, "output label '%c' does not appear in any input",
                            t < 26 ? 'A' + t : 'a' + t - 26);
        if (r >= KILN_MAX_RANK) return kiln_error(KILN_ERR_UNSUPPORTED, "output rank exceeds %d", KILN_MAX_RANK);
        plan->out_label[r++] = t;
      }
    }
  } else {
    /* numpy's implicit mode: broadcast dims first, then labels used once, in alphabetical order. */
    for (int32_t e = 0; e < E; e++) plan->out_label[r++] = (int8_t)(KILN_EINSUM_LETTERS + e);
    for (int t = 0; t < KILN_EINSUM_LETTERS; t++)
      if (count[t] == 1) {
        if (r >= KILN_MAX_RANK) return kiln_error(KILN_ERR_UNSUPPORTED, "output rank exceeds %d", KILN_MAX_RANK);
        plan->out_label[r++] = (int8_t)t;
      }
  }
  plan->out_rank = r;
  return NULL;
}

static kiln_status gemm_parse(const kiln_node *n, kiln_gemm_params *p) {
  int64_t ta, tb;
  KILN_TRY(kiln_node_get_int(n, "transA", 0, &ta));
  KILN_TRY(kiln_node_get_int(n, "transB", 0, &tb));
  KILN_TRY(kiln_node_get_float(n, "alpha", 1.0f, &p->alpha));
  KILN_TRY(kiln_node_get_float(n, "beta", 1.0f, &p->beta));
  if ((ta != 0 && ta != 1) || (tb != 0 && tb != 1))
    return kiln_error(KILN_ERR_PARSE, "attributes 'transA'/'transB' must be 0 or 1");
  p->trans_a = ta, p->trans_b = tb;
  return NULL;
}

kiln_status kiln_matrix_parse(kiln_graph *g, kiln_node *n) {
  switch (n->op) {
  case KILN_OP_MatMul:
    KILN_TRY(kiln_check_arity(n, 2, 2, 1, 1));
    set_params(n, NULL);
    return NULL;
  case KILN_OP_Gemm: {
    /* C became optional in opset 11. */
    KILN_TRY(kiln_check_arity(n, g->opset > 0 && g->opset < 11 ? 3 : 2, 3, 1, 1));
    kiln_gemm_params *p = calloc(1, sizeof *p);
    KILN_CHECK_ALLOC(p);
    kiln_status st = gemm_parse(n, p);
    if (st) {
      free(p);
      return st;
    }
    set_params(n, p);
    return NULL;
  }
  case KILN_OP_Einsum: {
    KILN_TRY(kiln_check_arity(n, 1, KILN_EINSUM_MAX_OPERANDS, 1, 1));
    for (int32_t i = 0; i < n->n_inputs; i++)
      if (n->inputs[i] < 0) return kiln_error(KILN_ERR_PARSE, "input %d is missing", i);
    kiln_einsum_params *p = calloc(1, sizeof *p);
    KILN_CHECK_ALLOC(p);
    kiln_status st = einsum_parse(n, p);
    if (st) {
      free(p);
      return st;
    }
    set_params(n, p);
    return NULL;
  }
  default: return kiln_error(KILN_ERR_INTERNAL, "not a matrix op");
  }
}

static bool matmul_dtype_ok(kiln_dtype dt) {
  return kiln_dtype_is_float(dt) || dt == KILN_DTYPE_INT32 || dt == KILN_DTYPE_INT64 || dt == KILN_DTYPE_UINT32 ||
         dt == KILN_DTYPE_UINT64;
}

static kiln_status infer_matmul(kiln_graph *g, kiln_node *n) {
  const kiln_value *a, *b;
  KILN_TRY(kiln_require_input(g, n, 0, &a));
  KILN_TRY(kiln_require_input(g, n, 1, &b));
  if (a->dtype != b->dtype)
    return kiln_error(KILN_ERR_SHAPE, "'%s' (%s) and '%s' (%s) differ in dtype", a->name, kiln_dtype_name(a->dtype),
                      b->name, kiln_dtype_name(b->dtype));
  if (!matmul_dtype_ok(a->dtype))
    return kiln_error(KILN_ERR_SHAPE, "dtype %s is not allowed", kiln_dtype_name(a->dtype));
  kiln_shape out;
  if (a->shape.rank < 0 || b->shape.rank < 0) {
    kiln_shape_unknown(&out);
    return kiln_infer_set_output(g, n, 0, a->dtype, &out);
  }
  if (a->shape.rank == 0 || b->shape.rank == 0) return kiln_error(KILN_ERR_SHAPE, "MatMul operands must have rank >= 1");
  /* Promote 1-D operands to matrices (numpy), remember to drop the added dim afterwards. */
  kiln_shape sa = a->shape, sb = b->shape;
  bool a1 = sa.rank == 1, b1 = sb.rank == 1;
  if (a1) sa.dims[1] = sa.dims[0], sa.sym[1] = sa.sym[0], sa.dims[0] = 1, sa.sym[0] = -1, sa.rank = 2;
  if (b1) sb.dims[1] = 1, sb.sym[1] = -1, sb.rank = 2;
  int64_t ka = sa.dims[sa.rank - 1], kb = sb.dims[sb.rank - 2];
  if (ka >= 0 && kb >= 0 && ka != kb)
    return kiln_error(KILN_ERR_SHAPE, "'%s' has K = %" PRId64 " but '%s' has K = %" PRId64, a->name, ka, b->name, kb);
  kiln_shape ba = sa, bb = sb, bo;
  ba.rank -= 2, bb.rank -= 2;
  KILN_TRY(kiln_error_prefix(kiln_infer_broadcast(&ba, &bb, &bo), "batch dims of '%s' and '%s': ", a->name, b->name));
  out = bo;
  if (!a1) out.dims[out.rank] = sa.dims[sa.rank - 2], out.sym[out.rank] = sa.sym[sa.rank - 2], out.rank++;
  if (!b1) out.dims[out.rank] = sb.dims[sb.rank - 1], out.sym[out.rank] = sb.sym[sb.rank - 1], out.rank++;
  if (out.rank > KILN_MAX_RANK) return kiln_error(KILN_ERR_UNSUPPORTED, "rank exceeds %d", KILN_MAX_RANK);
  return kiln_infer_set_output(g, n, 0, a->dtype, &out);
}

static kiln_status infer_gemm(kiln_graph *g, kiln_node *n) {
  const kiln_gemm_params *p = n->params;
  const kiln_value *a, *b;
  KILN_TRY(kiln_require_input(g, n, 0, &a));
  KILN_TRY(kiln_require_input(g, n, 1, &b));
  const kiln_value *c = kiln_node_input(g, n, 2);
  if (a->dtype != b->dtype || (c && c->dtype != KILN_DTYPE_UNDEFINED && c->dtype != a->dtype))
    return kiln_error(KILN_ERR_SHAPE, "inputs differ in dtype");
  if (!matmul_dtype_ok(a->dtype)) return kiln_error(KILN_ERR_SHAPE, "dtype %s is not allowed", kiln_dtype_name(a->dtype));
  kiln_shape out;
  kiln_shape_init(&out, 2, NULL);
  out.dims[0] = out.dims[1] = KILN_DIM_DYNAMIC;
  if (a->shape.rank >= 0) {
    if (a->shape.rank != 2) return kiln_error(KILN_ERR_SHAPE, "A '%s' must have rank 2, has %d", a->name, a->shape.rank);
    out.dims[0] = a->shape.dims[p->trans_a ? 1 : 0];
    out.sym[0] = a->shape.sym[p->trans_a ? 1 : 0];
  }
  if (b->shape.rank >= 0) {
    if (b->shape.rank != 2) return kiln_error(KILN_ERR_SHAPE, "B '%s' must have rank 2, has %d", b->name, b->shape.rank);
    out.dims[1] = b->shape.dims[p->trans_b ? 0 : 1];
    out.sym[1] = b->shape.sym[p->trans_b ? 0 : 1];
  }
  if (a->shape.rank == 2 && b->shape.rank == 2) {
    int64_t ka = a->shape.dims[p->trans_a ? 0 : 1], kb = b->shape.dims[p->trans_b ? 1 : 0];
    if (ka >= 0 && kb >= 0 && ka != kb)
      return kiln_error(KILN_ERR_SHAPE, "A '%s' has K = %" PRId64 " but B '%s' has K = %" PRId64, a->name, ka, b->name,
                        kb);
  }
  if (c && c->shape.rank >= 0) {
    if (c->shape.rank > 2) return kiln_error(KILN_ERR_SHAPE, "C '%s' must have rank <= 2", c->name);
    for (int32_t i = 0; i < c->shape.rank; i++) {
      int64_t cd = c->shape.dims[i], od = out.dims[2 - c->shape.rank + i];
      if (cd >= 0 && od >= 0 && cd != 1 && cd != od)
        return kiln_error(KILN_ERR_SHAPE, "C '%s' does not broadcast to [M, N]", c->name);
    }
  }
  return kiln_infer_set_output(g, n, 0, a->dtype, &out);
}

static kiln_status infer_einsum(kiln_graph *g, kiln_node *n) {
  const kiln_einsum_params *p = n->params;
  int32_t ranks[KILN_EINSUM_MAX_OPERANDS];
  const int64_t *dims[KILN_EINSUM_MAX_OPERANDS];
  kiln_dtype dt = KILN_DTYPE_UNDEFINED;
  bool known = true;
  for (int32_t k = 0; k < n->n_inputs; k++) {
    const kiln_value *v;
    KILN_TRY(kiln_require_input(g, n, k, &v));
    if (k == 0) dt = v->dtype;
    else if (v->dtype != dt) return kiln_error(KILN_ERR_SHAPE, "operands differ in dtype");
    ranks[k] = v->shape.rank;
    dims[k] = v->shape.dims;
    if (v->shape.rank < 0) known = false;
  }
  if (!kiln_dtype_is_float(dt) && !kiln_dtype_is_int(dt))
    return kiln_error(KILN_ERR_SHAPE, "dtype %s is not allowed", kiln_dtype_name(dt));
  kiln_shape out;
  if (!known) {
    bool ell = false;
    for (int32_t j = 0; j < p->out_len; j++) ell |= p->out[j] == KILN_EINSUM_ELLIPSIS;
    if (p->explicit_output && !ell) {
      kiln_shape_init(&out, p->out_len, NULL);
      for (int32_t j = 0; j < p->out_len; j++) out.dims[j] = KILN_DIM_DYNAMIC;
    } else {
      kiln_shape_unknown(&out);
    }
    return kiln_infer_set_output(g, n, 0, dt, &out);
  }
  kiln_einsum_plan plan;
  KILN_TRY(kiln_einsum_plan_make(p, n->n_inputs, ranks, dims, &plan));
  kiln_shape_init(&out, plan.out_rank, NULL);
  for (int32_t j = 0; j < plan.out_rank; j++) out.dims[j] = plan.extent[plan.out_label[j]];
  return kiln_infer_set_output(g, n, 0, dt, &out);
}

kiln_status kiln_matrix_infer(kiln_graph *g, kiln_node *n) {
  switch (n->op) {
  case KILN_OP_MatMul: return infer_matmul(g, n);
  case KILN_OP_Gemm: return infer_gemm(g, n);
  case KILN_OP_Einsum: return infer_einsum(g, n);
  default: return kiln_error(KILN_ERR_INTERNAL, "not a matrix op");
  }
}

int64_t kiln_matrix_macs(const kiln_graph *g, const kiln_node *n) {
  const kiln_value *y = kiln_node_output(g, n, 0), *a = kiln_node_input(g, n, 0);
  if (!y || !a) return 0;
  switch (n->op) {
  case KILN_OP_MatMul:
  case KILN_OP_Gemm: {
    /* output elements (batch x M x N) times K, K being A's contracted dim. */
    int64_t ny = kiln_shape_numel(&y->shape);
    if (ny < 0 || a->shape.rank < 1) return 0;
    int32_t kd = a->shape.rank - 1;
    if (n->op == KILN_OP_Gemm && n->params && ((const kiln_gemm_params *)n->params)->trans_a) kd = 0;
    int64_t k = a->shape.dims[kd];
    return k < 0 ? 0 : ny * k;
  }
  case KILN_OP_Einsum: {
    const kiln_einsum_params *p = n->params;
    if (!p || n->n_inputs != p->n_operands) return 0;
    int32_t ranks[KILN_EINSUM_MAX_OPERANDS];
    const int64_t *dims[KILN_EINSUM_MAX_OPERANDS];
    for (int32_t k = 0; k < n->n_inputs; k++) {
      const kiln_value *v = kiln_node_input(g, n, k);
      if (!v || v->shape.rank < 0) return 0;
      ranks[k] = v->shape.rank;
      dims[k] = v->shape.dims;
    }
    kiln_einsum_plan plan;
    kiln_status st = kiln_einsum_plan_make(p, n->n_inputs, ranks, dims, &plan);
    if (st) {
      kiln_status_destroy(st);
      return 0;
    }
    int64_t total = 1;
    for (int l = 0; l < KILN_EINSUM_MAX_LABELS; l++) {
      if (plan.extent[l] == -2) continue;
      if (plan.extent[l] < 0) return 0;
      if (plan.extent[l] > 0 && total > INT64_MAX / plan.extent[l]) return 0;
      total *= plan.extent[l];
    }
    return total;
  }
  default: return 0;
  }
}
