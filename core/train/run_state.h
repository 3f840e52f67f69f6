/* run_state: what `--resume` needs beyond the weights and AdamW state: the
 * position in the run (epoch, place in the epoch's image order, step count,
 * the crop sampler's random state) and the run's settings, stored in a
 * training checkpoint under "alignseg_train" (plain pickle ints, floats and
 * strings, so torch.load reads it). Read back, it is checked like user input:
 * every setting against the limits of the command-line options
 * (train_options.h), every field for presence and range, naming the file. */
#ifndef ALIGNSEG_RUN_STATE_H
#define ALIGNSEG_RUN_STATE_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "pickle.h"
#include "rng.h"
#include "train_options.h"

#define AS_TRAIN_STATE_KEY "alignseg_train"

typedef struct {
    int epoch;           /* epoch in progress (0-based) = epochs completed */
    int cursor;          /* position in the epoch's image order */
    int64_t global_step;
    AsRng crop_rng;      /* the crop sampler's state */
    double base_lr;      /* learning rate before the schedule */
} AsTrainState;

/* The state and the settings of o as a dict (NULL when out of memory). */
AsPValue *as_train_state_value(const AsTrainOptions *o, const AsTrainState *rs, int nimages);

/* Restore from a checkpoint's root dict read from path: settings the user
 * did not give (o->given) are taken from the file. A checkpoint of the
 * published code (no state of ours) continues after its "epoch" with a fresh
 * random state. A warning for the user (or "") goes to warn. Errors name
 * the file and the field. */
int as_train_state_restore(AsTrainOptions *o, AsTrainState *rs, const AsPValue *root,
                           int nimages, const char *path, char *warn, size_t warn_len,
                           AsError *err);

#endif
