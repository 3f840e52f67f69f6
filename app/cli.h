/* cli: option parsing shared by the sub-commands that load a model and
 * segment images (segment, export, eval): model/backbone paths, head counts,
 * input size, prototypes, thresholds, merging and threads. */
#ifndef ALIGNSEG_CLI_H
#define ALIGNSEG_CLI_H

#include <stdbool.h>

#include "model.h"
#include "segment.h"

typedef struct {
    const char *model;    /* -m */
    const char *backbone; /* -b */
    AsModelOptions mopt;
    AsSegmentOptions sopt;
    int threads;          /* --threads, 0 = all cores */
    int merge_to;         /* --merge-to K, 0 = off */
    float merge_threshold;/* --merge-threshold T, >1 = off */
} CliModelArgs;

void cli_model_args_init(CliModelArgs *a);
/* Consume the option at argv[*i] (and its value) if it is a common one.
 * Returns 1 if consumed (advancing *i past its value), 0 if not a common
 * option, -1 on a bad value (message printed, prefixed with cmd). */
int cli_model_option(CliModelArgs *a, const char *cmd, int argc, char **argv, int *i);
/* Help text for the common options (one block, ends with a newline). */
extern const char cli_model_help[];
/* Check required options, set threads, load the model; prints errors. */
int cli_load_model(const CliModelArgs *a, const char *cmd, AsModel **out);
/* Apply --threads to the compute layer (0: all cores; as_pool_set_threads). */
void cli_set_threads(int threads);
/* Parse helpers: return false (and print) on a bad number. */
bool cli_parse_int(const char *cmd, const char *opt, const char *s, int lo, int hi, int *out);
bool cli_parse_double(const char *cmd, const char *opt, const char *s, double lo, double hi,
                      double *out);
bool cli_parse_float(const char *cmd, const char *opt, const char *s, double lo, double hi,
                     float *out);
/* *out = s; false (and print) when the value is missing (s NULL). */
bool cli_parse_string(const char *cmd, const char *opt, const char *s, const char **out);
/* *out = the index of s among names[0..n); false (and print) otherwise. */
bool cli_parse_choice(const char *cmd, const char *opt, const char *s, const char *const *names,
                      int n, int *out);
/* File name without directory and extension ("a/b/cat.jpg" -> "cat"), into buf. */
const char *cli_stem(const char *path, char *buf, size_t len);
/* mkdir -p; returns 0 or prints an error and returns -1. */
int cli_mkdirs(const char *cmd, const char *path);

#endif
