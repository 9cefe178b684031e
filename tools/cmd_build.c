/* `kiln build MODEL.onnx -o OUT.engine [--device cpu|cuda] [--fp16] [--cuda-arch CC] [--gpu N] [--threads N]
 *  [--batch N] [--timingCacheFile F] [--noTacticTiming] [--verbose]` */
#include "commands.h"
#include "tool_util.h"

#include "onnx/onnx.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void usage(FILE *f) {
  fprintf(f, "usage: kiln build MODEL.onnx -o OUT.engine [--device cpu|cuda] [--fp16] [--cuda-arch CC] [--gpu N]\n"
             "                  [--threads N] [--batch N] [--timingCacheFile F] [--noTacticTiming] [--verbose]\n"
             "  builds an engine (optimize, choose kernels, plan memory, serialize) and writes it atomically\n"
             "  --device cuda   a GPU engine for the compute capability of GPU --gpu N (default 0), or of\n"
             "                  --cuda-arch CC (e.g. 90 for H100) to build without a GPU\n"
             "  --fp16          fp16 weights and activations where safe (CUDA; accumulation stays fp32)\n"
             "  --timingCacheFile F   CUDA: conv tactic timings are read from F (if it exists) and new ones\n"
             "                  added, so rebuilding the same layers on the same GPU times nothing\n"
             "  --noTacticTiming      CUDA: keep the heuristic's conv kernels (no timing on the build GPU)\n"
             "  --verbose       print each layer; on a GPU, each conv's chosen kernel, its time, the heuristic's\n");
}

int kiln_cmd_build(int argc, char **argv) {
  const char *model = NULL, *out = NULL;
  kiln_build_config cfg;
  kiln_build_config_init(&cfg);
  for (int i = 1; i < argc; i++) {
    const char *v;
    if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
      usage(stdout);
      return 0;
    } else if (kiln_flag_value(argc, argv, &i, "-o", &v) || kiln_flag_value(argc, argv, &i, "--output", &v)) {
      if (!v) return kiln_usage_error("build", "-o needs a path");
      out = v;
    } else if (kiln_flag_value(argc, argv, &i, "--device", &v)) {
      if (!v || kiln_parse_device(v, &cfg.device)) return kiln_usage_error("build", "--device must be cpu or cuda");
    } else if (!strcmp(argv[i], "--fp16")) {
      cfg.precision = KILN_PRECISION_FP16;
    } else if (kiln_flag_value(argc, argv, &i, "--cuda-arch", &v)) {
      if (!v || kiln_parse_int(v, 50, 200, &cfg.cuda_arch)) return kiln_usage_error("build", "--cuda-arch must be like 90");
    } else if (kiln_flag_value(argc, argv, &i, "--gpu", &v)) {
      if (!v || kiln_parse_int(v, 0, 63, &cfg.cuda_device)) return kiln_usage_error("build", "--gpu must be 0..63");
    } else if (kiln_flag_value(argc, argv, &i, "--threads", &v)) {
      if (!v || kiln_parse_int(v, 1, 1024, &cfg.threads)) return kiln_usage_error("build", "--threads must be 1..1024");
    } else if (kiln_flag_value(argc, argv, &i, "--batch", &v)) {
      int b;
      if (!v || kiln_parse_int(v, 1, 1 << 20, &b)) return kiln_usage_error("build", "--batch must be a positive integer");
      cfg.batch = b;
    } else if (kiln_flag_value(argc, argv, &i, "--timingCacheFile", &v)) {
      if (!v || !*v) return kiln_usage_error("build", "--timingCacheFile needs a path");
      cfg.timing_cache_path = v;
    } else if (!strcmp(argv[i], "--noTacticTiming")) {
      cfg.no_tactic_timing = 1;
    } else if (!strcmp(argv[i], "--verbose") || !strcmp(argv[i], "-v")) {
      cfg.verbose = 1;
    } else if (argv[i][0] == '-') {
      fprintf(stderr, "kiln build: unknown flag '%s'\n", argv[i]);
      usage(stderr);
      return KILN_EXIT_USAGE;
    } else if (model) {
      return kiln_usage_error("build", "more than one model given");
    } else model = argv[i];
  }
  if (!model || !out) {
    usage(stderr);
    return KILN_EXIT_USAGE;
  }
  double t0 = kiln_now_ms();
  kiln_network *net;
  kiln_status st = kiln_network_load_onnx(model, &net);
  if (st) return kiln_report("build", st);
  st = kiln_build_to_file(net, &cfg, out);
  kiln_network_destroy(net);
  if (st) return kiln_report("build", st);
  printf("kiln build: %s -> %s in %.0f ms\n", model, out, kiln_now_ms() - t0);
  return 0;
}
