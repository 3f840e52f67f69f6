/* train_ckpt: see train_ckpt.h */
#include "train_ckpt.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pth.h"

/* ------------------------------------------------------------------------ */
/* checkpoints */

#define PV_SET(dict, key, val)                                                   \
    do {                                                                         \
        if (!rc)                                                                 \
            rc = as_pv_dict_set_str((dict), (key), (val), err);                  \
        else                                                                     \
            as_pv_free(val);                                                     \
    } while (0)

static AsPValue *param_group(const AsTrainer *t, int g, bool with_initial_lr,
                             double initial_lr, AsError *err)
{
    const AsTrainHyper *h = &t->hyper;
    AsPValue *d = as_pv_dict(false);
    if (!d) {
        as_error_set(err, AS_ERR_NOMEM, "out of memory");
        return NULL;
    }
    int rc = 0;
    PV_SET(d, "weight_decay", as_pv_float(g == AS_GROUP_DECAY ? h->weight_decay : 0.0));
    PV_SET(d, "lr", as_pv_float(h->lr));
    AsPValue *betas = as_pv_tuple();
    if (betas && as_pv_append(betas, as_pv_float(h->beta1), err) == 0 &&
        as_pv_append(betas, as_pv_float(h->beta2), err) == 0)
        PV_SET(d, "betas", betas);
    else {
        as_pv_free(betas);
        rc = rc ? rc : AS_ERR_NOMEM;
    }
    PV_SET(d, "eps", as_pv_float(h->eps));
    PV_SET(d, "amsgrad", as_pv_bool(false));
    PV_SET(d, "foreach", as_pv_none());
    PV_SET(d, "maximize", as_pv_bool(false));
    PV_SET(d, "capturable", as_pv_bool(false));
    if (with_initial_lr)
        PV_SET(d, "initial_lr", as_pv_float(initial_lr));
    AsPValue *plist = as_pv_list();
    for (int k = 0; plist && k < t->nparams && !rc; k++)
        if (t->params[k].group == g)
            rc = as_pv_append(plist, as_pv_int(t->params[k].opt_index), err);
    if (!plist)
        rc = rc ? rc : AS_ERR_NOMEM;
    PV_SET(d, "params", plist);
    if (rc) {
        as_pv_free(d);
        if (err && !err->code)
            as_error_set(err, AS_ERR_NOMEM, "out of memory");
        return NULL;
    }
    return d;
}

int as_train_save(const char *path, const AsModel *m, const AsTrainer *t, int64_t epoch,
                  const char *net, bool with_initial_lr, double initial_lr, AsPValue *extra,
                  AsError *err)
{
    int rc = 0;
    AsPValue *root = as_pv_dict(false);
    AsPValue *sd = as_pv_dict(true);
    AsPValue *opt = as_pv_dict(false);
    AsPValue *state = as_pv_dict(false);
    AsPValue *groups = as_pv_list();
    float *steps = malloc(sizeof(float) * (size_t)(t->nparams > 0 ? t->nparams : 1));
    if (!root || !sd || !opt || !state || !groups || !steps) {
        rc = as_error_set(err, AS_ERR_NOMEM, "%s: out of memory", path);
        goto done;
    }
    /* state dict: encoder under backbone., then the decoder in parameter order */
    char nm[320];
    for (size_t i = 0; i < m->weights.count && !rc; i++) {
        const AsTensor *tt = &m->weights.items[i];
        if (!tt->data || !as_is_encoder_key(tt->name))
            continue;
        snprintf(nm, sizeof nm, "backbone.%s", tt->name);
        AsPValue *tv = as_pv_tensor_f32(tt->ndim, tt->shape, tt->data, false);
        if (!tv)
            rc = as_error_set(err, AS_ERR_NOMEM, "out of memory");
        else
            rc = as_pv_dict_set_str(sd, nm, tv, err);
    }
    for (int k = 0; k < t->nparams && !rc; k++) {
        const AsParam *p = &t->params[k];
        AsPValue *tv = as_pv_tensor_f32(p->ndim, p->shape, p->data, false);
        if (!tv)
            rc = as_error_set(err, AS_ERR_NOMEM, "out of memory");
        else
            rc = as_pv_dict_set_str(sd, p->name, tv, err);
    }
    /* optimizer: state in index order, then the three groups */
    for (int oi = 0; oi < t->nparams && !rc; oi++) {
        const AsParam *p = NULL;
        for (int k = 0; k < t->nparams; k++)
            if (t->params[k].opt_index == oi)
                p = &t->params[k];
        if (!p || p->step <= 0.0)
            continue;
        steps[oi] = (float)p->step;
        AsPValue *st = as_pv_dict(false);
        if (!st) {
            rc = as_error_set(err, AS_ERR_NOMEM, "out of memory");
            break;
        }
        PV_SET(st, "step", as_pv_tensor_f32(0, NULL, &steps[oi], false));
        PV_SET(st, "exp_avg", as_pv_tensor_f32(p->ndim, p->shape, t->exp_avg + p->off, false));
        PV_SET(st, "exp_avg_sq",
               as_pv_tensor_f32(p->ndim, p->shape, t->exp_avg_sq + p->off, false));
        if (rc)
            as_pv_free(st);
        else
            rc = as_pv_dict_set_int(state, oi, st, err);
    }
    for (int g = 0; g < 3 && !rc; g++) {
        AsPValue *gv = param_group(t, g, with_initial_lr, initial_lr, err);
        rc = gv ? as_pv_append(groups, gv, err) : AS_ERR_NOMEM;
    }
    if (rc)
        goto done;
    rc = as_pv_dict_set_str(opt, "state", state, err);
    state = NULL;
    if (!rc)
        rc = as_pv_dict_set_str(opt, "param_groups", groups, err);
    groups = NULL;
    PV_SET(root, "epoch", as_pv_int(epoch));
    PV_SET(root, "net", as_pv_str(net ? net : "vit_small"));
    if (!rc)
        rc = as_pv_dict_set_str(root, "state_dict", sd, err);
    sd = NULL;
    if (!rc)
        rc = as_pv_dict_set_str(root, "optimizer", opt, err);
    opt = NULL;
    for (size_t i = 0; extra && i < extra->count && !rc; i++) {
        rc = as_pv_dict_set(root, extra->keys[i], extra->items[i], err);
        extra->keys[i] = extra->items[i] = NULL;
    }
    if (!rc)
        rc = as_pth_write(path, NULL, root, err);
done:
    as_pv_free(root);
    as_pv_free(sd);
    as_pv_free(opt);
    as_pv_free(state);
    as_pv_free(groups);
    as_pv_free(extra);
    free(steps);
    return rc;
}

int as_train_load_optimizer(AsTrainer *t, const AsPValue *opt, const char *what,
                            AsError *err)
{
    if (!opt || opt->kind != AS_PV_DICT)
        return as_error_set(err, AS_ERR_FORMAT, "%s: no optimizer state (a dict) found", what);
    const AsPValue *state = as_pv_get(opt, "state");
    const AsPValue *groups = as_pv_get(opt, "param_groups");
    if (!state || state->kind != AS_PV_DICT || !groups || groups->kind != AS_PV_LIST)
        return as_error_set(err, AS_ERR_FORMAT,
                            "%s: optimizer lacks 'state' (dict) or 'param_groups' (list)", what);
    if (groups->count != 3)
        return as_error_set(err, AS_ERR_FORMAT,
                            "%s: optimizer has %zu parameter groups, expected 3", what,
                            groups->count);
    for (int g = 0; g < 3; g++) {
        const AsPValue *pl = as_pv_get(groups->items[g], "params");
        int expect = 0;
        for (int k = 0; k < t->nparams; k++)
            expect += t->params[k].group == g;
        if (!pl || pl->kind != AS_PV_LIST || (int)pl->count != expect)
            return as_error_set(err, AS_ERR_FORMAT,
                                "%s: optimizer group %d has %zu parameters, expected %d", what,
                                g, pl && pl->kind == AS_PV_LIST ? pl->count : 0, expect);
    }
    double lr;
    if (as_pv_number(as_pv_get(groups->items[0], "lr"), &lr) && lr > 0.0 && lr < 10.0)
        t->hyper.lr = lr;
    for (int k = 0; k < t->nparams; k++) {
        AsParam *p = &t->params[k];
        const AsPValue *st = as_pv_get_int(state, p->opt_index);
        p->step = 0.0;
        memset(t->exp_avg + p->off, 0, (size_t)p->numel * sizeof(float));
        memset(t->exp_avg_sq + p->off, 0, (size_t)p->numel * sizeof(float));
        if (!st)
            continue;
        double step;
        const AsPValue *ea = as_pv_get(st, "exp_avg"), *es = as_pv_get(st, "exp_avg_sq");
        if (!as_pv_number(as_pv_get(st, "step"), &step) || step < 0 || step > 1e12 || !ea ||
            !es || ea->kind != AS_PV_TENSOR || es->kind != AS_PV_TENSOR || !ea->t->f32 ||
            !es->t->f32)
            return as_error_set(err, AS_ERR_FORMAT,
                                "%s: optimizer state %d (%s) lacks step / exp_avg / exp_avg_sq",
                                what, p->opt_index, p->name);
        if (ea->t->numel != p->numel || es->t->numel != p->numel)
            return as_error_set(err, AS_ERR_SHAPE,
                                "%s: optimizer state %d (%s) has %lld values, the parameter %ld",
                                what, p->opt_index, p->name, (long long)ea->t->numel,
                                p->numel);
        p->step = step;
        memcpy(t->exp_avg + p->off, ea->t->f32, (size_t)p->numel * sizeof(float));
        memcpy(t->exp_avg_sq + p->off, es->t->f32, (size_t)p->numel * sizeof(float));
    }
    return 0;
}

