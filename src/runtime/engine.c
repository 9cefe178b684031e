/*
 * Engine loading: map the file, then check - in this order, so the message names the first thing wrong -
 * size, magic, version, endianness, declared size, checksum, section table bounds, every record's
 * offsets/indices, the target (CPU ISA or GPU), and finally let each layer's kernel prepare (which
 * re-validates its parameters). Nothing is trusted before it is checked.
 */
#include "runtime/engine.h"

#include "backend/cpu/cpu_caps.h"
#include "backend/cuda/cuda_device.h"
#include "core/dtype.h"
#include "core/hash.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

const char *kiln_engine_string(const kiln_engine *e, uint32_t off) {
  return off < e->strings_size ? e->strings + off : "?";
}

void kiln_engine_destroy(kiln_engine *e) {
  if (!e) return;
  if (e->rt)
    for (int32_t i = 0; i < e->n_layers; i++)
      if (e->rt[i].kernel && e->rt[i].kernel->release) e->rt[i].kernel->release(e->rt[i].state);
  free(e->rt);
  kiln_cuda_free(e->device_weights);
  if (e->mapped) munmap(e->data, e->size);
  else free(e->data);
  free(e);
}

static kiln_status bad(const char *what) { return kiln_error(KILN_ERR_PARSE, "invalid engine file: %s", what); }

static kiln_status find_section(kiln_engine *e, const kiln_section_rec *secs, uint32_t n, uint32_t kind, size_t rec_size,
                                const char *name, const void **out, uint64_t *count) {
  for (uint32_t i = 0; i < n; i++) {
    if (secs[i].kind != kind) continue;
    if (secs[i].offset > e->size || secs[i].size > e->size - secs[i].offset)
      return kiln_error(KILN_ERR_PARSE, "invalid engine file: section '%s' lies outside the file", name);
    if (rec_size > 1 && (secs[i].size % rec_size || secs[i].offset % 8))
      return kiln_error(KILN_ERR_PARSE, "invalid engine file: section '%s' has a bad size or alignment", name);
    *out = e->data + secs[i].offset;
    *count = rec_size ? secs[i].size / rec_size : secs[i].size;
    return NULL;
  }
  return kiln_error(KILN_ERR_PARSE, "invalid engine file: section '%s' is missing", name);
}

static kiln_status check_target(const kiln_engine *e) {
  const kiln_target_rec *t = e->target;
  if (t->device == KILN_TARGET_CPU) {
    kiln_isa have = kiln_cpu_isa();
    if ((kiln_isa)t->cpu_isa > have)
      return kiln_error(KILN_ERR_DEVICE, "engine was built for CPUs with %s, this CPU supports %s: rebuild the engine here",
                        kiln_isa_name((kiln_isa)t->cpu_isa), kiln_isa_name(have));
    return NULL;
  }
  if (t->device == KILN_TARGET_CUDA) {
    if (kiln_cuda_device_count() == 0)
      return kiln_error(KILN_ERR_DEVICE, "engine was built for a CUDA GPU (%.*s, compute capability %u.%u) and this machine "
                        "has no CUDA device%s", 64, t->device_name, t->cc_major, t->cc_minor,
#ifdef KILN_HAVE_CUDA
                        ""
#else
                        " (this kiln was built without CUDA)"
#endif
      );
    int dev = 0;
    kiln_cuda_device_info info;
    KILN_TRY(kiln_cuda_current_device(&dev));
    KILN_TRY(kiln_cuda_device_query(dev, &info));
    if ((uint32_t)info.cc_major != t->cc_major || (uint32_t)info.cc_minor != t->cc_minor)
      return kiln_error(KILN_ERR_DEVICE, "engine was built for compute capability %u.%u (%.*s); CUDA device %d (%s) is %d.%d: "
                        "rebuild the engine on this GPU", t->cc_major, t->cc_minor, 64, t->device_name, dev, info.name,
                        info.cc_major, info.cc_minor);
    return NULL;
  }
  return kiln_error(KILN_ERR_PARSE, "invalid engine file: unknown target device %u", t->device);
}

kiln_status kiln_engine_open(uint8_t *data, size_t size, int mapped, int describe_only, kiln_engine **out) {
  *out = NULL;
  kiln_engine *e = calloc(1, sizeof *e);
  if (!e) {
    if (mapped) munmap(data, size);
    else free(data);
    return kiln_error(KILN_ERR_OUT_OF_MEMORY, "out of memory");
  }
  e->data = data;
  e->size = size;
  e->mapped = mapped;
  kiln_status st = NULL;
#define FAIL(x)                                                                                      \
  do {                                                                                               \
    st = (x);                                                                                        \
    goto fail;                                                                                       \
  } while (0)
  if (size < sizeof(kiln_engine_header)) FAIL(bad("too short to be a kiln engine (truncated?)"));
  const kiln_engine_header *h = (const kiln_engine_header *)data;
  e->header = h;
  if (memcmp(h->magic, KILN_ENGINE_MAGIC, 8) != 0) FAIL(bad("wrong magic number (not a kiln engine; an ONNX model or another tool's engine?)"));
  if (h->endian_tag != KILN_ENGINE_ENDIAN_TAG) FAIL(bad("wrong byte order"));
  if (h->format_version < KILN_ENGINE_FORMAT_OLDEST || h->format_version > KILN_ENGINE_FORMAT_VERSION)
    FAIL(kiln_error(KILN_ERR_PARSE, "engine format version %u, this kiln reads versions %u to %u: rebuild the engine",
                    h->format_version, KILN_ENGINE_FORMAT_OLDEST, KILN_ENGINE_FORMAT_VERSION));
  if (h->file_size != size)
    FAIL(kiln_error(KILN_ERR_PARSE, "invalid engine file: it is %zu bytes but its header says %" PRIu64 " (truncated?)",
                    size, h->file_size));
  if (h->header_size != sizeof(kiln_engine_header)) FAIL(bad("unexpected header size"));
  {
    kiln_engine_header copy = *h;
    copy.checksum = 0;
    uint64_t sum = kiln_hash64(&copy, sizeof copy, 0);
    sum = kiln_hash64(data + sizeof copy, size - sizeof copy, sum);
    if (sum != h->checksum) FAIL(bad("checksum mismatch (the file is corrupted)"));
  }
  if (h->section_table_offset > size || h->n_sections > 64 ||
      (uint64_t)h->n_sections * sizeof(kiln_section_rec) > size - h->section_table_offset || h->section_table_offset % 8)
    FAIL(bad("section table lies outside the file"));
  const kiln_section_rec *secs = (const kiln_section_rec *)(data + h->section_table_offset);
  const void *p = NULL;
  uint64_t cnt = 0;
  if ((st = find_section(e, secs, h->n_sections, KILN_SECTION_STRINGS, 1, "strings", &p, &cnt))) goto fail;
  e->strings = p;
  e->strings_size = cnt;
  if (!cnt || e->strings[cnt - 1] != 0) FAIL(bad("string table is not terminated"));
  if ((st = find_section(e, secs, h->n_sections, KILN_SECTION_TARGET, sizeof(kiln_target_rec), "target", &p, &cnt))) goto fail;
  if (cnt != 1) FAIL(bad("target section"));
  e->target = p;
  if ((st = find_section(e, secs, h->n_sections, KILN_SECTION_OPTIONS, sizeof(kiln_options_rec), "options", &p, &cnt))) goto fail;
  if (cnt != 1) FAIL(bad("options section"));
  e->options = p;
  if ((st = find_section(e, secs, h->n_sections, KILN_SECTION_PLAN, sizeof(kiln_plan_rec), "plan", &p, &cnt))) goto fail;
  if (cnt != 1) FAIL(bad("plan section"));
  e->plan = p;
  if ((st = find_section(e, secs, h->n_sections, KILN_SECTION_TENSORS, sizeof(kiln_tensor_rec), "tensors", &p, &cnt))) goto fail;
  if (cnt > INT32_MAX) FAIL(bad("too many tensors"));
  e->tensors = p;
  e->n_tensors = (int32_t)cnt;
  if ((st = find_section(e, secs, h->n_sections, KILN_SECTION_LAYERS, sizeof(kiln_layer_rec), "layers", &p, &cnt))) goto fail;
  if (cnt > INT32_MAX) FAIL(bad("too many layers"));
  e->layers = p;
  e->n_layers = (int32_t)cnt;
  if ((st = find_section(e, secs, h->n_sections, KILN_SECTION_INDICES, sizeof(int32_t), "indices", &p, &cnt))) goto fail;
  e->indices = p;
  e->n_indices = cnt;
  if ((st = find_section(e, secs, h->n_sections, KILN_SECTION_PARAMS, 1, "params", &p, &cnt))) goto fail;
  e->params = p;
  e->params_size = cnt;
  if ((st = find_section(e, secs, h->n_sections, KILN_SECTION_WEIGHTS, 1, "weights", &p, &cnt))) goto fail;
  e->weights = p;
  e->weights_size = cnt;
  if (((uintptr_t)e->weights - (uintptr_t)data) % KILN_ENGINE_ALIGN) FAIL(bad("weights are not 64-byte aligned"));
  if ((st = find_section(e, secs, h->n_sections, KILN_SECTION_BINDINGS, sizeof(kiln_binding_rec), "bindings", &p, &cnt))) goto fail;
  e->bindings = p;
  e->n_bindings = (int32_t)cnt;
  /* records */
  for (int32_t i = 0; i < e->n_tensors; i++) {
    const kiln_tensor_rec *t = &e->tensors[i];
    if (t->name >= e->strings_size || !kiln_dtype_is_valid((int)t->dtype) || t->rank > 8) FAIL(bad("malformed tensor record"));
    int64_t numel = 1;
    for (uint32_t d = 0; d < t->rank; d++) {
      if (t->dims[d] < 0 || t->dims[d] > ((int64_t)1 << 40) || (t->dims[d] && numel > ((int64_t)1 << 40) / t->dims[d]))
        FAIL(bad("tensor with invalid dims"));
      numel *= t->dims[d];
    }
    if ((uint64_t)numel * kiln_dtype_size((kiln_dtype)t->dtype) != t->nbytes) FAIL(bad("tensor size does not match its dims"));
    if (t->layout == KILN_LAYOUT_NHWC) {
      if (t->rank != 4 || t->pixel_stride < t->dims[1] || t->pixel_stride > ((int64_t)1 << 30) ||
          (t->storage != KILN_STORAGE_VIEW && t->storage != KILN_STORAGE_ARENA))
        FAIL(bad("tensor with an invalid NHWC layout"));
    } else if (t->layout != KILN_LAYOUT_LINEAR) {
      FAIL(bad("tensor with an unknown layout"));
    } else if (t->pixel_stride != 0) {
      /* a row-strided view (v3): rows at least a dense row apart, and small enough that its span cannot
       * overflow (rows * stride <= 2^40, as numel is) */
      int64_t len = kiln_tensor_row_len(t);
      if (h->format_version < 3 || t->rank < 2 || t->storage != KILN_STORAGE_VIEW || t->pixel_stride < len ||
          t->pixel_stride > ((int64_t)1 << 40) || (t->dims[0] > 1 && t->pixel_stride > ((int64_t)1 << 40) / t->dims[0]))
        FAIL(kiln_error(KILN_ERR_PARSE, "invalid engine file: tensor '%s' has an invalid row stride %" PRId64
                        " (rows of %" PRId64 " elements; only views of format v3 may be row-strided)",
                        kiln_engine_string(e, t->name), t->pixel_stride, len));
    }
    switch (t->storage) {
    case KILN_STORAGE_ARENA:
      if (t->offset > e->plan->arena_size || kiln_tensor_span(t) > e->plan->arena_size - t->offset) FAIL(bad("tensor outside the arena"));
      break;
    case KILN_STORAGE_WEIGHT:
      if (t->offset > e->weights_size || t->nbytes > e->weights_size - t->offset) FAIL(bad("weight outside the weights section"));
      break;
    case KILN_STORAGE_IO:
      if (t->slot < 0 || t->slot >= e->n_bindings || t->offset) FAIL(bad("tensor bound to a missing binding"));
      if (t->layout != KILN_LAYOUT_LINEAR) FAIL(bad("binding with a non-linear layout"));
      break;
    case KILN_STORAGE_VIEW: {
      /* views point at earlier tensors only, so resolution terminates */
      if (t->alias_of < 0 || t->alias_of >= i) FAIL(bad("view of an invalid tensor"));
      const kiln_tensor_rec *b = &e->tensors[t->alias_of];
      if (t->offset > kiln_tensor_span(b) || kiln_tensor_span(t) > kiln_tensor_span(b) - t->offset)
        FAIL(kiln_error(KILN_ERR_PARSE, "invalid engine file: view '%s' lies outside its base tensor '%s'",
                        kiln_engine_string(e, t->name), kiln_engine_string(e, b->name)));
      break;
    }
    default: FAIL(bad("unknown tensor storage"));
    }
  }
  for (int32_t i = 0; i < e->n_bindings; i++) {
    const kiln_binding_rec *b = &e->bindings[i];
    if (b->tensor >= (uint32_t)e->n_tensors || e->tensors[b->tensor].storage != KILN_STORAGE_IO ||
        e->tensors[b->tensor].slot != i)
      FAIL(bad("malformed binding"));
  }
  e->opset = e->options->opset;
  e->workspace_size = 0; /* the largest need of this kiln's kernels (prepare), never the file's word */
  e->rt = calloc((size_t)e->n_layers + 1, sizeof(kiln_layer_rt));
  if (!e->rt) FAIL(kiln_error(KILN_ERR_OUT_OF_MEMORY, "out of memory"));
  for (int32_t i = 0; i < e->n_layers; i++) {
    const kiln_layer_rec *l = &e->layers[i];
    if (l->name >= e->strings_size || l->kernel >= e->strings_size || l->op >= e->strings_size) FAIL(bad("malformed layer"));
    if (l->n_inputs > 64 || l->n_outputs > 64 || l->io_index > e->n_indices ||
        (uint64_t)l->n_inputs + l->n_outputs > e->n_indices - l->io_index)
      FAIL(bad("layer tensor list out of range"));
    if (l->params_offset > e->params_size || l->params_size > e->params_size - l->params_offset) FAIL(bad("layer parameters out of range"));
    for (uint32_t k = 0; k < l->n_inputs + l->n_outputs; k++) {
      int32_t tid = e->indices[l->io_index + k];
      if (tid < -1 || tid >= e->n_tensors) FAIL(bad("layer refers to a missing tensor"));
    }
  }
  for (int32_t i = 0; i < e->n_layers; i++) { /* the records, checked above */
    const kiln_layer_rec *l = &e->layers[i];
    kiln_layer_rt *L = &e->rt[i];
    L->rec = l;
    L->name = e->strings + l->name;
    L->op = e->strings + l->op;
    L->kernel_name = e->strings + l->kernel;
    L->n_in = (int32_t)l->n_inputs;
    L->n_out = (int32_t)l->n_outputs;
    L->in = e->indices + l->io_index;
    L->out = L->in + l->n_inputs;
    L->params = e->params + l->params_offset;
    L->params_size = l->params_size;
  }
  if (describe_only) { /* kiln inspect: the records are valid; no kernels, no device */
    *out = e;
    return NULL;
  }
  if ((st = check_target(e))) goto fail;
  if (e->target->device == KILN_TARGET_CUDA) { /* weights go to the GPU once; every context shares them */
    if ((st = kiln_cuda_malloc(e->weights_size, (void **)&e->device_weights))) goto fail;
    if ((st = kiln_cuda_copy_to_device(e->device_weights, e->weights, e->weights_size))) goto fail;
  }
  for (int32_t i = 0; i < e->n_layers; i++) {
    kiln_layer_rt *L = &e->rt[i];
    L->workspace = 0; /* what this kiln's kernel says in prepare; the record's value is not trusted */
    L->kernel = kiln_kernel_find(L->kernel_name);
    if (!L->kernel)
      FAIL(kiln_error(KILN_ERR_UNSUPPORTED, "layer '%s' uses kernel '%s', which this kiln build does not have: rebuild the engine",
                      L->name, L->kernel_name));
    /* A row-strided tensor only reaches kernels that step by its row stride; any other kernel would read
     * or write it as dense, past its rows. */
    for (int32_t k = 0; !(L->kernel->flags & KILN_KERNEL_ROW_STRIDED) && k < L->n_in + L->n_out; k++) {
      int32_t tid = k < L->n_in ? L->in[k] : L->out[k - L->n_in];
      if (tid >= 0 && kiln_tensor_row_strided(&e->tensors[tid]))
        FAIL(kiln_error(KILN_ERR_PARSE, "invalid engine file: layer '%s' (%s) is given the row-strided tensor '%s', "
                        "which its kernel cannot step through", L->name, L->kernel_name,
                        kiln_engine_string(e, e->tensors[tid].name)));
    }
    kiln_engine_view v = {e->tensors, e->n_tensors, e->strings, e->strings_size, e->weights, e->weights_size,
                          e->opset, e->device_weights, (int)e->target->device};
    if (L->kernel->prepare && (st = L->kernel->prepare(&v, L))) goto fail;
    if (L->workspace > e->workspace_size) e->workspace_size = L->workspace;
  }
  *out = e;
  return NULL;
fail:
  kiln_engine_destroy(e);
  return st;
#undef FAIL
}

static kiln_status load_file(const char *path, int describe_only, kiln_engine **out) {
  *out = NULL;
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return kiln_error(KILN_ERR_IO, "cannot open engine '%s': %s", path, strerror(errno));
  struct stat s;
  if (fstat(fd, &s) != 0 || !S_ISREG(s.st_mode)) {
    close(fd);
    return kiln_error(KILN_ERR_IO, "'%s' is not a regular file", path);
  }
  if (s.st_size == 0) {
    close(fd);
    return kiln_error(KILN_ERR_PARSE, "%s: invalid engine file: the file is empty", path);
  }
  /* Private mapping: pages are shared with the page cache, weights are never copied. */
  void *m = mmap(NULL, (size_t)s.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
  close(fd);
  if (m == MAP_FAILED) return kiln_error(KILN_ERR_IO, "cannot map engine '%s': %s", path, strerror(errno));
  kiln_status st = kiln_engine_open(m, (size_t)s.st_size, 1, describe_only, out);
  return kiln_error_prefix(st, "%s: ", path);
}

kiln_status kiln_engine_load_file(const char *path, kiln_engine **out) { return load_file(path, 0, out); }

kiln_status kiln_engine_describe_file(const char *path, kiln_engine **out) { return load_file(path, 1, out); }

kiln_status kiln_engine_load_memory(const void *data, size_t size, kiln_engine **out) {
  *out = NULL;
  /* 64-byte aligned copy so weights keep their alignment */
  void *copy = NULL;
  if (posix_memalign(&copy, KILN_ENGINE_ALIGN, size ? size : 1) != 0) return kiln_error(KILN_ERR_OUT_OF_MEMORY, "out of memory");
  if (size) memcpy(copy, data, size);
  return kiln_engine_open(copy, size, 0, 0, out);
}

int kiln_engine_num_bindings(const kiln_engine *e) { return e->n_bindings; }

kiln_device_kind kiln_engine_device(const kiln_engine *e) {
  return e->target->device == KILN_TARGET_CUDA ? KILN_DEVICE_CUDA : KILN_DEVICE_CPU;
}

kiln_status kiln_engine_binding(const kiln_engine *e, int index, kiln_binding_info *out) {
  memset(out, 0, sizeof *out);
  if (index < 0 || index >= e->n_bindings) return kiln_error(KILN_ERR_INVALID_ARGUMENT, "no binding %d", index);
  const kiln_tensor_rec *t = &e->tensors[e->bindings[index].tensor];
  out->name = kiln_engine_string(e, t->name);
  out->dtype = (kiln_dtype)t->dtype;
  out->is_input = (int)e->bindings[index].is_input;
  out->rank = (int)t->rank;
  memcpy(out->dims, t->dims, sizeof out->dims);
  out->nbytes = t->nbytes;
  return NULL;
}

int kiln_engine_find_binding(const kiln_engine *e, const char *name) {
  for (int32_t i = 0; i < e->n_bindings; i++)
    if (!strcmp(kiln_engine_string(e, e->tensors[e->bindings[i].tensor].name), name)) return i;
  return -1;
}

int kiln_engine_num_layers(const kiln_engine *e) { return e->n_layers; }

kiln_status kiln_engine_layer(const kiln_engine *e, int index, kiln_layer_info *out) {
  memset(out, 0, sizeof *out);
  if (index < 0 || index >= e->n_layers) return kiln_error(KILN_ERR_INVALID_ARGUMENT, "no layer %d", index);
  const kiln_layer_rt *L = &e->rt[index];
  out->name = L->name;
  out->op = L->op;
  out->kernel = L->kernel_name;
  out->variant = L->kernel && L->kernel->variant && L->state ? L->kernel->variant(L) : NULL;
  out->macs = (int64_t)L->rec->macs;
  out->workspace = (size_t)L->rec->workspace;
  return NULL;
}

void kiln_engine_memory(const kiln_engine *e, size_t *arena, size_t *naive, size_t *weights, size_t *workspace) {
  if (arena) *arena = (size_t)e->plan->arena_size;
  if (naive) *naive = (size_t)e->plan->naive_size;
  if (weights) *weights = (size_t)e->plan->weights_size;
  if (workspace) *workspace = (size_t)e->workspace_size;
}

void kiln_engine_print(const kiln_engine *e, int layers) {
  const kiln_target_rec *t = e->target;
  printf("engine      kiln engine format v%u, built by kiln %.16s, %zu bytes\n", e->header->format_version,
         e->header->kiln_version, e->size);
  if (t->device == KILN_TARGET_CPU) printf("target      CPU, kernels for %s\n", kiln_isa_name((kiln_isa)t->cpu_isa));
  else printf("target      CUDA %.64s, compute capability %u.%u\n", t->device_name, t->cc_major, t->cc_minor);
  const char *prec[] = {"fp32", "fp16", "int8"};
  printf("options     precision %s, batch %s%" PRId64 ", opset %" PRId64 "\n",
         e->options->precision < 3 ? prec[e->options->precision] : "?", e->options->batch ? "" : "as model ",
         e->options->batch, e->options->opset);
  printf("bindings\n");
  for (int32_t i = 0; i < e->n_bindings; i++) {
    const kiln_tensor_rec *r = &e->tensors[e->bindings[i].tensor];
    printf("  %-6s %-24s %-9s ", e->bindings[i].is_input ? "input" : "output", kiln_engine_string(e, r->name),
           kiln_dtype_name((kiln_dtype)r->dtype));
    for (uint32_t d = 0; d < r->rank; d++) printf("%s%" PRId64, d ? "x" : "", r->dims[d]);
    printf("\n");
  }
  int64_t macs = 0;
  int n_ref = 0;
  for (int32_t i = 0; i < e->n_layers; i++) {
    macs += (int64_t)e->layers[i].macs;
    n_ref += !strcmp(e->rt[i].kernel_name, "ref");
  }
  int32_t views = 0;
  for (int32_t i = 0; i < e->n_tensors; i++) views += e->tensors[i].storage == KILN_STORAGE_VIEW;
  printf("layers      %d (%d through reference kernels), %d views without copies\n", e->n_layers, n_ref, views);
  printf("memory      activations %.2f MB per context (%.2f MB without reuse), weights %.2f MB, workspace %.2f MB\n",
         e->plan->arena_size / 1e6, e->plan->naive_size / 1e6, e->plan->weights_size / 1e6, e->plan->workspace_size / 1e6);
  printf("MACs        %.3f G\n", macs / 1e9);
  /* kernels histogram */
  printf("kernels (kernel: layers)\n");
  for (int32_t i = 0; i < e->n_layers; i++) {
    int seen = 0;
    for (int32_t j = 0; j < i && !seen; j++) seen = !strcmp(e->rt[j].kernel_name, e->rt[i].kernel_name);
    if (seen) continue;
    int count = 0;
    for (int32_t j = i; j < e->n_layers; j++) count += !strcmp(e->rt[j].kernel_name, e->rt[i].kernel_name);
    printf("  %s %d\n", e->rt[i].kernel_name, count);
  }
  if (!layers) return;
  printf("layers (name, op, kernel, inputs -> outputs, MACs)\n");
  for (int32_t i = 0; i < e->n_layers; i++) {
    const kiln_layer_rt *L = &e->rt[i];
    printf("  %-40s %-16s %-18s", L->name, L->op, L->kernel_name);
    for (int32_t k = 0; k < L->n_in + L->n_out; k++) {
      int32_t tid = k < L->n_in ? L->in[k] : L->out[k - L->n_in];
      if (k == L->n_in) printf(" ->");
      if (tid < 0) {
        printf(" -");
        continue;
      }
      const kiln_tensor_rec *r = &e->tensors[tid];
      static const char *st[] = {"arena", "weight", "io", "view"};
      printf(" ");
      for (uint32_t d = 0; d < r->rank; d++) printf("%s%" PRId64, d ? "x" : "", r->dims[d]);
      if (r->rank == 0) printf("scalar");
      printf("(%s", r->storage < 4 ? st[r->storage] : "?");
      if (r->dtype != KILN_DTYPE_FLOAT32) printf(" %s", kiln_dtype_name((kiln_dtype)r->dtype));
      if (r->layout == KILN_LAYOUT_NHWC) {
        printf(" nhwc");
        if (r->pixel_stride != r->dims[1]) printf("/%" PRId64, r->pixel_stride);
      } else if (r->pixel_stride) {
        printf(" rows/%" PRId64, r->pixel_stride); /* a row-strided slice of a wider tensor */
      }
      printf(")");
    }
    if (L->rec->macs) printf("  %.1f MMACs", L->rec->macs / 1e6);
    printf("\n");
  }
}
