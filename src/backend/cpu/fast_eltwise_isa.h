/*
 * ISA template of the elementwise row kernels: fast_eltwise.c includes it three times (scalar,
 * AVX2, AVX-512) with the vector type and operations defined as macros, so all three paths share one
 * text and cannot drift apart. Not a public header.
 *   SUF, ATTR, VT, VW, VLOAD, VSTORE, VSET1, VADD, VSUB, VMUL, VDIV, VMAX, VMIN, VSQRT, VFMA,
 *   VABS, VNEG, VEXP, VERFC_POS, VCOPYSIGN(mag, sgn), VSEL_LT(a, b, t, f) (a < b ? t : f), VACT
 */
#define EW_CAT2(a, b) a##_##b
#define EW_CAT(a, b) EW_CAT2(a, b)
#define EW_FN(name) EW_CAT(name, SUF)

ATTR static inline VT EW_FN(v_erf)(VT x) {
  /* |x| >= 0.5: 1 - erfc(|x|) with the sign of x (erfc's fractional error < 1.2e-7 is then an absolute
   * error well below float eps); |x| < 0.5: the Maclaurin series, which keeps relative accuracy near 0
   * where 1 - erfc would cancel. */
  VT ax = VABS(x);
  VT big = VCOPYSIGN(VSUB(VSET1(1.0f), VERFC_POS(VMIN(ax, VSET1(10.0f)))), x);
  VT z = VMUL(x, x);
  VT p = VSET1(-1.0f / 1320.0f);
  p = VFMA(p, z, VSET1(1.0f / 216.0f));
  p = VFMA(p, z, VSET1(-1.0f / 42.0f));
  p = VFMA(p, z, VSET1(1.0f / 10.0f));
  p = VFMA(p, z, VSET1(-1.0f / 3.0f));
  p = VFMA(p, z, VSET1(1.0f));
  VT small = VMUL(VMUL(p, x), VSET1(1.12837916709551257f)); /* 2/sqrt(pi) */
  return VSEL_LT(ax, VSET1(0.5f), small, big);
}

/* One row of a binary op: a and b advance by ai / bi (0 or 1) per element. */
ATTR static void EW_FN(bin_row)(kiln_fast_binop op, const float *a, int64_t ai, const float *b, int64_t bi, float *y,
                                int64_t n) {
#define EW_BL(VE, SE)                                                                                \
  do {                                                                                               \
    int64_t i = 0;                                                                                   \
    if (ai && bi) {                                                                                  \
      for (; i + VW <= n; i += VW) {                                                                 \
        VT va = VLOAD(a + i), vb = VLOAD(b + i);                                                     \
        VSTORE(y + i, VE);                                                                           \
      }                                                                                              \
      for (; i < n; i++) {                                                                           \
        float sa = a[i], sb = b[i];                                                                  \
        y[i] = SE;                                                                                   \
      }                                                                                              \
    } else if (ai) {                                                                                 \
      VT vb = VSET1(b[0]);                                                                           \
      float sb = b[0];                                                                               \
      for (; i + VW <= n; i += VW) {                                                                 \
        VT va = VLOAD(a + i);                                                                        \
        VSTORE(y + i, VE);                                                                           \
      }                                                                                              \
      for (; i < n; i++) {                                                                           \
        float sa = a[i];                                                                             \
        y[i] = SE;                                                                                   \
      }                                                                                              \
    } else if (bi) {                                                                                 \
      VT va = VSET1(a[0]);                                                                           \
      float sa = a[0];                                                                               \
      for (; i + VW <= n; i += VW) {                                                                 \
        VT vb = VLOAD(b + i);                                                                        \
        VSTORE(y + i, VE);                                                                           \
      }                                                                                              \
      for (; i < n; i++) {                                                                           \
        float sb = b[i];                                                                             \
        y[i] = SE;                                                                                   \
      }                                                                                              \
    } else {                                                                                         \
      float sa = a[0], sb = b[0], r = SE;                                                            \
      for (; i < n; i++) y[i] = r;                                                                   \
    }                                                                                                \
  } while (0)
  switch (op) {
  case KILN_FAST_ADD: EW_BL(VADD(va, vb), sa + sb); break;
  case KILN_FAST_SUB: EW_BL(VSUB(va, vb), sa - sb); break;
  case KILN_FAST_MUL: EW_BL(VMUL(va, vb), sa * sb); break;
  case KILN_FAST_DIV: EW_BL(VDIV(va, vb), sa / sb); break;
  case KILN_FAST_MAX: EW_BL(VMAX(va, vb), sa > sb ? sa : sb); break;
  case KILN_FAST_MIN: EW_BL(VMIN(va, vb), sa < sb ? sa : sb); break;
  case KILN_FAST_POW:
    if (bi == 0 && ai && b[0] == 2.0f) {
      EW_BL(((void)vb, VMUL(va, va)), ((void)sb, sa * sa));
    } else if (bi == 0 && ai && b[0] == 0.5f) {
      EW_BL(((void)vb, VSQRT(va)), ((void)sb, sqrtf(sa)));
    } else {
      for (int64_t i = 0; i < n; i++) y[i] = powf(a[i * ai], b[i * bi]);
    }
    break;
  }
#undef EW_BL
}

/* Unary row; code = kiln_act value, or EW_CODE_BASE + kiln_fast_unop. */
ATTR static void EW_FN(un_row)(int code, float alpha, float beta, const float *x, float *y, int64_t n) {
#define EW_UL(E)                                                                                     \
  do {                                                                                               \
    int64_t i = 0;                                                                                   \
    for (; i + VW <= n; i += VW) {                                                                   \
      VT v = VLOAD(x + i);                                                                           \
      VSTORE(y + i, E);                                                                              \
    }                                                                                                \
    if (i < n) { /* the tail through a padded buffer, so it gets the vector path's exact results */  \
      float tb[VW];                                                                                  \
      memset(tb, 0, sizeof tb);                                                                      \
      memcpy(tb, x + i, (size_t)(n - i) * 4);                                                        \
      VT v = VLOAD(tb);                                                                              \
      VSTORE(tb, E);                                                                                 \
      memcpy(y + i, tb, (size_t)(n - i) * 4);                                                        \
    }                                                                                                \
  } while (0)
  switch (code) {
  case KILN_ACT_NONE:
    if (x != y) memmove(y, x, (size_t)n * 4);
    break;
  case KILN_ACT_RELU: EW_UL(VACT(v, KILN_ACT_RELU, alpha, beta)); break;
  case KILN_ACT_LEAKY_RELU: EW_UL(VACT(v, KILN_ACT_LEAKY_RELU, alpha, beta)); break;
  case KILN_ACT_CLIP: EW_UL(VACT(v, KILN_ACT_CLIP, alpha, beta)); break;
  case KILN_ACT_SIGMOID: EW_UL(VACT(v, KILN_ACT_SIGMOID, alpha, beta)); break;
  case KILN_ACT_SILU: EW_UL(VACT(v, KILN_ACT_SILU, alpha, beta)); break;
  case KILN_ACT_HARDSWISH: EW_UL(VACT(v, KILN_ACT_HARDSWISH, alpha, beta)); break;
  case KILN_ACT_HARDSIGMOID: EW_UL(VACT(v, KILN_ACT_HARDSIGMOID, alpha, beta)); break;
  case KILN_ACT_TANH: EW_UL(VACT(v, KILN_ACT_TANH, alpha, beta)); break;
  case KILN_ACT_GELU: EW_UL(VACT(v, KILN_ACT_GELU, alpha, beta)); break;
  case EW_CODE_BASE + KILN_FAST_UN_SQRT: EW_UL(VSQRT(v)); break;
  case EW_CODE_BASE + KILN_FAST_UN_EXP: EW_UL(VEXP(v)); break;
  case EW_CODE_BASE + KILN_FAST_UN_NEG: EW_UL(VNEG(v)); break;
  case EW_CODE_BASE + KILN_FAST_UN_ABS: EW_UL(VABS(v)); break;
  case EW_CODE_BASE + KILN_FAST_UN_RECIPROCAL: EW_UL(VDIV(VSET1(1.0f), v)); break;
  case EW_CODE_BASE + KILN_FAST_UN_ERF: EW_UL(EW_FN(v_erf)(v)); break;
  }
#undef EW_UL
}

#undef EW_FN
#undef EW_CAT
#undef EW_CAT2
