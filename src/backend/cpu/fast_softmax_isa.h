/*
 * ISA template of the softmax kernels, included by fast_softmax.c once per ISA (scalar, AVX2,
 * AVX-512) with SUF, ATTR, VT, VW, VLOAD, VSTORE, VSET1, VADD, VSUB, VMUL, VMAX, VEXP, VHMAX, VHADD
 * defined. Tails use the scalar formulas (libm expf, within 2 ulp of the vector exp). Not public.
 */
#define SM_CAT2(a, b) a##_##b
#define SM_CAT(a, b) SM_CAT2(a, b)
#define SM_FN(name) SM_CAT(name, SUF)

/* One contiguous row (inner == 1). */
ATTR static void SM_FN(sm_row)(const float *x, float *y, int64_t n, bool lg) {
  int64_t i = 0;
  VT vm = VSET1(-INFINITY);
  for (; i + VW <= n; i += VW) vm = VMAX(vm, VLOAD(x + i));
  float m = VHMAX(vm);
  for (; i < n; i++) m = x[i] > m ? x[i] : m;
  VT vs = VSET1(0.0f), vmm = VSET1(m);
  float s = 0;
  i = 0;
  if (lg) { /* log-softmax needs only the sum, y = x - m - log(sum) */
    for (; i + VW <= n; i += VW) vs = VADD(vs, VEXP(VSUB(VLOAD(x + i), vmm)));
    for (; i < n; i++) s += expf(x[i] - m);
    s += VHADD(vs);
    /* (x - m) - log(s): x - m is exact near the max, where the result is small */
    float ls = logf(s);
    VT c = VSET1(ls);
    for (i = 0; i + VW <= n; i += VW) VSTORE(y + i, VSUB(VSUB(VLOAD(x + i), vmm), c));
    for (; i < n; i++) y[i] = (x[i] - m) - ls;
    return;
  }
  for (; i + VW <= n; i += VW) {
    VT e = VEXP(VSUB(VLOAD(x + i), vmm));
    VSTORE(y + i, e);
    vs = VADD(vs, e);
  }
  for (; i < n; i++) s += (y[i] = expf(x[i] - m));
  s += VHADD(vs);
  VT r = VSET1(1.0f / s);
  float rs = 1.0f / s;
  for (i = 0; i + VW <= n; i += VW) VSTORE(y + i, VMUL(VLOAD(y + i), r));
  for (; i < n; i++) y[i] *= rs;
}

/* A block of nc columns (nc <= SM_BLOCK) of one outer slice: x[a*inner + j], a < axis, j < nc. */
ATTR static void SM_FN(sm_cols)(const float *x, float *y, int64_t axis, int64_t inner, int64_t nc, bool lg) {
  float m[SM_BLOCK], s[SM_BLOCK];
  int64_t j;
  for (j = 0; j + VW <= nc; j += VW) VSTORE(m + j, VLOAD(x + j));
  for (; j < nc; j++) m[j] = x[j];
  for (int64_t a = 1; a < axis; a++) {
    const float *xr = x + a * inner;
    for (j = 0; j + VW <= nc; j += VW) VSTORE(m + j, VMAX(VLOAD(m + j), VLOAD(xr + j)));
    for (; j < nc; j++) m[j] = xr[j] > m[j] ? xr[j] : m[j];
  }
  for (j = 0; j < nc; j++) s[j] = 0;
  for (int64_t a = 0; a < axis; a++) {
    const float *xr = x + a * inner;
    float *yr = y + a * inner;
    for (j = 0; j + VW <= nc; j += VW) {
      VT e = VEXP(VSUB(VLOAD(xr + j), VLOAD(m + j)));
      if (!lg) VSTORE(yr + j, e);
      VSTORE(s + j, VADD(VLOAD(s + j), e));
    }
    for (; j < nc; j++) {
      float e = expf(xr[j] - m[j]);
      if (!lg) yr[j] = e;
      s[j] += e;
    }
  }
  if (lg) {
    for (j = 0; j < nc; j++) s[j] = logf(s[j]);
  } else {
    for (j = 0; j < nc; j++) s[j] = 1.0f / s[j];
  }
  for (int64_t a = 0; a < axis; a++) {
    const float *xr = x + a * inner;
    float *yr = y + a * inner;
    if (lg) {
      for (j = 0; j + VW <= nc; j += VW) VSTORE(yr + j, VSUB(VSUB(VLOAD(xr + j), VLOAD(m + j)), VLOAD(s + j)));
      for (; j < nc; j++) yr[j] = (xr[j] - m[j]) - s[j];
    } else {
      for (j = 0; j + VW <= nc; j += VW) VSTORE(yr + j, VMUL(VLOAD(yr + j), VLOAD(s + j)));
      for (; j < nc; j++) yr[j] *= s[j];
    }
  }
}

#undef SM_FN
#undef SM_CAT
#undef SM_CAT2
