/* Drawing detections: class-colored box outlines and filled labels with TrueType text (stb_truetype +
 * DejaVuSans), sized from the image so labels stay legible on thumbnails and on 4K photos alike. */
#include "kiln/vision.h"

#include "core/file.h"
#include "core/status.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wimplicit-fallthrough"
#define STB_TRUETYPE_IMPLEMENTATION
#define STBTT_STATIC /* private to this file: another library linking stb_truetype cannot clash */
#include <stb/stb_truetype.h>
#pragma GCC diagnostic pop

#define KILN_DEFAULT_FONT "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"

struct kiln_font {
  unsigned char *file; /* stb_truetype reads the font in place: keep the bytes alive */
  stbtt_fontinfo info;
  unsigned char *glyph; /* one glyph's coverage bitmap, reused for every character drawn */
  size_t glyph_cap;
};

kiln_status kiln_font_load(const char *path, kiln_font **out) {
  *out = NULL;
  if (!path) path = KILN_DEFAULT_FONT;
  kiln_font *f = calloc(1, sizeof *f);
  KILN_CHECK_ALLOC(f);
  size_t len;
  kiln_status st = kiln_file_read(path, (size_t)64 << 20, (void **)&f->file, &len);
  if (!st) {
    int off = len >= 12 ? stbtt_GetFontOffsetForIndex(f->file, 0) : -1;
    if (off < 0 || !stbtt_InitFont(&f->info, f->file, off))
      st = kiln_error(KILN_ERR_PARSE, "'%s' is not a TrueType font stb_truetype can read", path);
  }
  if (st) {
    kiln_font_destroy(f);
    return kiln_error_prefix(st, "font: ");
  }
  *out = f;
  return NULL;
}

void kiln_font_destroy(kiln_font *f) {
  if (!f) return;
  free(f->file);
  free(f->glyph);
  free(f);
}

/* Ultralytics' palette, so boxes look familiar to YOLO users; classes cycle through it. */
void kiln_class_color(int cls, uint8_t rgb[3]) {
  static const uint32_t palette[20] = {0xFF3838, 0xFF9D97, 0xFF701F, 0xFFB21D, 0xCFD231, 0x48F90A, 0x92CC17,
                                       0x3DDB86, 0x1A9334, 0x00D4BB, 0x2C99A8, 0x00C2FF, 0x344593, 0x6473FF,
                                       0x0018EC, 0x8438FF, 0x520085, 0xCB38FF, 0xFF95C8, 0xFF37C7};
  uint32_t c = palette[(unsigned)(cls < 0 ? -cls : cls) % 20];
  rgb[0] = (uint8_t)(c >> 16);
  rgb[1] = (uint8_t)(c >> 8);
  rgb[2] = (uint8_t)c;
}

static void fill_rect(kiln_image *img, int x0, int y0, int x1, int y1, const uint8_t c[3]) {
  if (x0 < 0) x0 = 0;
  if (y0 < 0) y0 = 0;
  if (x1 > img->width) x1 = img->width;
  if (y1 > img->height) y1 = img->height;
  for (int y = y0; y < y1; y++) {
    uint8_t *p = img->data + ((size_t)y * img->width + x0) * 3;
    for (int x = x0; x < x1; x++, p += 3) p[0] = c[0], p[1] = c[1], p[2] = c[2];
  }
}

/* Width in pixels of text at scale s (advance + kerning), and the largest glyph ascent/descent. */
static int text_width(const kiln_font *f, const char *s, float scale) {
  float w = 0;
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    int adv, lsb;
    stbtt_GetCodepointHMetrics(&f->info, *p, &adv, &lsb);
    w += adv * scale;
    if (p[1]) w += scale * stbtt_GetCodepointKernAdvance(&f->info, p[0], p[1]);
  }
  return (int)ceilf(w);
}

/* Alpha-blend text (ASCII/Latin-1 bytes) with its baseline at (x, baseline). */
static kiln_status draw_text(kiln_image *img, kiln_font *f, const char *s, float scale, int x, int baseline,
                             const uint8_t c[3]) {
  float pen = (float)x;
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    int adv, lsb, x0, y0, x1, y1;
    stbtt_GetCodepointHMetrics(&f->info, *p, &adv, &lsb);
    float sub = pen - floorf(pen);
    stbtt_GetCodepointBitmapBoxSubpixel(&f->info, *p, scale, scale, sub, 0, &x0, &y0, &x1, &y1);
    int gw = x1 - x0, gh = y1 - y0;
    if (gw > 0 && gh > 0) {
      size_t need = (size_t)gw * (size_t)gh;
      if (need > f->glyph_cap) {
        unsigned char *g = realloc(f->glyph, need);
        KILN_CHECK_ALLOC(g);
        f->glyph = g;
        f->glyph_cap = need;
      }
      stbtt_MakeCodepointBitmapSubpixel(&f->info, f->glyph, gw, gh, gw, scale, scale, sub, 0, *p);
      int ox = (int)floorf(pen) + x0, oy = baseline + y0;
      for (int gy = 0; gy < gh; gy++) {
        int y = oy + gy;
        if (y < 0 || y >= img->height) continue;
        for (int gx = 0; gx < gw; gx++) {
          int xx = ox + gx;
          unsigned a = f->glyph[(size_t)gy * gw + gx];
          if (xx < 0 || xx >= img->width || !a) continue;
          uint8_t *q = img->data + ((size_t)y * img->width + xx) * 3;
          for (int k = 0; k < 3; k++) q[k] = (uint8_t)((c[k] * a + q[k] * (255 - a) + 127) / 255);
        }
      }
    }
    pen += adv * scale;
    if (p[1]) pen += scale * stbtt_GetCodepointKernAdvance(&f->info, p[0], p[1]);
  }
  return NULL;
}

kiln_status kiln_draw_detections(kiln_image *img, const kiln_detections *dets, const char *const *names,
                                 int n_names, kiln_font *font) {
  if (!img || !img->data || !dets) return kiln_error(KILN_ERR_INVALID_ARGUMENT, "draw: missing image or detections");
  /* Ultralytics' sizing: line width ~0.3% and text ~3.5% of the mean side, with floors for small images. */
  const double mean_side = (img->width + img->height) / 2.0;
  int lw = (int)lround(mean_side * 0.003);
  if (lw < 2) lw = 2;
  float px = (float)fmax(12.0, round(mean_side * 0.035));
  float scale = 0, ascent_px = 0, descent_px = 0;
  if (font) {
    int asc, desc, gap;
    stbtt_GetFontVMetrics(&font->info, &asc, &desc, &gap);
    scale = stbtt_ScaleForPixelHeight(&font->info, px);
    ascent_px = asc * scale;
    descent_px = -desc * scale;
  }
  /* Outlines first, in reverse score order so the most confident box ends up on top. */
  for (int i = dets->count - 1; i >= 0; i--) {
    const kiln_detection *d = &dets->items[i];
    uint8_t col[3];
    kiln_class_color(d->cls, col);
    int x1 = (int)lroundf(d->x1), y1 = (int)lroundf(d->y1), x2 = (int)lroundf(d->x2), y2 = (int)lroundf(d->y2);
    if (x2 < x1 + 1) x2 = x1 + 1;
    if (y2 < y1 + 1) y2 = y1 + 1;
    /* Outline drawn inside the box so it never hides what is just outside it. */
    int t = lw < (x2 - x1 + 1) / 2 ? lw : (x2 - x1 + 1) / 2;
    int tv = lw < (y2 - y1 + 1) / 2 ? lw : (y2 - y1 + 1) / 2;
    if (t < 1) t = 1;
    if (tv < 1) tv = 1;
    fill_rect(img, x1, y1, x2, y1 + tv, col);
    fill_rect(img, x1, y2 - tv, x2, y2, col);
    fill_rect(img, x1, y1, x1 + t, y2, col);
    fill_rect(img, x2 - t, y1, x2, y2, col);
  }
  if (!font || dets->count == 0) return NULL;
  /* Labels after all outlines, most confident first, each at the first spot that does not cover a label
   * already placed: above the box, inside its top edge, below it, inside its bottom edge; failing all,
   * stacked downward from the first spot. Overlapping boxes (car/truck on one vehicle) keep both labels. */
  int (*placed)[4] = malloc(sizeof *placed * (size_t)dets->count);
  if (!placed) return kiln_error(KILN_ERR_OUT_OF_MEMORY, "out of memory drawing labels");
  int n_placed = 0;
  kiln_status st = NULL;
  for (int i = 0; i < dets->count && !st; i++) {
    const kiln_detection *d = &dets->items[i];
    uint8_t col[3];
    kiln_class_color(d->cls, col);
    int x1 = (int)lroundf(d->x1), y1 = (int)lroundf(d->y1), y2 = (int)lroundf(d->y2);
    char label[160];
    if (names && d->cls >= 0 && d->cls < n_names && names[d->cls])
      snprintf(label, sizeof label, "%.120s %.2f", names[d->cls], d->score);
    else
      snprintf(label, sizeof label, "class %d %.2f", d->cls, d->score);
    int pad = lw;
    int tw = text_width(font, label, scale) + 2 * pad;
    int th = (int)ceilf(ascent_px + descent_px) + pad;
    int lx = x1;
    if (lx + tw > img->width) lx = img->width - tw > 0 ? img->width - tw : 0;
    int cand[4] = {y1 - th, y1, y2, y2 - th}, ly = cand[0] >= 0 ? cand[0] : y1;
    bool found = false;
    for (int k = 0; k < 4 + 16 && !found; k++) {
      int y = k < 4 ? cand[k] : ly + (k - 3) * th;
      if (y < 0 || y + th > img->height) continue;
      bool clash = false;
      for (int p = 0; p < n_placed && !clash; p++)
        clash = lx < placed[p][2] && placed[p][0] < lx + tw && y < placed[p][3] && placed[p][1] < y + th;
      if (!clash) {
        ly = y;
        found = true;
      }
    }
    placed[n_placed][0] = lx;
    placed[n_placed][1] = ly;
    placed[n_placed][2] = lx + tw;
    placed[n_placed++][3] = ly + th;
    fill_rect(img, lx, ly, lx + tw, ly + th, col);
    /* White on dark colors, black on light ones (Rec. 601 luma). */
    int luma = (299 * col[0] + 587 * col[1] + 114 * col[2]) / 1000;
    const uint8_t white[3] = {255, 255, 255}, black[3] = {0, 0, 0};
    st = draw_text(img, font, label, scale, lx + pad, ly + pad / 2 + (int)lroundf(ascent_px), luma > 150 ? black : white);
  }
  free(placed);
  return st;
}

