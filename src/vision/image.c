/* Image files in and out: stb_image decodes, stb_image_write encodes (Debian libstb-dev headers).
 * The stb implementations are compiled here and only here (they are header-only libraries). */
#include "kiln/vision.h"

#include "core/file.h"
#include "core/status.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* stb is third-party code: keep its warnings out of kiln's -Wall -Wextra build. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wunused-but-set-variable"
#pragma GCC diagnostic ignored "-Wimplicit-fallthrough"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#pragma GCC diagnostic ignored "-Wtype-limits"
#define STB_IMAGE_IMPLEMENTATION
#define STBI_ONLY_JPEG
#define STBI_ONLY_PNG
#define STBI_ONLY_BMP
#define STBI_NO_STDIO /* kiln reads files itself: size limits and messages are ours */
/* STBI_MAX_DIMENSIONS stays at stb's default (2^24): with a lower one stbi_info itself fails on big
 * headers and its message ("unknown image type") hides the real reason, which our check below gives. */
#include <stb/stb_image.h>
#define STB_IMAGE_WRITE_IMPLEMENTATION
#define STBI_WRITE_NO_STDIO
/* stb_image_write's JPEG bit writer shifts a signed int into its sign bit (harmless on every compiler
 * kiln supports, but UB that the -fno-sanitize-recover UBSan build aborts on). Its functions are all
 * `static`, so in sanitizer builds (GCC defines __SANITIZE_ADDRESS__ there; kiln enables both together)
 * `static` is widened to exclude them from UBSan. The standard headers stb includes are included first
 * so that the macro never reaches them. */
#if defined(__SANITIZE_ADDRESS__)
#include <assert.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#pragma GCC diagnostic ignored "-Wattributes" /* the attribute is ignored on static variables: fine */
#define static static __attribute__((no_sanitize("undefined")))
#include <stb/stb_image_write.h>
#undef static
#else
#include <stb/stb_image_write.h>
#endif
#pragma GCC diagnostic pop

/* Compressed files larger than this are not photos (a 16384^2 PNG of noise is ~800 MB; be generous). */
#define KILN_IMAGE_MAX_FILE ((size_t)1 << 30)

void kiln_image_free(kiln_image *img) {
  if (!img) return;
  free(img->data);
  memset(img, 0, sizeof *img);
}

kiln_status kiln_image_resize_buffer(kiln_image *img, int width, int height) {
  if (width <= 0 || height <= 0 || width > KILN_IMAGE_MAX_SIDE || height > KILN_IMAGE_MAX_SIDE ||
      (int64_t)width * height > KILN_IMAGE_MAX_PIXELS)
    return kiln_error(KILN_ERR_INVALID_ARGUMENT, "image size %dx%d is out of range", width, height);
  size_t need = (size_t)width * (size_t)height * 3;
  if (need > img->capacity) {
    uint8_t *p = realloc(img->data, need);
    KILN_CHECK_ALLOC(p);
    img->data = p;
    img->capacity = need;
  }
  img->width = width;
  img->height = height;
  return NULL;
}

/* stb_image fills the missing tail of a cut-off baseline JPEG with grey instead of failing, which would
 * silently give half an image. A complete JPEG ends with the EOI marker FF D9 (possibly followed by junk
 * some cameras append), and FF D9 cannot occur inside entropy-coded data (FF is stuffed as FF 00). */
static int jpeg_has_eoi(const uint8_t *p, size_t n) {
  for (size_t i = n; i >= 2; i--)
    if (p[i - 2] == 0xFF && p[i - 1] == 0xD9) return 1;
  return 0;
}

/* Width and height straight from a PNG, JPEG or BMP header, for a precise message when stbi_info refuses
 * a file (it also refuses sizes it deems too large, but then only says "unknown image type"). */
static int sniff_size(const uint8_t *p, size_t n, int64_t *w, int64_t *h) {
  if (n >= 24 && !memcmp(p, "\x89PNG\r\n\x1a\n", 8) && !memcmp(p + 12, "IHDR", 4)) {
    *w = (int64_t)p[16] << 24 | p[17] << 16 | p[18] << 8 | p[19];
    *h = (int64_t)p[20] << 24 | p[21] << 16 | p[22] << 8 | p[23];
    return 1;
  }
  if (n >= 26 && p[0] == 'B' && p[1] == 'M') {
    *w = (int32_t)((uint32_t)p[18] | (uint32_t)p[19] << 8 | (uint32_t)p[20] << 16 | (uint32_t)p[21] << 24);
    int32_t hh = (int32_t)((uint32_t)p[22] | (uint32_t)p[23] << 8 | (uint32_t)p[24] << 16 | (uint32_t)p[25] << 24);
    *h = hh < 0 ? -(int64_t)hh : hh; /* negative height = top-down rows */
    return 1;
  }
  if (n >= 4 && p[0] == 0xFF && p[1] == 0xD8) { /* walk the marker segments to the frame header (SOFn) */
    size_t i = 2;
    while (i + 9 <= n && p[i] == 0xFF) {
      uint8_t m = p[i + 1];
      size_t len = (size_t)p[i + 2] << 8 | p[i + 3];
      if (m >= 0xC0 && m <= 0xCF && m != 0xC4 && m != 0xC8 && m != 0xCC) {
        *h = p[i + 5] << 8 | p[i + 6];
        *w = p[i + 7] << 8 | p[i + 8];
        return 1;
      }
      i += 2 + len;
    }
  }
  return 0;
}

kiln_status kiln_image_load_memory(const void *data, size_t size, const char *name, kiln_image *img) {
  if (!name) name = "<memory>";
  if (size == 0) return kiln_error(KILN_ERR_PARSE, "'%s' is empty (0 bytes), not an image", name);
  if (size > (size_t)INT32_MAX) return kiln_error(KILN_ERR_PARSE, "'%s' is too large for an image file", name);
  const uint8_t *p = data;
  int w = 0, h = 0, comp = 0;
  /* Header only: refuse absurd sizes before stb allocates anything for the pixels. */
  if (!stbi_info_from_memory(p, (int)size, &w, &h, &comp)) {
    int64_t sw, sh;
    if (sniff_size(p, size, &sw, &sh) && (sw > KILN_IMAGE_MAX_SIDE || sh > KILN_IMAGE_MAX_SIDE))
      return kiln_error(KILN_ERR_PARSE, "'%s': image is %lldx%lld, larger than the limit of %d pixels per side", name,
                        (long long)sw, (long long)sh, KILN_IMAGE_MAX_SIDE);
    return kiln_error(KILN_ERR_PARSE, "'%s' is not a JPEG, PNG or BMP image stb_image can read (%s)", name,
                      stbi_failure_reason() ? stbi_failure_reason() : "unknown format");
  }
  if (w <= 0 || h <= 0)
    return kiln_error(KILN_ERR_PARSE, "'%s': image header gives an empty size %dx%d", name, w, h);
  if (w > KILN_IMAGE_MAX_SIDE || h > KILN_IMAGE_MAX_SIDE || (int64_t)w * h > KILN_IMAGE_MAX_PIXELS)
    return kiln_error(KILN_ERR_PARSE, "'%s': image is %dx%d, larger than the limit of %d pixels per side and %lld in total",
                      name, w, h, KILN_IMAGE_MAX_SIDE, (long long)KILN_IMAGE_MAX_PIXELS);
  if (size >= 2 && p[0] == 0xFF && p[1] == 0xD8 && !jpeg_has_eoi(p, size))
    return kiln_error(KILN_ERR_PARSE, "'%s': truncated JPEG (no end-of-image marker)", name);
  int dw, dh, dc;
  uint8_t *pixels = stbi_load_from_memory(p, (int)size, &dw, &dh, &dc, 3);
  if (!pixels)
    return kiln_error(KILN_ERR_PARSE, "'%s': cannot decode image (%s)", name,
                      stbi_failure_reason() ? stbi_failure_reason() : "corrupt data");
  if (dw != w || dh != h) {
    stbi_image_free(pixels);
    return kiln_error(KILN_ERR_PARSE, "'%s': decoded size %dx%d differs from the header's %dx%d", name, dw, dh, w, h);
  }
  /* stb allocates with malloc (STBI_MALLOC default), so the image can adopt its buffer: no copy. */
  free(img->data);
  img->data = pixels;
  img->width = w;
  img->height = h;
  img->capacity = (size_t)w * (size_t)h * 3;
  return NULL;
}

kiln_status kiln_image_load(const char *path, kiln_image *img) {
  void *buf;
  size_t len;
  KILN_TRY(kiln_file_read(path, KILN_IMAGE_MAX_FILE, &buf, &len));
  kiln_status st = kiln_image_load_memory(buf, len, path, img);
  free(buf);
  return st;
}

/* stb_image_write hands out the encoded file in pieces; collect them, then write atomically. */
typedef struct membuf {
  uint8_t *p;
  size_t n, cap;
  int failed;
} membuf;

static void membuf_write(void *ctx, void *data, int size) {
  membuf *m = ctx;
  if (m->failed || size <= 0) return;
  if (m->n + (size_t)size > m->cap) {
    size_t cap = m->cap ? m->cap : 65536;
    while (cap < m->n + (size_t)size) cap *= 2;
    uint8_t *q = realloc(m->p, cap);
    if (!q) {
      m->failed = 1;
      return;
    }
    m->p = q;
    m->cap = cap;
  }
  memcpy(m->p + m->n, data, (size_t)size);
  m->n += (size_t)size;
}

static int ext_is(const char *path, const char *ext) {
  const char *dot = strrchr(path, '.');
  const char *slash = strrchr(path, '/');
  return dot && (!slash || dot > slash) && !strcasecmp(dot + 1, ext);
}

kiln_status kiln_image_write(const kiln_image *img, const char *path, int quality) {
  if (!img || !img->data || img->width <= 0 || img->height <= 0)
    return kiln_error(KILN_ERR_INVALID_ARGUMENT, "no image to write to '%s'", path);
  if (quality < 1 || quality > 100) quality = 90;
  membuf m = {0};
  int ok;
  if (ext_is(path, "png"))
    ok = stbi_write_png_to_func(membuf_write, &m, img->width, img->height, 3, img->data, img->width * 3);
  else if (ext_is(path, "bmp"))
    ok = stbi_write_bmp_to_func(membuf_write, &m, img->width, img->height, 3, img->data);
  else
    ok = stbi_write_jpg_to_func(membuf_write, &m, img->width, img->height, 3, img->data, quality);
  if (!ok || m.failed) {
    free(m.p);
    return kiln_error(m.failed ? KILN_ERR_OUT_OF_MEMORY : KILN_ERR_INTERNAL, "cannot encode image for '%s'", path);
  }
  kiln_status st = kiln_file_write_atomic(path, m.p, m.n);
  free(m.p);
  return st;
}
