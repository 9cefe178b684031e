/* Subcommands of the `kiln` tool, one per file (tools/cmd_<name>.c). Each gets argv from its name on. */
#ifndef KILN_TOOLS_COMMANDS_H
#define KILN_TOOLS_COMMANDS_H

/* Exit codes: 0 ok; 1 runtime failure; 2 bad input (malformed file, bad flag, unsupported model). */
enum { KILN_EXIT_OK = 0, KILN_EXIT_FAILURE = 1, KILN_EXIT_USAGE = 2, KILN_EXIT_BAD_INPUT = 2 };

int kiln_cmd_inspect(int argc, char **argv);
int kiln_cmd_surgeon(int argc, char **argv);
int kiln_cmd_nodetest(int argc, char **argv);
int kiln_cmd_build(int argc, char **argv);
int kiln_cmd_run(int argc, char **argv);
int kiln_cmd_exec(int argc, char **argv);
int kiln_cmd_conformance(int argc, char **argv);
int kiln_cmd_detect(int argc, char **argv);

#endif
