/* `kiln detect MODEL.onnx|ENGINE -i IMAGE|DIR [-i ...] [-o OUT.jpg|OUTDIR] [--json FILE] ...`
 * Photos in, labelled boxes out: letterbox -> engine -> YOLO decode -> NMS -> boxes in photo pixels,
 * printed, drawn and optionally written as JSON. An .onnx model is built once and its engine cached. */
#include "commands.h"
#include "engine_source.h"
#include "tool_util.h"

#include "core/file.h"
#include "core/hash.h"
#include "core/status.h"
#include "backend/cuda/cuda_device.h"
#include "kiln/vision.h"

#include <cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_INPUTS 256

static void usage(FILE *f) {
  fprintf(f,
          "usage: kiln detect MODEL.onnx|ENGINE -i IMAGE|DIR [-i ...] [-o OUT.jpg|OUTDIR] [options]\n"
          "  -i, --input PATH     a JPEG/PNG/BMP photo, or a folder of them (repeatable)\n"
          "  -o, --output PATH    drawn result: a file for one photo, else a folder (created if missing)\n"
          "  --json FILE          write the detections (boxes in photo pixels) as JSON\n"
          "  --conf X             score threshold (0.25)\n"
          "  --iou X              NMS IoU threshold (0.45)\n"
          "  --max-det N          at most N detections per photo (300)\n"
          "  --agnostic           one NMS across classes instead of per class\n"
          "  --names FILE         class names, one per line (default: the 80 COCO classes)\n"
          "  --format auto|v8|v5|end2end   how to read the outputs (auto: from their shapes)\n"
          "  --letterbox center|topleft   where the resized photo sits in the input (center)\n"
          "  --bgr                feed channels as B,G,R (models trained without the RGB swap)\n"
          "  --device cpu|cuda    build target for an .onnx model (cpu)\n"
          "  --fp16               with --device cuda: an fp16 engine (the box decode stays fp32)\n"
          "  --threads N          CPU threads (default: all cores)\n"
          "  --cache-dir DIR      where built engines are cached (default: beside the model if its folder is\n"
          "                       writable, else $XDG_CACHE_HOME/kiln or ~/.cache/kiln)\n"
          "  --no-cache           build the engine in memory only\n"
          "  --quiet              no per-detection lines\n");
}

static int has_image_ext(const char *p) {
  const char *dot = strrchr(p, '.');
  if (!dot || strchr(dot, '/')) return 0;
  return !strcasecmp(dot, ".jpg") || !strcasecmp(dot, ".jpeg") || !strcasecmp(dot, ".png") || !strcasecmp(dot, ".bmp");
}

static const char *base_name(const char *p) {
  const char *s = strrchr(p, '/');
  return s ? s + 1 : p;
}

static int is_dir(const char *p) {
  struct stat sb;
  return stat(p, &sb) == 0 && S_ISDIR(sb.st_mode);
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Expand -i arguments: files as given, folders to their image files in name order (stable output). */
static kiln_status collect_inputs(const char **args, int n_args, char ***out, int *n_out) {
  char **list = NULL;
  int n = 0, cap = 0;
  kiln_status st = NULL;
  for (int a = 0; a < n_args && !st; a++) {
    struct stat sb;
    if (stat(args[a], &sb) != 0) {
      st = kiln_error(KILN_ERR_IO, "input '%s' does not exist: %s", args[a], strerror(errno));
      break;
    }
    char **found = NULL;
    int nf = 0;
    if (S_ISDIR(sb.st_mode)) {
      DIR *d = opendir(args[a]);
      if (!d) {
        st = kiln_error(KILN_ERR_IO, "cannot open folder '%s': %s", args[a], strerror(errno));
        break;
      }
      struct dirent *e;
      int fcap = 0;
      while (!st && (e = readdir(d))) {
        if (e->d_name[0] == '.' || !has_image_ext(e->d_name)) continue;
        if (nf == fcap) {
          fcap = fcap ? fcap * 2 : 16;
          char **g = realloc(found, sizeof *g * (size_t)fcap);
          if (!g) st = kiln_error(KILN_ERR_OUT_OF_MEMORY, "out of memory");
          else found = g;
        }
        if (st) break;
        size_t len = strlen(args[a]) + strlen(e->d_name) + 2;
        if (!(found[nf] = malloc(len))) st = kiln_error(KILN_ERR_OUT_OF_MEMORY, "out of memory");
        else snprintf(found[nf++], len, "%s/%s", args[a], e->d_name);
      }
      closedir(d);
      if (!st && nf == 0) st = kiln_error(KILN_ERR_IO, "folder '%s' holds no .jpg, .jpeg, .png or .bmp files", args[a]);
      if (!st) qsort(found, (size_t)nf, sizeof *found, cmp_str);
    } else {
      found = malloc(sizeof *found);
      if (!found || !(found[0] = strdup(args[a]))) st = kiln_error(KILN_ERR_OUT_OF_MEMORY, "out of memory");
      else nf = 1;
    }
    if (!st && n + nf > MAX_INPUTS * 64) st = kiln_error(KILN_ERR_INVALID_ARGUMENT, "too many input images");
    if (!st && n + nf > cap) {
      cap = (n + nf) * 2;
      char **g = realloc(list, sizeof *g * (size_t)cap);
      if (!g) st = kiln_error(KILN_ERR_OUT_OF_MEMORY, "out of memory");
      else list = g;
    }
    for (int i = 0; i < nf; i++) {
      if (!st) list[n++] = found[i];
      else free(found[i]);
    }
    free(found);
  }
  if (st) {
    for (int i = 0; i < n; i++) free(list[i]);
    free(list);
    return st;
  }
  *out = list;
  *n_out = n;
  return NULL;
}

/* ---- engine cache ------------------------------------------------------------------------------- */

/* A folder we may write into. Root passes access(W_OK) even on r-x folders (like the shared model
 * folder), so also require a write bit: a folder deliberately made read-only is left alone. */
static int dir_writable(const char *dir) {
  struct stat sb;
  return stat(dir, &sb) == 0 && S_ISDIR(sb.st_mode) && (sb.st_mode & 0222) && access(dir, W_OK | X_OK) == 0;
}

static int mkdir_p(const char *path) {
  char buf[4096];
  if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf) return -1;
  for (char *p = buf + 1; *p; p++)
    if (*p == '/') {
      *p = 0;
      if (mkdir(buf, 0755) != 0 && errno != EEXIST) return -1;
      *p = '/';
    }
  return mkdir(buf, 0755) != 0 && errno != EEXIST ? -1 : 0;
}

static int cache_dir_default(char *out, size_t n) {
  const char *x = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
  if (x && *x) snprintf(out, n, "%s/kiln", x);
  else if (home && *home) snprintf(out, n, "%s/.cache/kiln", home);
  else return -1;
  return mkdir_p(out) == 0 && dir_writable(out) ? 0 : -1;
}

/* Build (or reuse) the engine of an .onnx model. The cache key hashes the model bytes, the kiln version
 * and every build option that changes the engine, so editing the model or upgrading kiln rebuilds. */
static kiln_status open_model_cached(const char *model, const kiln_build_config *cfg, const char *cache_flag,
                                     int no_cache, kiln_engine **out, char *note, size_t note_n) {
  *out = NULL;
  void *bytes;
  size_t len;
  KILN_TRY(kiln_file_read(model, (size_t)4 << 30, &bytes, &len));
  uint64_t key = kiln_hash64(bytes, len, 0);
  free(bytes);
  const char *ver = kiln_version();
  key = kiln_hash64(ver, strlen(ver), key);
  const int64_t opts[4] = {cfg->device, cfg->precision, cfg->batch, 1 /* cache layout version */};
  key = kiln_hash64(opts, sizeof opts, key);

  char dir[4096] = "", path[4400] = "";
  if (!no_cache) {
    char *model_dir = kiln_path_dirname(model);
    if (cache_flag) {
      if (mkdir_p(cache_flag) == 0 && dir_writable(cache_flag)) snprintf(dir, sizeof dir, "%s", cache_flag);
      else fprintf(stderr, "kiln detect: warning: cache folder '%s' is not writable; not caching\n", cache_flag);
    } else if (model_dir && dir_writable(model_dir)) {
      snprintf(dir, sizeof dir, "%s", model_dir);
    } else if (cache_dir_default(dir, sizeof dir) != 0) {
      dir[0] = 0;
    }
    free(model_dir);
  }
  if (dir[0]) {
    const char *b = base_name(model);
    size_t stem = strlen(b) - 5; /* without ".onnx" */
    snprintf(path, sizeof path, "%s/%.*s.%016llx.engine", dir, (int)stem, b, (unsigned long long)key);
    if (access(path, R_OK) == 0) {
      kiln_status st = kiln_engine_load_file(path, out);
      if (!st) {
        snprintf(note, note_n, "engine: %s (cached)", path);
        return NULL;
      }
      /* A stale or damaged cache entry is rebuilt, not fatal. */
      fprintf(stderr, "kiln detect: rebuilding cached engine: %s\n", kiln_status_message(st));
      kiln_status_destroy(st);
    }
  }
  void *img;
  size_t size;
  double ms;
  KILN_TRY(kiln_build_onnx_image(model, cfg, &img, &size, &ms));
  kiln_status st;  /* a failed cache write only warns: the engine is still usable */
  if (path[0]) {
    kiln_status ws = kiln_file_write_atomic(path, img, size);
    if (ws) {
      fprintf(stderr, "kiln detect: warning: engine not cached: %s\n", kiln_status_message(ws));
      kiln_status_destroy(ws);
      path[0] = 0;
    }
  }
  st = kiln_engine_load_memory(img, size, out);
  free(img);
  if (path[0]) snprintf(note, note_n, "engine: built in %.0f ms, cached as %s", ms, path);
  else snprintf(note, note_n, "engine: built in %.0f ms (not cached)", ms);
  return st;
}

/* ---- output paths ------------------------------------------------------------------------------- */

/* outdir/<photo name>, keeping .png/.bmp and writing anything else as .jpg. */
static void output_path_in_dir(const char *outdir, const char *input, char *out, size_t n) {
  const char *b = base_name(input);
  if (has_image_ext(b)) snprintf(out, n, "%s/%s", outdir, b);
  else snprintf(out, n, "%s/%s.jpg", outdir, b);
}

static kiln_status check_output_file(const char *path) {
  char *dir = kiln_path_dirname(path);
  KILN_CHECK_ALLOC(dir);
  struct stat sb;
  kiln_status st = NULL;
  if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode))
    st = kiln_error(KILN_ERR_IO, "cannot write '%s': folder '%s' does not exist", path, dir);
  else if (access(dir, W_OK) != 0)
    st = kiln_error(KILN_ERR_IO, "cannot write '%s': folder '%s' is not writable", path, dir);
  free(dir);
  return st;
}

static double round_to(double v, double q) { return round(v * q) / q; }

/* ---- the command -------------------------------------------------------------------------------- */

typedef struct detect_args {
  const char *model, *output, *json, *names_path, *cache_dir;
  const char *inputs[MAX_INPUTS];
  int n_inputs;
  kiln_nms_options nms;
  kiln_yolo_format format;
  kiln_letterbox_mode mode;
  int bgr, threads, no_cache, quiet, fp16;
  kiln_device_kind device;
} detect_args;

static int parse_float(const char *s, float lo, float hi, float *out) {
  char *end;
  errno = 0;
  double v = s ? strtod(s, &end) : 0;
  if (!s || errno || end == s || *end || !(v >= lo && v <= hi)) return 1;
  *out = (float)v;
  return 0;
}

static int parse_args(int argc, char **argv, detect_args *a) {
  memset(a, 0, sizeof *a);
  kiln_nms_options_init(&a->nms);
  for (int i = 1; i < argc; i++) {
    const char *v;
    if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
      usage(stdout);
      return -1;
    } else if (kiln_flag_value(argc, argv, &i, "--input", &v) || kiln_flag_value(argc, argv, &i, "-i", &v)) {
      if (!v) return kiln_usage_error("detect", "-i needs an image or a folder");
      if (a->n_inputs == MAX_INPUTS) return kiln_usage_error("detect", "too many -i arguments (use a folder)");
      a->inputs[a->n_inputs++] = v;
    } else if (kiln_flag_value(argc, argv, &i, "--output", &v) || kiln_flag_value(argc, argv, &i, "-o", &v)) {
      if (!v || !*v) return kiln_usage_error("detect", "-o needs a file or folder");
      a->output = v;
    } else if (kiln_flag_value(argc, argv, &i, "--json", &v)) {
      if (!v || !*v) return kiln_usage_error("detect", "--json needs a file");
      a->json = v;
    } else if (kiln_flag_value(argc, argv, &i, "--conf", &v)) {
      if (parse_float(v, 0, 1, &a->nms.conf_threshold)) return kiln_usage_error("detect", "--conf must be in [0, 1]");
    } else if (kiln_flag_value(argc, argv, &i, "--iou", &v)) {
      if (parse_float(v, 0, 1, &a->nms.iou_threshold)) return kiln_usage_error("detect", "--iou must be in [0, 1]");
    } else if (kiln_flag_value(argc, argv, &i, "--max-det", &v)) {
      if (!v || kiln_parse_int(v, 1, 100000, &a->nms.max_det)) return kiln_usage_error("detect", "--max-det must be 1..100000");
    } else if (!strcmp(argv[i], "--agnostic")) {
      a->nms.agnostic = 1;
    } else if (kiln_flag_value(argc, argv, &i, "--names", &v)) {
      if (!v) return kiln_usage_error("detect", "--names needs a file");
      a->names_path = v;
    } else if (kiln_flag_value(argc, argv, &i, "--format", &v)) {
      if (!v) return kiln_usage_error("detect", "--format needs auto, v8, v5 or end2end");
      if (!strcmp(v, "auto")) a->format = KILN_YOLO_AUTO;
      else if (!strcmp(v, "v8") || !strcmp(v, "v11")) a->format = KILN_YOLO_V8;
      else if (!strcmp(v, "v5")) a->format = KILN_YOLO_V5;
      else if (!strcmp(v, "end2end") || !strcmp(v, "e2e")) a->format = KILN_YOLO_END2END;
      else return kiln_usage_error("detect", "--format must be auto, v8, v11, v5 or end2end");
    } else if (kiln_flag_value(argc, argv, &i, "--letterbox", &v)) {
      if (v && !strcmp(v, "center")) a->mode = KILN_LETTERBOX_CENTER;
      else if (v && (!strcmp(v, "topleft") || !strcmp(v, "top-left"))) a->mode = KILN_LETTERBOX_TOP_LEFT;
      else return kiln_usage_error("detect", "--letterbox must be center or topleft");
    } else if (!strcmp(argv[i], "--bgr")) {
      a->bgr = 1;
    } else if (kiln_flag_value(argc, argv, &i, "--device", &v)) {
      if (!v || kiln_parse_device(v, &a->device)) return kiln_usage_error("detect", "--device must be cpu or cuda");
    } else if (!strcmp(argv[i], "--fp16")) {
      a->fp16 = 1;
    } else if (kiln_flag_value(argc, argv, &i, "--threads", &v)) {
      if (!v || kiln_parse_int(v, 1, 1024, &a->threads)) return kiln_usage_error("detect", "--threads must be 1..1024");
    } else if (kiln_flag_value(argc, argv, &i, "--cache-dir", &v)) {
      if (!v || !*v) return kiln_usage_error("detect", "--cache-dir needs a folder");
      a->cache_dir = v;
    } else if (!strcmp(argv[i], "--no-cache")) {
      a->no_cache = 1;
    } else if (!strcmp(argv[i], "--quiet") || !strcmp(argv[i], "-q")) {
      a->quiet = 1;
    } else if (argv[i][0] == '-' && argv[i][1]) {
      fprintf(stderr, "kiln detect: unknown flag '%s'\n", argv[i]);
      usage(stderr);
      return KILN_EXIT_USAGE;
    } else if (a->model) {
      return kiln_usage_error("detect", "more than one model given (images go after -i)");
    } else {
      a->model = argv[i];
    }
  }
  if (!a->model || a->n_inputs == 0) {
    usage(stderr);
    return KILN_EXIT_USAGE;
  }
  return 0;
}

/* Everything one run holds; buffers are sized once from the engine and reused for every photo. */
typedef struct detector {
  kiln_engine *engine;
  kiln_context *ctx;
  float *input;
  size_t input_floats;
  int in_w, in_h;
  kiln_yolo_tensor outs[16];
  int n_outs;
  /* CUDA engines: the bindings are device buffers; photos are copied in and results out around each run */
  int cuda;
  void *dev_input, *dev_outs[16];
  size_t out_bytes[16];
  kiln_yolo_layout layout;
  kiln_image img;
  kiln_detections dets;
  kiln_font *font;
  const char *const *names;
  int n_names;
} detector;

static kiln_status detector_setup(detector *D, const detect_args *a) {
  int nb = kiln_engine_num_bindings(D->engine), in = -1;
  kiln_binding_info info;
  for (int b = 0; b < nb; b++) {
    KILN_TRY(kiln_engine_binding(D->engine, b, &info));
    if (info.is_input) {
      if (in >= 0) return kiln_error(KILN_ERR_UNSUPPORTED, "the model has more than one input; a detector takes one image tensor");
      in = b;
      if (info.dtype != KILN_DTYPE_FLOAT32 || info.rank != 4 || info.dims[1] != 3 || info.dims[0] < 1)
        return kiln_error(KILN_ERR_UNSUPPORTED, "input '%s' must be float32 [B,3,H,W] (an image tensor)", info.name);
      D->in_h = (int)info.dims[2];
      D->in_w = (int)info.dims[3];
      if (D->in_h < 1 || D->in_w < 1 || D->in_h > 8192 || D->in_w > 8192)
        return kiln_error(KILN_ERR_UNSUPPORTED, "input '%s' has an unusable size %lldx%lld", info.name,
                          (long long)info.dims[3], (long long)info.dims[2]);
      /* Batch > 1 engines run one photo at a time in slot 0; the other slots stay zero. */
      D->input_floats = info.nbytes / sizeof(float);
      D->input = calloc(D->input_floats, sizeof(float));
      KILN_CHECK_ALLOC(D->input);
      if (D->cuda) {
        KILN_TRY(kiln_cuda_malloc(info.nbytes, &D->dev_input));
        KILN_TRY(kiln_cuda_fill(D->dev_input, 0, info.nbytes));
      }
      KILN_TRY(kiln_context_bind(D->ctx, info.name, D->cuda ? D->dev_input : D->input, info.nbytes));
    } else {
      if (D->n_outs == 16) return kiln_error(KILN_ERR_UNSUPPORTED, "the model has more than 16 outputs");
      kiln_yolo_tensor *t = &D->outs[D->n_outs++];
      void *buf = calloc(info.nbytes ? info.nbytes : 1, 1);
      KILN_CHECK_ALLOC(buf);
      t->name = info.name;
      t->data = buf;
      t->dtype = info.dtype;
      t->rank = info.rank;
      for (int d = 0; d < info.rank && d < 8; d++) t->dims[d] = info.dims[d];
      D->out_bytes[D->n_outs - 1] = info.nbytes;
      if (D->cuda) KILN_TRY(kiln_cuda_malloc(info.nbytes, &D->dev_outs[D->n_outs - 1]));
      KILN_TRY(kiln_context_bind(D->ctx, info.name, D->cuda ? D->dev_outs[D->n_outs - 1] : buf, info.nbytes));
    }
  }
  if (in < 0) return kiln_error(KILN_ERR_UNSUPPORTED, "the model has no input");
  KILN_TRY(kiln_yolo_layout_detect(D->outs, D->n_outs, a->format, D->n_names, &D->layout));
  if (D->layout.num_classes > 0 && D->layout.num_classes != D->n_names)
    fprintf(stderr, "kiln detect: warning: the model has %d classes but %d names are known; the rest print as 'class N'\n",
            D->layout.num_classes, D->n_names);
  return NULL;
}

static void detector_free(detector *D) {
  for (int i = 0; i < D->n_outs; i++) {
    free((void *)D->outs[i].data);
    kiln_cuda_free(D->dev_outs[i]);
  }
  kiln_cuda_free(D->dev_input);
  free(D->input);
  kiln_context_destroy(D->ctx);
  kiln_engine_destroy(D->engine);
  kiln_image_free(&D->img);
  kiln_detections_free(&D->dets);
  kiln_font_destroy(D->font);
}

static const char *class_name(const detector *D, int cls, char *buf, size_t n) {
  if (cls >= 0 && cls < D->n_names && D->names[cls]) return D->names[cls];
  snprintf(buf, n, "class %d", cls);
  return buf;
}

/* Load, preprocess, infer, decode one photo; print it, draw it, add it to the JSON. */
static kiln_status detect_one(detector *D, const detect_args *a, const char *path, const char *out_path, cJSON *jimages) {
  double t0 = kiln_now_ms();
  KILN_TRY(kiln_image_load(path, &D->img));
  double t1 = kiln_now_ms();
  kiln_preprocess_options pp;
  kiln_preprocess_options_init(&pp, D->in_w, D->in_h);
  pp.mode = a->mode;
  pp.bgr = a->bgr;
  kiln_letterbox lb;
  KILN_TRY(kiln_preprocess(&D->img, &pp, D->input, D->input_floats, &lb));
  double t2 = kiln_now_ms();
  if (D->cuda) { /* synchronous copies on the legacy stream around the enqueue */
    KILN_TRY(kiln_cuda_copy_to_device(D->dev_input, D->input, D->input_floats * sizeof(float)));
    KILN_TRY(kiln_context_enqueue(D->ctx, NULL));
    for (int k = 0; k < D->n_outs; k++)
      KILN_TRY(kiln_cuda_copy_to_host((void *)D->outs[k].data, D->dev_outs[k], D->out_bytes[k]));
  } else {
    KILN_TRY(kiln_context_enqueue(D->ctx, NULL));
  }
  double t3 = kiln_now_ms();
  KILN_TRY(kiln_yolo_decode(D->outs, &D->layout, 0, &a->nms, &D->dets));
  int candidates = D->dets.count;
  if (D->layout.format != KILN_YOLO_END2END || a->nms.agnostic) kiln_nms(&D->dets, &a->nms);
  else if (D->dets.count > a->nms.max_det) D->dets.count = a->nms.max_det; /* already NMS'd in the engine */
  kiln_detections_unletterbox(&D->dets, &lb);
  double t4 = kiln_now_ms();

  const char *name = base_name(path);
  printf("%s: %dx%d, %d detection%s (%d candidates)\n", name, D->img.width, D->img.height, D->dets.count,
         D->dets.count == 1 ? "" : "s", candidates);
  char buf[32];
  if (!a->quiet)
    for (int i = 0; i < D->dets.count; i++) {
      const kiln_detection *d = &D->dets.items[i];
      printf("  %-14s %.3f  [%7.1f, %7.1f, %7.1f, %7.1f]  class %d\n", class_name(D, d->cls, buf, sizeof buf), d->score,
             d->x1, d->y1, d->x2, d->y2, d->cls);
    }
  double t5 = t4;
  if (out_path) {
    KILN_TRY(kiln_draw_detections(&D->img, &D->dets, D->names, D->n_names, D->font));
    KILN_TRY(kiln_image_write(&D->img, out_path, 90));
    t5 = kiln_now_ms();
  }
  printf("  time: load %.1f ms, preprocess %.1f ms, inference %.1f ms, postprocess %.1f ms", t1 - t0, t2 - t1, t3 - t2,
         t4 - t3);
  if (out_path) printf(", draw+save %.1f ms -> %s", t5 - t4, out_path);
  printf("\n");

  if (jimages) {
    cJSON *ji = cJSON_CreateObject(), *jd = cJSON_CreateArray(), *jt = cJSON_CreateObject();
    if (!ji || !jd || !jt) {
      cJSON_Delete(ji), cJSON_Delete(jd), cJSON_Delete(jt);
      return kiln_error(KILN_ERR_OUT_OF_MEMORY, "out of memory");
    }
    cJSON_AddNumberToObject(ji, "width", D->img.width);
    cJSON_AddNumberToObject(ji, "height", D->img.height);
    for (int i = 0; i < D->dets.count; i++) {
      const kiln_detection *d = &D->dets.items[i];
      cJSON *o = cJSON_CreateObject();
      const double box[4] = {round_to(d->x1, 10), round_to(d->y1, 10), round_to(d->x2, 10), round_to(d->y2, 10)};
      cJSON_AddNumberToObject(o, "cls", d->cls);
      cJSON_AddStringToObject(o, "name", class_name(D, d->cls, buf, sizeof buf));
      cJSON_AddNumberToObject(o, "score", round_to(d->score, 1e4));
      cJSON_AddItemToObject(o, "box", cJSON_CreateDoubleArray(box, 4));
      cJSON_AddItemToArray(jd, o);
    }
    cJSON_AddItemToObject(ji, "detections", jd);
    cJSON_AddNumberToObject(jt, "load", round_to(t1 - t0, 100));
    cJSON_AddNumberToObject(jt, "preprocess", round_to(t2 - t1, 100));
    cJSON_AddNumberToObject(jt, "inference", round_to(t3 - t2, 100));
    cJSON_AddNumberToObject(jt, "postprocess", round_to(t4 - t3, 100));
    cJSON_AddItemToObject(ji, "time_ms", jt);
    /* Photos of the same name from two folders: key the second by its full path. */
    cJSON_AddItemToObject(jimages, cJSON_GetObjectItemCaseSensitive(jimages, name) ? path : name, ji);
  }
  return NULL;
}

int kiln_cmd_detect(int argc, char **argv) {
  detect_args a;
  int rc = parse_args(argc, argv, &a);
  if (rc) return rc < 0 ? 0 : rc;

  detector D;
  memset(&D, 0, sizeof D);
  kiln_names names = {0};
  char **inputs = NULL;
  int n_inputs = 0, out_is_dir = 0;
  cJSON *jroot = NULL, *jimages = NULL;
  kiln_status st = collect_inputs(a.inputs, a.n_inputs, &inputs, &n_inputs);

  /* Check the output before the (slow) engine build, so a typo fails in milliseconds. */
  if (!st && a.output) {
    size_t ol = strlen(a.output);
    out_is_dir = is_dir(a.output) || a.output[ol - 1] == '/' || n_inputs > 1 || !has_image_ext(a.output);
    if (out_is_dir) {
      if (mkdir_p(a.output) != 0 || !is_dir(a.output))
        st = kiln_error(KILN_ERR_IO, "cannot create output folder '%s': %s", a.output, strerror(errno));
      else if (access(a.output, W_OK) != 0)
        st = kiln_error(KILN_ERR_IO, "output folder '%s' is not writable", a.output);
    } else {
      st = check_output_file(a.output);
    }
  }
  if (!st && a.json) st = check_output_file(a.json);
  if (!st && a.names_path) st = kiln_names_load(a.names_path, &names);
  if (!st) {
    if (a.names_path) D.names = (const char *const *)names.names, D.n_names = names.count;
    else D.names = kiln_coco_names(&D.n_names);
  }
  if (!st && a.output) {
    kiln_status fs = kiln_font_load(NULL, &D.font);
    if (fs) { /* boxes without labels beat no picture at all */
      fprintf(stderr, "kiln detect: warning: %s; drawing boxes without labels (install fonts-dejavu-core)\n",
              kiln_status_message(fs));
      kiln_status_destroy(fs);
    }
  }

  char note[4600] = "";
  if (!st) {
    kiln_build_config cfg;
    kiln_build_config_init(&cfg);
    cfg.device = a.device;
    cfg.threads = a.threads;
    if (a.fp16) cfg.precision = KILN_PRECISION_FP16;
    double t0 = kiln_now_ms();
    size_t ml = strlen(a.model);
    if (ml >= 5 && !strcmp(a.model + ml - 5, ".onnx"))
      st = open_model_cached(a.model, &cfg, a.cache_dir, a.no_cache, &D.engine, note, sizeof note);
    else if (!(st = kiln_engine_load_file(a.model, &D.engine)))
      snprintf(note, sizeof note, "engine: %s (loaded in %.0f ms)", a.model, kiln_now_ms() - t0);
  }
  if (!st) {
    kiln_context_options copt = {a.threads, 0};
    D.cuda = kiln_engine_device(D.engine) == KILN_DEVICE_CUDA;
    st = kiln_context_create(D.engine, &copt, &D.ctx);
  }
  if (!st) st = detector_setup(&D, &a);
  if (!st) {
    printf("%s\n", note);
    printf("model: input %dx%d, %s head, %d classes; conf %.2f, iou %.2f, max-det %d%s\n", D.in_w, D.in_h,
           kiln_yolo_format_name(D.layout.format), D.layout.num_classes ? D.layout.num_classes : D.n_names,
           a.nms.conf_threshold, a.nms.iou_threshold, a.nms.max_det, a.nms.agnostic ? ", class-agnostic" : "");
  }
  if (!st && a.json) {
    jroot = cJSON_CreateObject();
    if (jroot) {
      cJSON_AddStringToObject(jroot, "model", base_name(a.model));
      cJSON_AddNumberToObject(jroot, "conf", a.nms.conf_threshold);
      cJSON_AddNumberToObject(jroot, "iou", a.nms.iou_threshold);
      jimages = cJSON_AddObjectToObject(jroot, "images");
    }
    if (!jroot || !jimages) st = kiln_error(KILN_ERR_OUT_OF_MEMORY, "out of memory");
  }

  /* A bad photo is reported and skipped; the others still run. The exit status remembers it. */
  int failed = 0;
  kiln_status_code worst = KILN_OK;
  double total0 = kiln_now_ms();
  for (int i = 0; !st && i < n_inputs; i++) {
    char out_path[4400];
    const char *op = NULL;
    if (a.output) {
      if (out_is_dir) output_path_in_dir(a.output, inputs[i], out_path, sizeof out_path), op = out_path;
      else op = a.output;
    }
    kiln_status e = detect_one(&D, &a, inputs[i], op, jimages);
    if (e) {
      kiln_status_code c = kiln_status_get_code(e);
      if (c == KILN_ERR_OUT_OF_MEMORY || c == KILN_ERR_INTERNAL || c == KILN_ERR_DEVICE) {
        st = e; /* the run itself is broken: stop */
        break;
      }
      fprintf(stderr, "kiln detect: %s\n", kiln_status_message(e));
      kiln_status_destroy(e);
      failed++;
      if (worst == KILN_OK) worst = c;
    }
  }
  if (!st && n_inputs > 1)
    printf("%d image%s in %.0f ms%s\n", n_inputs - failed, n_inputs - failed == 1 ? "" : "s", kiln_now_ms() - total0,
           failed ? " (some failed, see above)" : "");
  if (!st && jroot) {
    char *text = cJSON_Print(jroot);
    if (!text) st = kiln_error(KILN_ERR_OUT_OF_MEMORY, "out of memory");
    else {
      size_t tl = strlen(text);
      char *t2 = realloc(text, tl + 2);
      if (t2) text = t2, text[tl] = '\n', text[tl + 1] = 0, tl++;
      st = kiln_file_write_atomic(a.json, text, tl);
      free(text);
    }
  }
  cJSON_Delete(jroot);
  for (int i = 0; i < n_inputs; i++) free(inputs[i]);
  free(inputs);
  detector_free(&D);
  kiln_names_free(&names);
  if (st) return kiln_report("detect", st);
  return failed ? KILN_EXIT_BAD_INPUT : KILN_EXIT_OK;
}
