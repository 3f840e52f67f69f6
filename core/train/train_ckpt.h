/* train_ckpt: training checkpoints as PyTorch .pth files with the published
 * layout ({epoch, net, state_dict, optimizer}), the AdamW state read back, and
 * (run_state.h) our resume data stored beside them. */
#ifndef ALIGNSEG_TRAIN_CKPT_H
#define ALIGNSEG_TRAIN_CKPT_H

#include <stdbool.h>
#include <stdint.h>

#include "error.h"
#include "model.h"
#include "pickle.h"
#include "trainer.h"

/* ---- checkpoints ----
 * {"epoch", "net", "state_dict" (the ViT's tensors under "backbone.", then
 * the decoder), "optimizer" {"state", "param_groups"}} plus, when extra is not
 * NULL, extra's entries (our resume data; taken over, freed). with_initial_lr
 * adds "initial_lr" to every group as PyTorch's schedulers do. */
int as_train_save(const char *path, const AsModel *m, const AsTrainer *t, int64_t epoch,
                  const char *net, bool with_initial_lr, double initial_lr, AsPValue *extra,
                  AsError *err);
/* Restore AdamW moments, step counts and the learning rate from a checkpoint's
 * "optimizer" value (PyTorch layout). Shapes are checked. */
int as_train_load_optimizer(AsTrainer *t, const AsPValue *opt, const char *what,
                            AsError *err);

#endif
