/*
 * A compact, bounds-checked binary encoding of a node's attributes, for kernels that rebuild the node at
 * load time (the reference kernel). Layout: u32 count, then per attribute: u32 name length, name, u32 kind,
 * payload (int: i64; float: f32; string: u32 len + bytes; ints: u32 n + i64[n]; floats: u32 n + f32[n];
 * strings: u32 n + (u32 len + bytes)*; tensor: u32 dtype, u32 rank, i64 dims[rank], u64 nbytes, bytes).
 */
#include "runtime/kernel.h"

#include "core/dtype.h"
#include "ir/graph.h"

#include <stdlib.h>
#include <string.h>

typedef struct wbuf {
  uint8_t *p;
  size_t n, cap;
  int oom;
} wbuf;

static void put(wbuf *b, const void *d, size_t n) {
  if (b->oom) return;
  if (b->n + n > b->cap) {
    size_t c = b->cap ? b->cap * 2 : 256;
    while (c < b->n + n) c *= 2;
    uint8_t *q = realloc(b->p, c);
    if (!q) {
      b->oom = 1;
      return;
    }
    b->p = q;
    b->cap = c;
  }
  if (n) memcpy(b->p + b->n, d, n);
  b->n += n;
}
static void put32(wbuf *b, uint32_t v) { put(b, &v, 4); }
static void put64(wbuf *b, uint64_t v) { put(b, &v, 8); }
static void put_str(wbuf *b, const char *s, size_t n) {
  put32(b, (uint32_t)n);
  put(b, s, n);
}

kiln_status kiln_attrs_serialize(const kiln_node *n, uint8_t **out, size_t *size) {
  wbuf b = {0};
  put32(&b, (uint32_t)n->n_attrs);
  for (int32_t i = 0; i < n->n_attrs; i++) {
    const kiln_attr *a = &n->attrs[i];
    uint32_t kind = a->type;
    if (kind == KILN_ATTR_GRAPH || kind == KILN_ATTR_GRAPHS || kind == KILN_ATTR_SPARSE_TENSORS ||
        kind == KILN_ATTR_TYPE_PROTO || kind == KILN_ATTR_TYPE_PROTOS) {
      free(b.p);
      return kiln_error(KILN_ERR_UNSUPPORTED, "attribute '%s' of node '%s' cannot be stored in an engine", a->name, n->name);
    }
    put_str(&b, a->name, strlen(a->name));
    put32(&b, kind);
    switch (a->type) {
    case KILN_ATTR_INT: put64(&b, (uint64_t)a->i); break;
    case KILN_ATTR_FLOAT: put(&b, &a->f, 4); break;
    case KILN_ATTR_STRING: put_str(&b, a->s ? a->s : "", a->s_len); break;
    case KILN_ATTR_INTS: put32(&b, (uint32_t)a->count); put(&b, a->ints, 8 * a->count); break;
    case KILN_ATTR_FLOATS: put32(&b, (uint32_t)a->count); put(&b, a->floats, 4 * a->count); break;
    case KILN_ATTR_STRINGS:
      put32(&b, (uint32_t)a->count);
      for (size_t k = 0; k < a->count; k++) put_str(&b, a->strings[k], strlen(a->strings[k]));
      break;
    case KILN_ATTR_TENSOR: case KILN_ATTR_TENSORS: {
      size_t cnt = a->type == KILN_ATTR_TENSOR ? 1 : a->count;
      if (a->type == KILN_ATTR_TENSORS) put32(&b, (uint32_t)cnt);
      for (size_t k = 0; k < cnt; k++) {
        const kiln_tensor *t = &a->tensors[k];
        put32(&b, t->dtype);
        put32(&b, (uint32_t)t->rank);
        put(&b, t->dims, 8 * (size_t)t->rank);
        size_t nb = kiln_tensor_nbytes(t);
        put64(&b, nb);
        put(&b, t->data, nb);
      }
      break;
    }
    default: break;
    }
  }
  if (b.oom) {
    free(b.p);
    return kiln_error(KILN_ERR_OUT_OF_MEMORY, "out of memory serializing node '%s'", n->name);
  }
  *out = b.p;
  *size = b.n;
  return NULL;
}

typedef struct rbuf {
  const uint8_t *p;
  size_t n, at;
  int bad;
} rbuf;

static const uint8_t *take(rbuf *r, size_t n) {
  if (r->bad || n > r->n - r->at) {
    r->bad = 1;
    return NULL;
  }
  const uint8_t *p = r->p + r->at;
  r->at += n;
  return p;
}
static uint32_t get32(rbuf *r) {
  const uint8_t *p = take(r, 4);
  uint32_t v = 0;
  if (p) memcpy(&v, p, 4);
  return v;
}
static uint64_t get64(rbuf *r) {
  const uint8_t *p = take(r, 8);
  uint64_t v = 0;
  if (p) memcpy(&v, p, 8);
  return v;
}
static char *get_str(rbuf *r, size_t *len) {
  uint32_t n = get32(r);
  const uint8_t *p = take(r, n);
  if (!p) return NULL;
  char *s = malloc((size_t)n + 1);
  if (!s) return NULL;
  memcpy(s, p, n);
  s[n] = 0;
  if (len) *len = n;
  return s;
}

static kiln_status read_tensor(rbuf *r, kiln_tensor *t) {
  memset(t, 0, sizeof *t);
  t->dtype = (kiln_dtype)get32(r);
  uint32_t rank = get32(r);
  if (rank > KILN_MAX_RANK || !kiln_dtype_is_valid(t->dtype)) r->bad = 1;
  if (r->bad) return NULL;
  t->rank = (int32_t)rank;
  const uint8_t *d = take(r, 8 * (size_t)rank);
  if (d) memcpy(t->dims, d, 8 * (size_t)rank);
  uint64_t nb = get64(r);
  kiln_shape s;
  kiln_shape_init(&s, t->rank, t->dims);
  int64_t numel = kiln_shape_numel(&s);
  if (r->bad || numel < 0 || (uint64_t)numel * kiln_dtype_size(t->dtype) != nb) {
    r->bad = 1;
    return NULL;
  }
  const uint8_t *src = take(r, nb);
  if (!src) return NULL;
  t->data = malloc(nb ? nb : 1);
  KILN_CHECK_ALLOC(t->data);
  memcpy(t->data, src, nb);
  return NULL;
}

kiln_status kiln_attrs_deserialize(const uint8_t *data, size_t size, kiln_node *n) {
  rbuf r = {data, size, 0, 0};
  uint32_t count = get32(&r);
  if (count > 4096) r.bad = 1;
  for (uint32_t i = 0; i < count && !r.bad; i++) {
    kiln_attr a;
    memset(&a, 0, sizeof a);
    a.name = get_str(&r, NULL);
    a.type = (kiln_attr_type)get32(&r);
    if (!a.name) r.bad = 1;
    kiln_status st = NULL;
    switch (r.bad ? KILN_ATTR_UNDEFINED : a.type) {
    case KILN_ATTR_INT: a.i = (int64_t)get64(&r); break;
    case KILN_ATTR_FLOAT: {
      const uint8_t *p = take(&r, 4);
      if (p) memcpy(&a.f, p, 4);
      break;
    }
    case KILN_ATTR_STRING: a.s = get_str(&r, &a.s_len); if (!a.s) r.bad = 1; break;
    case KILN_ATTR_INTS: case KILN_ATTR_FLOATS: {
      a.count = get32(&r);
      size_t es = a.type == KILN_ATTR_INTS ? 8 : 4;
      const uint8_t *p = take(&r, es * a.count);
      void *dst = malloc(es * a.count + 1);
      if (!p || !dst) {
        free(dst);
        r.bad = 1;
        break;
      }
      memcpy(dst, p, es * a.count);
      if (a.type == KILN_ATTR_INTS) a.ints = dst;
      else a.floats = dst;
      break;
    }
    case KILN_ATTR_STRINGS: {
      uint32_t cnt = get32(&r);
      if (cnt > size) { r.bad = 1; break; }
      a.strings = calloc((size_t)cnt + 1, sizeof(char *));
      if (!a.strings) { r.bad = 1; break; }
      for (uint32_t k = 0; k < cnt && !r.bad; k++) {
        a.strings[k] = get_str(&r, NULL);
        if (!a.strings[k]) r.bad = 1;
        else a.count = k + 1;
      }
      break;
    }
    case KILN_ATTR_TENSOR: case KILN_ATTR_TENSORS: {
      uint32_t cnt = a.type == KILN_ATTR_TENSOR ? 1 : get32(&r);
      if (cnt > size) { r.bad = 1; break; }
      a.tensors = calloc((size_t)cnt + 1, sizeof(kiln_tensor));
      if (!a.tensors) { r.bad = 1; break; }
      for (uint32_t k = 0; k < cnt && !r.bad && !st; k++) {
        st = read_tensor(&r, &a.tensors[k]);
        if (!r.bad) a.count = k + 1;
      }
      break;
    }
    default: r.bad = 1; break;
    }
    if (st || r.bad) {
      kiln_attr_free(&a);
      if (st) return st;
      break;
    }
    KILN_TRY(kiln_node_append_attr(n, &a));
  }
  if (r.bad || r.at != r.n) return kiln_error(KILN_ERR_PARSE, "layer '%s': malformed attribute parameters", n->name);
  return NULL;
}
