/*
 * Engine file format v3 (see docs/ENGINE_FORMAT.md). Little-endian, 64-bit offsets, fixed-size records,
 * one section table. Records are plain structs with explicit padding so the writer and the reader agree
 * byte for byte; the reader validates every offset, count and index before use.
 */
#ifndef KILN_RUNTIME_ENGINE_FORMAT_H
#define KILN_RUNTIME_ENGINE_FORMAT_H

#include <stdint.h>

#define KILN_ENGINE_MAGIC "KILNENG\0"
#define KILN_ENGINE_FORMAT_VERSION 3u /* 2: tensor layouts (NHWC, pixel stride); 3: row-strided LINEAR views */
#define KILN_ENGINE_FORMAT_OLDEST 2u  /* a v2 engine is a v3 engine without row-strided tensors: still read */
#define KILN_ENGINE_ENDIAN_TAG 0x01020304u
#define KILN_ENGINE_ALIGN 64u /* weights and the arena are 64-byte aligned (cache line, AVX-512) */

enum kiln_section_kind {
  KILN_SECTION_STRINGS = 1,  /* NUL-terminated strings; records refer to them by byte offset */
  KILN_SECTION_TARGET = 2,   /* one kiln_target_rec */
  KILN_SECTION_OPTIONS = 3,  /* one kiln_options_rec */
  KILN_SECTION_TENSORS = 4,  /* kiln_tensor_rec[] */
  KILN_SECTION_LAYERS = 5,   /* kiln_layer_rec[] in execution order */
  KILN_SECTION_INDICES = 6,  /* int32[]: each layer's input then output tensor ids */
  KILN_SECTION_PARAMS = 7,   /* per-layer parameter blobs (kernel-specific, 8-byte aligned) */
  KILN_SECTION_WEIGHTS = 8,  /* constant tensors and packed weights, each 64-byte aligned */
  KILN_SECTION_BINDINGS = 9, /* kiln_binding_rec[]: the engine's inputs and outputs */
  KILN_SECTION_PLAN = 10,    /* one kiln_plan_rec: activation arena size */
};

typedef struct kiln_engine_header { /* at offset 0, 128 bytes */
  char magic[8];
  uint32_t format_version;
  uint32_t endian_tag;
  char kiln_version[16];
  uint64_t file_size;
  uint64_t section_table_offset;
  uint32_t n_sections;
  uint32_t header_size;
  uint64_t checksum; /* kiln_hash64 of the whole file with this field zeroed */
  uint8_t reserved[64];
} kiln_engine_header;

typedef struct kiln_section_rec {
  uint32_t kind, reserved;
  uint64_t offset, size;
} kiln_section_rec;

enum kiln_target_device { KILN_TARGET_CPU = 0, KILN_TARGET_CUDA = 1 };

typedef struct kiln_target_rec {
  uint32_t device;          /* kiln_target_device */
  uint32_t cpu_isa;         /* kiln_isa the kernels were chosen for (CPU) */
  uint32_t cc_major, cc_minor;
  uint32_t driver_version, runtime_version;
  char device_name[64];
} kiln_target_rec;

typedef struct kiln_options_rec {
  uint32_t precision, device;
  int64_t batch;
  uint32_t threads, verbose;
  uint64_t workspace_limit;
  uint64_t source_model_hash; /* hash of the ONNX bytes the engine was built from (0 if unknown) */
  int64_t opset;              /* the model's default-domain opset: reference layers parse attributes by it */
} kiln_options_rec;

enum kiln_storage {
  KILN_STORAGE_ARENA = 0,  /* activation arena of the context, at `offset` */
  KILN_STORAGE_WEIGHT = 1, /* weights section, at `offset` */
  KILN_STORAGE_IO = 2,     /* the caller's buffer for binding `slot` */
  KILN_STORAGE_VIEW = 3,   /* the memory of tensor `alias_of`, `offset` bytes in */
};

/* How a tensor's elements sit in memory. dims are always the ONNX (logical) dims. */
enum kiln_layout {
  /* Row-major in the ONNX dim order (every CPU tensor, every binding). pixel_stride 0 = dense. A VIEW with
   * pixel_stride S > 0 (v3) is row-strided: its dim-0 indices ("rows", the batch) lie S elements apart and
   * each row (dims 1.. in row-major order) is contiguous - a slice along dim 1.. of a wider tensor, such as
   * a member of a Concat along the channels at batch > 1 that its producer writes in place. Only kernels
   * flagged KILN_KERNEL_ROW_STRIDED may see such a tensor (checked at load). */
  KILN_LAYOUT_LINEAR = 0,
  /* 4-D [N,C,H,W] stored as N,H,W,C: element (n,c,h,w) at ((n*H + h)*W + w)*pixel_stride + c. A
   * pixel_stride > C makes a VIEW a channel slice of a wider tensor (a Concat buffer), and an ARENA
   * tensor padded (the stem's input, 3 channels stored as 8); either way it spans kiln_tensor_span bytes. */
  KILN_LAYOUT_NHWC = 1,
};

typedef struct kiln_tensor_rec {
  uint32_t name;    /* string offset */
  uint32_t dtype;   /* kiln_dtype */
  uint32_t rank;
  uint32_t storage; /* kiln_storage */
  int64_t dims[8];
  uint64_t offset, nbytes; /* nbytes: numel * element size (a strided slice spans more, see layout) */
  int32_t slot;     /* binding index for IO, else -1 */
  int32_t alias_of; /* tensor id for VIEW, else -1 */
  uint32_t layout;  /* kiln_layout */
  uint32_t reserved;
  int64_t pixel_stride; /* NHWC: elements between consecutive pixels (>= C); LINEAR: 0, or the row stride */
} kiln_tensor_rec;

/* A LINEAR tensor whose rows (dim-0 indices) are pixel_stride elements apart rather than dense. */
static inline int kiln_tensor_row_strided(const kiln_tensor_rec *t) {
  return t->layout == KILN_LAYOUT_LINEAR && t->pixel_stride != 0;
}

/* Elements per row of a LINEAR tensor: the product of dims 1.. (the whole tensor for rank 0). */
static inline int64_t kiln_tensor_row_len(const kiln_tensor_rec *t) {
  int64_t n = 1;
  for (uint32_t d = 1; d < t->rank && d < 8; d++) n *= t->dims[d];
  return n;
}

/* Bytes from a tensor's first element to one past its last (a strided slice spans more than nbytes).
 * Only for records whose strides were checked (>= the dense stride; the loader does that first). */
static inline uint64_t kiln_tensor_span(const kiln_tensor_rec *t) {
  if (kiln_tensor_row_strided(t)) {
    if (t->nbytes == 0 || t->rank < 1 || t->pixel_stride <= kiln_tensor_row_len(t)) return t->nbytes;
    uint64_t len = (uint64_t)kiln_tensor_row_len(t), es = t->nbytes / ((uint64_t)t->dims[0] * len);
    return (((uint64_t)t->dims[0] - 1) * (uint64_t)t->pixel_stride + len) * es;
  }
  if (t->layout != KILN_LAYOUT_NHWC || t->rank != 4 || t->nbytes == 0 || t->pixel_stride <= t->dims[1]) return t->nbytes;
  uint64_t es = t->nbytes / (uint64_t)(t->dims[0] * t->dims[1] * t->dims[2] * t->dims[3]);
  uint64_t pixels = (uint64_t)(t->dims[0] * t->dims[2] * t->dims[3]);
  return ((pixels - 1) * (uint64_t)t->pixel_stride + (uint64_t)t->dims[1]) * es;
}

typedef struct kiln_layer_rec {
  uint32_t name;      /* string offset */
  uint32_t kernel;    /* string offset: the kernel's stable name, e.g. "cpu.conv" or "ref" */
  uint32_t op;        /* string offset: the ONNX op type (for profiles and inspect) */
  uint32_t n_inputs, n_outputs;
  uint32_t io_index;  /* first entry in the INDICES section */
  uint64_t params_offset, params_size;
  uint64_t workspace; /* scratch bytes the kernel needs (per context) */
  uint64_t macs;
} kiln_layer_rec;

typedef struct kiln_binding_rec {
  uint32_t tensor, is_input;
} kiln_binding_rec;

typedef struct kiln_plan_rec {
  uint64_t arena_size;     /* bytes of one context's activation arena */
  uint64_t workspace_size; /* bytes of per-context kernel scratch (max over layers) */
  uint64_t naive_size;     /* what the activations would take without reuse (for inspect) */
  uint64_t weights_size;
} kiln_plan_rec;

#endif
