#include "tool_util.h"

#include "commands.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int kiln_flag_value(int argc, char **argv, int *i, const char *name, const char **value) {
  size_t n = strlen(name);
  if (strncmp(argv[*i], name, n) != 0) return 0;
  if (argv[*i][n] == '=') {
    *value = argv[*i] + n + 1;
    return 1;
  }
  if (argv[*i][n] != 0) return 0;
  *value = *i + 1 < argc ? argv[++*i] : NULL;
  return 1;
}

int kiln_parse_int(const char *s, int lo, int hi, int *out) {
  char *end;
  errno = 0;
  long v = strtol(s, &end, 10);
  if (errno || end == s || *end || v < lo || v > hi) return 1;
  *out = (int)v;
  return 0;
}

int kiln_parse_device(const char *s, kiln_device_kind *out) {
  if (!strcmp(s, "cpu")) *out = KILN_DEVICE_CPU;
  else if (!strcmp(s, "cuda") || !strcmp(s, "gpu")) *out = KILN_DEVICE_CUDA;
  else return 1;
  return 0;
}

int kiln_report(const char *cmd, kiln_status st) {
  fprintf(stderr, "kiln %s: %s\n", cmd, kiln_status_message(st));
  kiln_status_code code = kiln_status_get_code(st);
  kiln_status_destroy(st);
  return (code == KILN_ERR_OUT_OF_MEMORY || code == KILN_ERR_INTERNAL) ? KILN_EXIT_FAILURE
                                                                                              : KILN_EXIT_BAD_INPUT;
}

int kiln_usage_error(const char *cmd, const char *msg) {
  fprintf(stderr, "kiln %s: %s\n", cmd, msg);
  return KILN_EXIT_USAGE;
}

double kiln_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}
