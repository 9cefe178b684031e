#include "build/timing_cache.h"

#include "core/file.h"

#include <cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define FORMAT_NAME "kiln-timing-cache"
/* A cache holds one small entry per layer configuration and GPU; far below this even for many models.
 * The cap keeps a wrong path (a model file, a log) from being read whole. */
#define MAX_FILE_BYTES ((size_t)256 << 20)

struct kiln_timing_cache {
  kiln_timing_entry *e; /* sorted by key (binary search; sorted output makes equal caches equal files) */
  int n, cap;
  bool dirty;
};

kiln_status kiln_timing_cache_create(kiln_timing_cache **out) {
  *out = calloc(1, sizeof **out);
  KILN_CHECK_ALLOC(*out);
  return NULL;
}

static void entry_free(kiln_timing_entry *e) {
  free(e->key);
  free(e->kernel);
}

void kiln_timing_cache_destroy(kiln_timing_cache *c) {
  if (!c) return;
  for (int i = 0; i < c->n; i++) entry_free(&c->e[i]);
  free(c->e);
  free(c);
}

/* Index of key, or -(insertion point) - 1. */
static int search(const kiln_timing_cache *c, const char *key) {
  int lo = 0, hi = c->n - 1;
  while (lo <= hi) {
    int mid = lo + (hi - lo) / 2;
    int r = strcmp(c->e[mid].key, key);
    if (!r) return mid;
    if (r < 0) lo = mid + 1;
    else hi = mid - 1;
  }
  return -lo - 1;
}

const kiln_timing_entry *kiln_timing_cache_find(const kiln_timing_cache *c, const char *key) {
  int i = search(c, key);
  return i >= 0 ? &c->e[i] : NULL;
}

static char *dup_str(const char *s) {
  size_t n = strlen(s) + 1;
  char *p = malloc(n);
  if (p) memcpy(p, s, n);
  return p;
}

kiln_status kiln_timing_cache_put(kiln_timing_cache *c, const char *key, const char *kernel, double ms, double heuristic_ms) {
  if (!key || !*key || !kernel || !*kernel) return kiln_error(KILN_ERR_INVALID_ARGUMENT, "timing cache: empty key or kernel name");
  char *k = dup_str(key), *v = dup_str(kernel);
  if (!k || !v) {
    free(k);
    free(v);
    return kiln_error(KILN_ERR_OUT_OF_MEMORY, "out of memory (timing cache)");
  }
  int i = search(c, key);
  if (i >= 0) {
    entry_free(&c->e[i]);
  } else {
    if (c->n == c->cap) {
      int cap = c->cap ? c->cap * 2 : 64;
      kiln_timing_entry *e = realloc(c->e, sizeof *e * (size_t)cap);
      if (!e) {
        free(k);
        free(v);
        return kiln_error(KILN_ERR_OUT_OF_MEMORY, "out of memory (timing cache)");
      }
      c->e = e;
      c->cap = cap;
    }
    i = -i - 1;
    memmove(&c->e[i + 1], &c->e[i], sizeof *c->e * (size_t)(c->n - i));
    c->n++;
  }
  c->e[i] = (kiln_timing_entry){k, v, ms, heuristic_ms};
  c->dirty = true;
  return NULL;
}

int kiln_timing_cache_size(const kiln_timing_cache *c) { return c->n; }
bool kiln_timing_cache_dirty(const kiln_timing_cache *c) { return c->dirty; }

static bool blank(const char *s, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (s[i] != ' ' && s[i] != '\t' && s[i] != '\n' && s[i] != '\r') return false;
  return true;
}

/* The entries go into a scratch cache first, so a file that fails half way leaves `c` as it was. */
kiln_status kiln_timing_cache_parse(kiln_timing_cache *c, const char *text, size_t len, const char *what) {
  if (blank(text, len)) return NULL;
  const char *end = NULL;
  cJSON *root = cJSON_ParseWithLengthOpts(text, len, &end, 0);
  if (!root) {
    size_t at = end && end >= text && end <= text + len ? (size_t)(end - text) : len;
    return kiln_error(KILN_ERR_PARSE, "timing cache '%s': not valid JSON (truncated or malformed near byte %zu of %zu)",
                      what, at, len);
  }
  if (end && end >= text && end < text + len && !blank(end, (size_t)(text + len - end))) {
    cJSON_Delete(root);
    return kiln_error(KILN_ERR_PARSE, "timing cache '%s': not valid JSON (unexpected text after it at byte %zu of %zu)", what,
                      (size_t)(end - text), len);
  }
  kiln_status st = NULL;
  kiln_timing_cache *tmp = NULL;
  const cJSON *fmt = cJSON_GetObjectItemCaseSensitive(root, "format");
  const cJSON *ver = cJSON_GetObjectItemCaseSensitive(root, "version");
  const cJSON *entries = cJSON_GetObjectItemCaseSensitive(root, "entries");
  if (!cJSON_IsObject(root) || !cJSON_IsString(fmt) || strcmp(fmt->valuestring, FORMAT_NAME) != 0)
    st = kiln_error(KILN_ERR_PARSE, "timing cache '%s': not a kiln timing cache (no \"format\": \"" FORMAT_NAME "\")", what);
  else if (!cJSON_IsNumber(ver) || ver->valuedouble != KILN_TIMING_CACHE_VERSION)
    st = cJSON_IsNumber(ver) ? kiln_error(KILN_ERR_PARSE, "timing cache '%s': version %g, this kiln reads version %d (delete the "
                                          "file to re-time)", what, ver->valuedouble, KILN_TIMING_CACHE_VERSION)
                             : kiln_error(KILN_ERR_PARSE, "timing cache '%s': no \"version\" number", what);
  else if (!cJSON_IsArray(entries))
    st = kiln_error(KILN_ERR_PARSE, "timing cache '%s': \"entries\" is missing or not an array", what);
  else st = kiln_timing_cache_create(&tmp);
  int idx = 0;
  const cJSON *it;
  if (!st) cJSON_ArrayForEach(it, entries) {
    const cJSON *k = cJSON_GetObjectItemCaseSensitive(it, "key"), *v = cJSON_GetObjectItemCaseSensitive(it, "kernel");
    const cJSON *ms = cJSON_GetObjectItemCaseSensitive(it, "ms"), *hm = cJSON_GetObjectItemCaseSensitive(it, "heuristic_ms");
    if (!cJSON_IsObject(it) || !cJSON_IsString(k) || !*k->valuestring || !cJSON_IsString(v) || !*v->valuestring ||
        !cJSON_IsNumber(ms) || !isfinite(ms->valuedouble) || ms->valuedouble < 0 || (hm && !cJSON_IsNumber(hm))) {
      st = kiln_error(KILN_ERR_PARSE, "timing cache '%s': entry %d needs a non-empty \"key\" and \"kernel\" and a time \"ms\" >= 0",
                      what, idx);
      break;
    }
    double h = hm && isfinite(hm->valuedouble) ? hm->valuedouble : -1;
    if ((st = kiln_timing_cache_put(tmp, k->valuestring, v->valuestring, ms->valuedouble, h))) break;
    idx++;
  }
  for (int i = 0; !st && i < tmp->n; i++)
    st = kiln_timing_cache_put(c, tmp->e[i].key, tmp->e[i].kernel, tmp->e[i].ms, tmp->e[i].heuristic_ms);
  kiln_timing_cache_destroy(tmp);
  cJSON_Delete(root);
  return st;
}

kiln_status kiln_timing_cache_load(kiln_timing_cache *c, const char *path) {
  struct stat sb;
  if (stat(path, &sb) != 0 && errno == ENOENT) return NULL; /* first build: the file is created at the end */
  void *text;
  size_t len;
  KILN_TRY(kiln_error_prefix(kiln_file_read(path, MAX_FILE_BYTES, &text, &len), "timing cache: "));
  bool was_dirty = c->dirty;
  kiln_status st = kiln_timing_cache_parse(c, text, len, path);
  free(text);
  if (!st) c->dirty = was_dirty; /* what was just read is already in the file */
  return st;
}

kiln_status kiln_timing_cache_serialize(const kiln_timing_cache *c, char **out) {
  *out = NULL;
  cJSON *root = cJSON_CreateObject(), *arr = NULL;
  bool ok = root && cJSON_AddStringToObject(root, "format", FORMAT_NAME) &&
            cJSON_AddNumberToObject(root, "version", KILN_TIMING_CACHE_VERSION) &&
            (arr = cJSON_AddArrayToObject(root, "entries"));
  for (int i = 0; ok && i < c->n; i++) {
    cJSON *e = cJSON_CreateObject();
    if (!e || !cJSON_AddItemToArray(arr, e)) {
      cJSON_Delete(e);
      ok = false;
      break;
    }
    ok = cJSON_AddStringToObject(e, "key", c->e[i].key) &&
         cJSON_AddStringToObject(e, "kernel", c->e[i].kernel) && cJSON_AddNumberToObject(e, "ms", c->e[i].ms) &&
         (c->e[i].heuristic_ms < 0 || cJSON_AddNumberToObject(e, "heuristic_ms", c->e[i].heuristic_ms));
  }
  char *text = ok ? cJSON_Print(root) : NULL;
  cJSON_Delete(root);
  if (!text) return kiln_error(KILN_ERR_OUT_OF_MEMORY, "out of memory (writing the timing cache)");
  /* cJSON's allocator is malloc by default; copy anyway so callers free() what we own, with a newline */
  size_t n = strlen(text);
  *out = malloc(n + 2);
  if (*out) {
    memcpy(*out, text, n);
    (*out)[n] = '\n';
    (*out)[n + 1] = 0;
  }
  cJSON_free(text);
  KILN_CHECK_ALLOC(*out);
  return NULL;
}

kiln_status kiln_timing_cache_save(const kiln_timing_cache *c, const char *path) {
  char *text;
  KILN_TRY(kiln_timing_cache_serialize(c, &text));
  kiln_status st = kiln_file_write_atomic(path, text, strlen(text));
  free(text);
  return st ? kiln_error_prefix(st, "writing timing cache '%s': ", path) : NULL;
}

int kiln_timing_key_conv(const kiln_cuda_conv_desc *d, const unsigned misalign[3], const char *gpu_name, int cc_major,
                         int cc_minor, char *buf, size_t size) {
  /* Stable, human-readable: someone reading the file can tell which layer an entry is. Pixel strides are
   * written resolved (0 = dense) so equal layouts give equal keys. */
  int64_t ips = d->in_pixel_stride ? d->in_pixel_stride : d->in_c, ops = d->out_pixel_stride ? d->out_pixel_stride : d->out_c;
  int64_t rps = d->has_residual ? (d->residual_pixel_stride ? d->residual_pixel_stride : d->out_c) : 0;
  return snprintf(buf, size,
                  "conv n%lld c%lld %lldx%lld oc%lld %lldx%lld k%lldx%lld s%lldx%lld p%lldx%lld d%lldx%lld g%lld "
                  "ps%lld/%lld/%lld oco%lld cmp%d out%d bias%d res%d act%d/%g/%g/%d zp%d al%u/%u/%u | %s | sm_%d%d",
                  (long long)d->batch, (long long)d->in_c, (long long)d->in_h, (long long)d->in_w, (long long)d->out_c,
                  (long long)d->out_h, (long long)d->out_w, (long long)d->kernel_h, (long long)d->kernel_w,
                  (long long)d->stride_h, (long long)d->stride_w, (long long)d->pad_top, (long long)d->pad_left,
                  (long long)d->dilation_h, (long long)d->dilation_w, (long long)d->group, (long long)ips, (long long)ops,
                  (long long)rps, (long long)(d->out_c_offset % 8), (int)d->compute, (int)d->out_dtype, d->has_bias != 0,
                  d->has_residual != 0, (int)d->epilogue.act, (double)d->epilogue.alpha, (double)d->epilogue.beta,
                  d->epilogue.residual_before_act != 0, d->in_zero_padded != 0, misalign[0] % 16, misalign[1] % 16,
                  misalign[2] % 16, gpu_name ? gpu_name : "?", cc_major, cc_minor);
}
