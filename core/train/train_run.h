/* train_run: a whole training run (METHOD.md section 5) on a folder of
 * images: the model (a DINO backbone and a fresh decoder, or a resumed
 * checkpoint), optional k-means prototypes, then epochs of shuffled batches
 * (multi-crop views, frozen encoder, cached step, AdamW), a checkpoint per
 * epoch (RUNDIR/epochN.pth, readable by torch.load and the published code),
 * a CSV log of the losses per step (RUNDIR/train_log.csv), and on a stop
 * (cancel hook, --max-steps) a resumable RUNDIR/interrupted.pth. A resumed
 * run continues bit for bit: weights, AdamW moments, schedule, position in
 * the epoch and random state.
 *
 * Training stops with an error, writing nothing, as soon as the loss, a
 * gradient or a weight is not finite: a good checkpoint is never replaced by
 * a damaged one. */
#ifndef ALIGNSEG_TRAIN_RUN_H
#define ALIGNSEG_TRAIN_RUN_H

#include <stdbool.h>
#include <stdint.h>

#include "error.h"
#include "hooks.h"
#include "train.h"
#include "train_options.h"

typedef struct {
    int epoch, epochs;   /* epoch in progress, 1-based */
    int step, steps;     /* step in the epoch (1-based), steps per epoch */
    int64_t global_step;
    int images;          /* images in this step */
    AsTrainLosses loss;
    double lr, images_per_s, eta_s;
} AsTrainProgress;

typedef struct {
    /* Reporting; each may be NULL. note: one line for the user (the run's
     * settings, a skipped image, a saved checkpoint, a warning). step: after
     * every optimizer step. */
    void (*note)(void *user, const char *line);
    void (*step)(void *user, const AsTrainProgress *p);
    void *user;
    /* Data-parallel training (for a launcher such as MPI; the CLI runs one
     * process: rank 0, world 1): with world > 1, reduce is called after every
     * backward pass with the gradient (n floats) and the losses of this
     * process, and must replace them by the combination over all processes
     * (e.g. the mean), before the finite check and AdamW. Only rank 0
     * creates the run folder, writes checkpoints and the log and calls
     * note/step. Giving each rank its share of a batch is not done here
     * (every rank now reads the same images). */
    int rank, world;
    int (*reduce)(void *user, float *grad, long n, AsTrainLosses *loss, AsError *err);
} AsTrainEvents;

typedef struct {
    int steps;            /* optimizer steps in this call */
    long images;
    double seconds;       /* wall time of the loop */
    double time_encoder, time_forward, time_backward, time_optim, time_data;
    int bad_images;       /* unreadable images skipped */
    const char *stopped;  /* NULL: all epochs done; else why the run stopped */
    int epoch, cursor, nimages; /* where it stopped (epoch 1-based) */
} AsTrainSummary;

/* Run. hooks (may be NULL): cancel stops at the next batch (the batch in
 * flight is redone on resume) and saves interrupted.pth; progress reports
 * stage "train", steps done of the steps left at the start. Returns 0 when
 * all epochs are done or --max-steps stopped the run, AS_ERR_CANCELLED when
 * cancelled (interrupted.pth saved), another error code otherwise. */
int as_train_run(const AsTrainOptions *o, const AsHooks *hooks, const AsTrainEvents *ev,
                 AsTrainSummary *sum, AsError *err);

#endif
