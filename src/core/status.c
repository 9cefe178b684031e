#include "core/status.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct kiln_error {
  kiln_status_code code;
  int is_static; /* the out-of-memory fallback is a constant object and is never freed */
  char message[];
};

/* Returned when we cannot even allocate the error; read-only, so it is not mutable global state. */
static const struct {
  kiln_status_code code;
  int is_static;
  char message[64];
} oom_error = {KILN_ERR_OUT_OF_MEMORY, 1, "out of memory while reporting an error"};

kiln_status kiln_error_v(kiln_status_code code, const char *fmt, va_list ap) {
  va_list ap2;
  va_copy(ap2, ap);
  int n = vsnprintf(NULL, 0, fmt, ap2);
  va_end(ap2);
  if (n < 0) n = 0;
  struct kiln_error *e = malloc(sizeof *e + (size_t)n + 1);
  if (!e) return (kiln_status)&oom_error;
  e->code = code == KILN_OK ? KILN_ERR_INTERNAL : code;
  e->is_static = 0;
  vsnprintf(e->message, (size_t)n + 1, fmt, ap);
  return e;
}

kiln_status kiln_error(kiln_status_code code, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  kiln_status st = kiln_error_v(code, fmt, ap);
  va_end(ap);
  return st;
}

kiln_status kiln_error_prefix(kiln_status st, const char *fmt, ...) {
  if (!st) return NULL;
  char prefix[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(prefix, sizeof prefix, fmt, ap);
  va_end(ap);
  kiln_status out = kiln_error(st->code, "%s%s", prefix, st->message);
  if (out == (kiln_status)&oom_error) return st;
  kiln_status_destroy(st);
  return out;
}

kiln_status_code kiln_status_get_code(kiln_status st) { return st ? st->code : KILN_OK; }
const char *kiln_status_message(kiln_status st) { return st ? st->message : ""; }

void kiln_status_destroy(kiln_status st) {
  if (st && !st->is_static) free(st);
}

const char *kiln_status_code_name(kiln_status_code code) {
  switch (code) {
  case KILN_OK: return "ok";
  case KILN_ERR_INVALID_ARGUMENT: return "invalid argument";
  case KILN_ERR_PARSE: return "parse error";
  case KILN_ERR_UNSUPPORTED: return "unsupported";
  case KILN_ERR_SHAPE: return "shape error";
  case KILN_ERR_IO: return "i/o error";
  case KILN_ERR_OUT_OF_MEMORY: return "out of memory";
  case KILN_ERR_DEVICE: return "device error";
  case KILN_ERR_INTERNAL: return "internal error";
  }
  return "unknown error";
}

const char *kiln_version(void) { return KILN_VERSION_STRING; }
