/* train_options: see train_options.h */
#include "train_options.h"

#include <math.h>
#include <string.h>

#include "trainer.h"

#define F(field) offsetof(AsTrainOptions, field)
#define SAVED AS_TOPT_SAVED

/* Defaults: METHOD.md section 5 (the published training), except batch and
 * threads, which suit a CPU. The encoder runs at most 16 threads
 * (crops.c); a crop side is a multiple of the patch (checked once the
 * model is known). */
const AsTrainLimit as_train_limits[] = {
    { "--epochs", "epochs", AS_TOPT_INT, F(epochs), 1, 1e6, 10, SAVED },
    { "--batch", "batch", AS_TOPT_INT, F(batch), 1, 4096, 32, SAVED },
    { "--queries", NULL, AS_TOPT_INT, F(queries), 2, 4096, 5, 0 },
    { "--hidden", NULL, AS_TOPT_INT, F(hidden), 1, 1 << 16, 768, 0 },
    { "--layers", NULL, AS_TOPT_INT, F(layers), 1, 64, 1, 0 },
    { "--local-crops", "local_crops", AS_TOPT_INT, F(local_crops), 1, 16, 2, SAVED },
    { "--crop-size", "crop_size", AS_TOPT_INT, F(crop_size), 8, 4096, 224, SAVED },
    { "--threads", "threads", AS_TOPT_INT, F(threads), 1, 16, 2, SAVED },
    { "--lr-step", "lr_step", AS_TOPT_INT, F(lr_step), 1, 1e6, 3, SAVED },
    { "--max-steps", NULL, AS_TOPT_INT, F(max_steps), 1, 1e9, 0, 0 },
    { "--encoder-heads", "encoder_heads", AS_TOPT_INT, F(encoder_heads), 1, 1024, 0,
      SAVED | AS_TOPT_ZERO_UNSET },
    { "--decoder-heads", "decoder_heads", AS_TOPT_INT, F(decoder_heads), 1, 1024, 0,
      SAVED | AS_TOPT_ZERO_UNSET },
    /* defaults 0 here: as_train_hyper_default's */
    { "--lr", "base_lr", AS_TOPT_REAL, F(lr), 0, 10, 0, SAVED },
    { "--weight-decay", "weight_decay", AS_TOPT_REAL, F(weight_decay), 0, 10, 0, SAVED },
    { "--lr-gamma", "lr_gamma", AS_TOPT_REAL, F(lr_gamma), 0, 10, 0.5, SAVED },
    { "--mass-threshold", "mass_threshold", AS_TOPT_REAL, F(mass_threshold), 0, 1, 0.6, SAVED },
    { "--negative-pressure", "negative_pressure", AS_TOPT_REAL, F(negative_pressure), -10, 10,
      0, SAVED },
    { "--seed", "seed", AS_TOPT_SEED, F(seed), 0, 9007199254740992.0, 3407,
      SAVED | AS_TOPT_RUN_WINS },
};
const int as_train_nlimits = (int)(sizeof as_train_limits / sizeof *as_train_limits);
_Static_assert(sizeof as_train_limits / sizeof *as_train_limits < 31,
               "AsTrainOptions.given has a bit per limit and AS_TRAIN_GIVEN_PAIRING");

static void store(AsTrainOptions *o, int i, double v)
{
    const AsTrainLimit *l = &as_train_limits[i];
    char *p = (char *)o + l->offset;
    switch (l->kind) {
    case AS_TOPT_INT: *(int *)(void *)p = (int)v; break;
    case AS_TOPT_REAL: *(double *)(void *)p = v; break;
    case AS_TOPT_SEED: *(uint64_t *)(void *)p = (uint64_t)v; break;
    }
}

void as_train_options_default(AsTrainOptions *o)
{
    memset(o, 0, sizeof *o);
    for (int i = 0; i < as_train_nlimits; i++)
        store(o, i, as_train_limits[i].def);
    AsTrainHyper h; /* METHOD.md 5 values, one place */
    as_train_hyper_default(&h);
    o->lr = h.lr;
    o->weight_decay = h.weight_decay;
    o->negative_pressure = h.negative_pressure;
    o->pairing = AS_PAIRING_REFERENCE;
    o->kmeans_images = 64;
}

int as_train_limit_find(const char *flag)
{
    for (int i = 0; i < as_train_nlimits; i++)
        if (!strcmp(as_train_limits[i].flag, flag))
            return i;
    return -1;
}

int as_train_option_check(int i, double v, const char *label, AsError *err)
{
    const AsTrainLimit *l = &as_train_limits[i];
    const bool unset = (l->flags & AS_TOPT_ZERO_UNSET) && v == 0.0;
    const bool whole = l->kind == AS_TOPT_REAL || v == floor(v);
    if (!unset && !(v >= l->lo && v <= l->hi && whole))
        return as_error_set(err, AS_ERR_ARG, "%s %.17g is not %s from %.17g to %.17g",
                            label ? label : l->flag, v,
                            l->kind == AS_TOPT_REAL ? "a number" : "a whole number", l->lo,
                            l->hi);
    return 0;
}

int as_train_option_set(AsTrainOptions *o, int i, double v, const char *label, AsError *err)
{
    int rc = as_train_option_check(i, v, label, err);
    if (!rc)
        store(o, i, v);
    return rc;
}

double as_train_option_get(const AsTrainOptions *o, int i)
{
    const AsTrainLimit *l = &as_train_limits[i];
    const char *p = (const char *)o + l->offset;
    switch (l->kind) {
    case AS_TOPT_INT: return *(const int *)(const void *)p;
    case AS_TOPT_REAL: return *(const double *)(const void *)p;
    case AS_TOPT_SEED: return (double)*(const uint64_t *)(const void *)p;
    }
    return 0.0;
}

const char *as_pairing_name(AsPairing p)
{
    return p == AS_PAIRING_SAME_IMAGE ? "same-image" : "reference";
}

bool as_pairing_parse(const char *s, AsPairing *out)
{
    if (!strcmp(s, "reference"))
        *out = AS_PAIRING_REFERENCE;
    else if (!strcmp(s, "same-image"))
        *out = AS_PAIRING_SAME_IMAGE;
    else
        return false;
    return true;
}
