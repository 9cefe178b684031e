/* The `kiln` command: dispatches to one subcommand per file (tools/cmd_<name>.c). */
#include "commands.h"

#include <stdio.h>
#include <string.h>

static const struct {
  const char *name;
  int (*run)(int argc, char **argv);
  const char *help;
} commands[] = {
    {"build", kiln_cmd_build, "build an engine from an ONNX model"},
    {"run", kiln_cmd_run, "run an engine (or a model) on raw input files"},
    {"inspect", kiln_cmd_inspect, "print a model's inputs, outputs, ops, parameters and MACs"},
    {"surgeon", kiln_cmd_surgeon, "rewrite a model: sanitize (fold, clean up, sort), batch"},
    {"detect", kiln_cmd_detect, "detect objects in photos with a YOLO model: boxes, labels, JSON"},
    {"exec", kiln_cmd_exec, "benchmark an engine or model (trtexec-compatible flags and summary)"},
    {"conformance", kiln_cmd_conformance, "build and run engines for ONNX backend node tests"},
    {"nodetest", kiln_cmd_nodetest, "check import, shape inference and reference kernels on ONNX node tests"},
};

static void usage(FILE *f) {
  fprintf(f, "kiln %s — inference compiler and runtime for ONNX models\n\nusage: kiln <command> [args]\n\ncommands:\n",
          KILN_VERSION_STRING);
  for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
    fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].help);
  fprintf(f, "\nRun 'kiln <command> --help' for a command's options.\n");
}

int main(int argc, char **argv) {
  if (argc < 2) {
    usage(stderr);
    return KILN_EXIT_USAGE;
  }
  if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
    usage(stdout);
    return 0;
  }
  if (!strcmp(argv[1], "--version")) {
    printf("kiln %s\n", KILN_VERSION_STRING);
    return 0;
  }
  for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
    if (!strcmp(argv[1], commands[i].name)) return commands[i].run(argc - 1, argv + 1);
  fprintf(stderr, "kiln: unknown command '%s'\n", argv[1]);
  usage(stderr);
  return KILN_EXIT_USAGE;
}
