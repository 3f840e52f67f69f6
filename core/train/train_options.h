/* train_options: the settings of a training run and the one table of their
 * limits. The command line (app/cmd_train.c) and a resumed run's saved state
 * (run_state.h) both go through this table, so a value the command line
 * refuses is refused in a checkpoint too. */
#ifndef ALIGNSEG_TRAIN_OPTIONS_H
#define ALIGNSEG_TRAIN_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "crops.h"
#include "error.h"

typedef struct {
    /* inputs and outputs */
    const char *backbone;    /* DINO backbone; with resume it replaces the file's encoder */
    const char *images;      /* folder of JPEG/PNG images */
    const char *rundir;      /* epochN.pth, interrupted.pth, train_log.csv */
    const char *resume;      /* checkpoint to continue from (NULL: a fresh decoder) */
    const char *random_arch; /* vit_small16, vit_small8, vit_base16, vit_base8: a random
                                encoder instead of backbone (benchmarks) */
    /* numbers: limits and defaults in as_train_limits */
    int epochs, batch, queries, hidden, layers, local_crops, crop_size, threads;
    int lr_step, max_steps, encoder_heads, decoder_heads;
    int kmeans_images; /* images whose tokens give k-means prototypes (64; not an option) */
    double lr, weight_decay, lr_gamma, mass_threshold, negative_pressure;
    uint64_t seed;
    AsPairing pairing;
    bool kmeans;      /* prototypes from k-means of image tokens instead of N(0,1) */
    bool keep_all;    /* keep every epoch's checkpoint (default: the newest) */
    uint32_t given;   /* bit i: as_train_limits[i] was set by the user (it then
                         overrides a resumed run's value); AS_TRAIN_GIVEN_PAIRING */
} AsTrainOptions;

#define AS_TRAIN_GIVEN_PAIRING (1u << 31)

typedef enum { AS_TOPT_INT, AS_TOPT_REAL, AS_TOPT_SEED } AsTrainOptKind;

enum {
    AS_TOPT_SAVED = 1,      /* kept in the run state; a resumed run takes it unless given */
    AS_TOPT_ZERO_UNSET = 2, /* 0 means "not set" (the default) */
    AS_TOPT_RUN_WINS = 4    /* a resumed run always keeps its own value */
};

typedef struct {
    const char *flag;  /* command-line option, e.g. "--crop-size" */
    const char *key;   /* run-state key, e.g. "crop_size" (NULL: not saved) */
    AsTrainOptKind kind;
    size_t offset;     /* in AsTrainOptions */
    double lo, hi;     /* inclusive */
    double def;        /* default */
    unsigned flags;    /* AS_TOPT_* */
} AsTrainLimit;

extern const AsTrainLimit as_train_limits[];
extern const int as_train_nlimits;

void as_train_options_default(AsTrainOptions *o);
/* Index of the limit for a command-line flag, or -1. */
int as_train_limit_find(const char *flag);
/* Check v against limit i (0 passes for AS_TOPT_ZERO_UNSET). The error reads
 * "LABEL V is not a whole number from LO to HI"; label names the value and
 * where it came from ("--batch", "run/epoch3.pth: run state batch"); NULL:
 * the flag. */
int as_train_option_check(int i, double v, const char *label, AsError *err);
/* Check, then store. */
int as_train_option_set(AsTrainOptions *o, int i, double v, const char *label, AsError *err);
double as_train_option_get(const AsTrainOptions *o, int i);

const char *as_pairing_name(AsPairing p);
/* "reference" / "same-image"; false for anything else */
bool as_pairing_parse(const char *s, AsPairing *out);

#endif
