/* run_state: see run_state.h */
#include "run_state.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define STATE_VERSION 1
#define MAX_EPOCH 1e6 /* = the --epochs limit */

AsPValue *as_train_state_value(const AsTrainOptions *o, const AsTrainState *rs, int nimages)
{
    AsPValue *d = as_pv_dict(false);
    AsPValue *rng = as_pv_list();
    if (!d || !rng) {
        as_pv_free(d);
        as_pv_free(rng);
        return NULL;
    }
    int rc = 0;
    for (int i = 0; i < 4 && !rc; i++) { /* 32-bit halves: pickle ints are signed */
        rc = as_pv_append(rng, as_pv_int((int64_t)(rs->crop_rng.s[i] >> 32)), NULL);
        if (!rc)
            rc = as_pv_append(rng, as_pv_int((int64_t)(rs->crop_rng.s[i] & 0xffffffffu)), NULL);
    }
#define SET(k, v)                                                                  \
    if (!rc)                                                                       \
        rc = as_pv_dict_set_str(d, k, v, NULL);
    SET("version", as_pv_int(STATE_VERSION));
    SET("epoch", as_pv_int(rs->epoch));
    SET("cursor", as_pv_int(rs->cursor));
    SET("global_step", as_pv_int(rs->global_step));
    if (!rc)
        rc = as_pv_dict_set_str(d, "crop_rng", rng, NULL);
    else
        as_pv_free(rng);
    for (int i = 0; i < as_train_nlimits && !rc; i++) {
        const AsTrainLimit *l = &as_train_limits[i];
        if (!(l->flags & AS_TOPT_SAVED))
            continue;
        double v = !strcmp(l->key, "base_lr") ? rs->base_lr : as_train_option_get(o, i);
        SET(l->key, l->kind == AS_TOPT_REAL ? as_pv_float(v) : as_pv_int((int64_t)v));
    }
    SET("pairing", as_pv_str(as_pairing_name(o->pairing)));
    SET("images", as_pv_int(nimages));
#undef SET
    if (rc) {
        as_pv_free(d);
        return NULL;
    }
    return d;
}

/* A number field of the state in [lo, hi] (whole if whole). */
static int get_field(const AsPValue *d, const char *key, double lo, double hi, bool whole,
                     const char *path, double *v, AsError *err)
{
    if (!as_pv_number(as_pv_get(d, key), v))
        return as_error_set(err, AS_ERR_FORMAT, "%s: run state (%s) lacks the number '%s'",
                            path, AS_TRAIN_STATE_KEY, key);
    if (!(*v >= lo && *v <= hi) || (whole && *v != floor(*v)))
        return as_error_set(err, AS_ERR_FORMAT,
                            "%s: run state %s %.17g is not %s from %.17g to %.17g", path, key,
                            *v, whole ? "a whole number" : "a number", lo, hi);
    return 0;
}

int as_train_state_restore(AsTrainOptions *o, AsTrainState *rs, const AsPValue *root,
                           int nimages, const char *path, char *warn, size_t warn_len,
                           AsError *err)
{
    warn[0] = 0;
    memset(rs, 0, sizeof *rs);
    const AsPValue *d = as_pv_get(root, AS_TRAIN_STATE_KEY);
    if (!d) {
        /* a checkpoint of the published code: continue after its epoch */
        double e = 0;
        if (as_pv_number(as_pv_get(root, "epoch"), &e) && !(e >= 0 && e <= MAX_EPOCH))
            return as_error_set(err, AS_ERR_FORMAT, "%s: epoch %.17g is not from 0 to %g",
                                path, e, MAX_EPOCH);
        rs->epoch = (int)e;
        rs->base_lr = o->lr;
        as_rng_seed2(&rs->crop_rng, o->seed, 0xc20b + (uint64_t)rs->epoch);
        snprintf(warn, warn_len,
                 "%s has no run state of ours: starting epoch %d with a fresh random state",
                 path, rs->epoch + 1);
        return 0;
    }
    if (d->kind != AS_PV_DICT)
        return as_error_set(err, AS_ERR_FORMAT, "%s: the run state (%s) is not a dict", path,
                            AS_TRAIN_STATE_KEY);
    double v;
    int rc;
    if ((rc = get_field(d, "version", STATE_VERSION, STATE_VERSION, true, path, &v, err)) ||
        (rc = get_field(d, "epoch", 0, MAX_EPOCH, true, path, &v, err)))
        return rc;
    rs->epoch = (int)v;
    if ((rc = get_field(d, "cursor", 0, 1e9, true, path, &v, err)))
        return rc;
    rs->cursor = (int)v;
    if ((rc = get_field(d, "global_step", 0, 1e15, true, path, &v, err)))
        return rc;
    rs->global_step = (int64_t)v;
    if ((rc = get_field(d, "images", 0, 1e9, true, path, &v, err)))
        return rc;
    if ((int)v != nimages)
        snprintf(warn, warn_len,
                 "the run had %d images, the folder now has %d: the image order differs from "
                 "an uninterrupted run", (int)v, nimages);
    const AsPValue *rng = as_pv_get(d, "crop_rng");
    if (!rng || rng->kind != AS_PV_LIST || rng->count != 8)
        return as_error_set(err, AS_ERR_FORMAT, "%s: run state crop_rng is not a list of 8 "
                            "numbers", path);
    for (int i = 0; i < 4; i++) {
        double hi, lo;
        if (!as_pv_number(rng->items[2 * i], &hi) || !as_pv_number(rng->items[2 * i + 1], &lo) ||
            !(hi >= 0 && hi < 4294967296.0 && hi == floor(hi)) ||
            !(lo >= 0 && lo < 4294967296.0 && lo == floor(lo)))
            return as_error_set(err, AS_ERR_FORMAT,
                                "%s: run state crop_rng holds a value that is not a 32-bit "
                                "whole number", path);
        rs->crop_rng.s[i] = ((uint64_t)hi << 32) | ((uint64_t)lo & 0xffffffffu);
    }
    if (!(rs->crop_rng.s[0] | rs->crop_rng.s[1] | rs->crop_rng.s[2] | rs->crop_rng.s[3]))
        return as_error_set(err, AS_ERR_FORMAT, "%s: run state crop_rng is all zero", path);
    /* every setting through the limits of the command line, whether taken or not */
    AsTrainOptions saved = *o;
    for (int i = 0; i < as_train_nlimits; i++) {
        const AsTrainLimit *l = &as_train_limits[i];
        if (!(l->flags & AS_TOPT_SAVED))
            continue;
        char label[4200];
        snprintf(label, sizeof label, "%s: run state %s", path, l->key);
        if (!as_pv_number(as_pv_get(d, l->key), &v))
            return as_error_set(err, AS_ERR_FORMAT, "%s: run state (%s) lacks the number '%s'",
                                path, AS_TRAIN_STATE_KEY, l->key);
        if ((rc = as_train_option_set(&saved, i, v, label, err)))
            return rc;
        if ((l->flags & AS_TOPT_RUN_WINS) || !(o->given & (1u << i)))
            as_train_option_set(o, i, v, label, NULL);
    }
    rs->base_lr = o->lr;
    const AsPValue *p = as_pv_get(d, "pairing");
    AsPairing pairing;
    if (!p || p->kind != AS_PV_STR || !as_pairing_parse(p->s, &pairing))
        return as_error_set(err, AS_ERR_FORMAT,
                            "%s: run state pairing is not \"reference\" or \"same-image\"", path);
    if (!(o->given & AS_TRAIN_GIVEN_PAIRING))
        o->pairing = pairing;
    return 0;
}
