/*
 * The builder's timing cache (`--timingCacheFile`, kiln_build_config.timing_cache_path): which kernel won
 * the tactic timing of a layer configuration on a GPU, so a later build of the same layers (any model)
 * does not time them again.
 *
 * The key is a string that names everything about a layer that changes its speed (shapes, strides, pads,
 * dtypes, epilogue, pointer alignments) plus the GPU's name and compute capability; the value is the
 * winning kernel's *name* (not a tactic index: indices move when kernels are added, names do not) and
 * its time. File: JSON, written atomically, entries sorted by key so equal caches are equal files:
 *
 *   {"format": "kiln-timing-cache", "version": 1,
 *    "entries": [{"key": "...", "kernel": "conv_igemm_mma.f16.64x32x32.s4", "ms": 0.0123,
 *                 "heuristic_ms": 0.0150}, ...]}
 *
 * Host-only code (no CUDA), so it builds and is tested everywhere, sanitizers included.
 */
#ifndef KILN_BUILD_TIMING_CACHE_H
#define KILN_BUILD_TIMING_CACHE_H

#include "backend/cuda/conv_cuda.h"
#include "core/status.h"

#include <stdbool.h>
#include <stddef.h>

#define KILN_TIMING_CACHE_VERSION 1

typedef struct kiln_timing_entry {
  char *key;
  char *kernel;        /* the winner's kernel name */
  double ms;           /* its time per run */
  double heuristic_ms; /* the heuristic's (tactic 0) time, < 0 if unknown */
} kiln_timing_entry;

typedef struct kiln_timing_cache kiln_timing_cache;

kiln_status kiln_timing_cache_create(kiln_timing_cache **out);
void kiln_timing_cache_destroy(kiln_timing_cache *c);
/* Merge the entries of a cache file. A missing file is an empty cache (the first build creates it); an
 * empty file too. Anything else that is not a kiln timing cache of this version is a KILN_ERR_PARSE
 * error naming the file and what is wrong; the cache is then left unchanged. */
kiln_status kiln_timing_cache_load(kiln_timing_cache *c, const char *path);
/* The same from memory (`what` names the source in errors). */
kiln_status kiln_timing_cache_parse(kiln_timing_cache *c, const char *text, size_t len, const char *what);
/* Write the whole cache (temp file + rename: never a half-written file). */
kiln_status kiln_timing_cache_save(const kiln_timing_cache *c, const char *path);
/* The serialized text (malloc'd, NUL-terminated; free it). */
kiln_status kiln_timing_cache_serialize(const kiln_timing_cache *c, char **out);

/* NULL if absent. The pointer stays valid until the next put. */
const kiln_timing_entry *kiln_timing_cache_find(const kiln_timing_cache *c, const char *key);
/* Insert or replace. */
kiln_status kiln_timing_cache_put(kiln_timing_cache *c, const char *key, const char *kernel, double ms, double heuristic_ms);
int kiln_timing_cache_size(const kiln_timing_cache *c);
/* Entries added or replaced since create/load (the file needs rewriting). */
bool kiln_timing_cache_dirty(const kiln_timing_cache *c);

/* The key of a conv layer: every kiln_cuda_conv_desc field that affects speed except `tactic`, the byte
 * misalignment (mod 16) of the x, residual and y pointers the engine will pass, and the GPU. Returns the
 * length written (truncates like snprintf). */
int kiln_timing_key_conv(const kiln_cuda_conv_desc *d, const unsigned misalign[3], const char *gpu_name, int cc_major,
                         int cc_minor, char *buf, size_t size);

#endif
