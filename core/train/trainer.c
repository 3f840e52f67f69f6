/* trainer: see trainer.h */
#include "trainer.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

double as_train_clock(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void as_train_hyper_default(AsTrainHyper *h)
{
    h->lr = 5e-4;
    h->beta1 = 0.9;
    h->beta2 = 0.999;
    h->eps = 1e-8;
    h->weight_decay = 0.04;
    h->negative_pressure = 0.11f;
    h->corr_coef = 0.15f;
    h->temperature = 1.0f;
}

double as_train_lr_at_epoch(double base_lr, int epoch, int step_size, double gamma)
{
    if (step_size <= 0 || epoch <= 0)
        return base_lr;
    return base_lr * pow(gamma, (double)(epoch / step_size));
}

/* ------------------------------------------------------------------------ */
/* parameter table */

int as_trainer_init(AsTrainer *t, AsDecoder *dec, const AsTrainHyper *h, AsError *err)
{
    memset(t, 0, sizeof *t);
    t->dec = dec;
    /* the weights will change: the decoder's packed copies would go stale */
    for (int j = 0; j < dec->cfg.layers; j++)
        dec->layers[j].cross_kv_packed = NULL;
    if (h)
        t->hyper = *h;
    else
        as_train_hyper_default(&t->hyper);
    const AsDecoderConfig *c = &dec->cfg;
    const int D = c->dim, L = c->layers;
    if (D <= 0 || c->queries <= 0 || c->hidden <= 0 || L <= 0 || c->heads <= 0 ||
        D % c->heads)
        return as_error_set(err, AS_ERR_ARG,
                            "decoder: cannot train D=%d Q=%d H=%d layers=%d heads=%d", D,
                            c->queries, c->hidden, L, c->heads);
    if (c->chain_layers)
        return as_error_set(err, AS_ERR_UNSUPPORTED,
                            "decoder: training chained decoder layers is not supported (the "
                            "reference feeds the prototypes to every layer)");
    t->nparams = as_decoder_param_count(L);
    t->params = calloc((size_t)t->nparams, sizeof *t->params);
    if (!t->params)
        return as_error_set(err, AS_ERR_NOMEM, "trainer: out of memory");
    /* Only the last layer's output is used (every layer reads Q0), so only
     * it and the prototypes receive gradients. */
    long off = 0;
    for (int k = 0; k < t->nparams; k++) {
        AsParam *p = &t->params[k];
        AsDecoderParamId id;
        int layer;
        as_decoder_param_at(k, L, &id, &layer);
        as_decoder_param_name(id, layer, p->name, sizeof p->name);
        p->slot = as_decoder_param_slot(dec, id, layer);
        p->orig = p->data = *p->slot;
        p->ndim = as_decoder_param_shape(id, D, c->queries, c->hidden, p->shape);
        p->numel = (long)(p->shape[0] * p->shape[1]);
        p->group = as_decoder_param_table[id].group;
        if (!p->data) {
            as_trainer_free(t);
            return as_error_set(err, AS_ERR_ARG, "decoder: parameter %s has no data", p->name);
        }
        p->trained = id == AS_DP_QUERIES || layer == L - 1;
        p->off = off;
        off += p->numel;
    }
    t->total = off;
    AsParam *P = t->params;
    /* optimizer indices: group 0, then 1, then 2, each in parameter order */
    int oi = 0;
    for (int g = 0; g < 3; g++)
        for (int k = 0; k < t->nparams; k++)
            if (P[k].group == g)
                P[k].opt_index = oi++;
    /* the parameters move into memory of our own (a loaded checkpoint may be
     * a read-only mapping) */
    t->weights = malloc((size_t)off * sizeof(float));
    if (!t->weights) {
        as_trainer_free(t);
        return as_error_set(err, AS_ERR_NOMEM, "trainer: out of memory (%ld parameters)", off);
    }
    for (int k = 0; k < t->nparams; k++) {
        AsParam *p = &P[k];
        memcpy(t->weights + p->off, p->orig, (size_t)p->numel * sizeof(float));
        p->data = t->weights + p->off;
        *p->slot = p->data;
    }
    t->grad = calloc((size_t)off, sizeof(float));
    t->exp_avg = calloc((size_t)off, sizeof(float));
    t->exp_avg_sq = calloc((size_t)off, sizeof(float));
    if (!t->grad || !t->exp_avg || !t->exp_avg_sq) {
        as_trainer_free(t);
        return as_error_set(err, AS_ERR_NOMEM, "trainer: out of memory (%ld parameters)", off);
    }
    return 0;
}

AsParam *as_trainer_find(AsTrainer *t, const char *name)
{
    for (int k = 0; k < t->nparams; k++)
        if (!strcmp(t->params[k].name, name))
            return &t->params[k];
    return NULL;
}

void as_train_adamw_step(AsTrainer *t)
{
    double t0 = as_train_clock();
    const AsTrainHyper *h = &t->hyper;
    for (int k = 0; k < t->nparams; k++) {
        AsParam *p = &t->params[k];
        if (!p->trained)
            continue;
        p->step += 1.0;
        double wd = p->group == AS_GROUP_DECAY ? h->weight_decay : 0.0;
        float decay = (float)(1.0 - h->lr * wd);
        double bc1 = 1.0 - pow(h->beta1, p->step);
        double bc2 = 1.0 - pow(h->beta2, p->step);
        float step_size = (float)(h->lr / bc1);
        float bc2_sqrt = (float)sqrt(bc2);
        float b1 = (float)h->beta1, b2 = (float)h->beta2, eps = (float)h->eps;
        float *w = p->data, *g = t->grad + p->off;
        float *m = t->exp_avg + p->off, *v = t->exp_avg_sq + p->off;
        for (long i = 0; i < p->numel; i++) {
            w[i] *= decay;
            m[i] = m[i] * b1 + g[i] * (1.0f - b1);
            v[i] = v[i] * b2 + g[i] * g[i] * (1.0f - b2);
            float denom = sqrtf(v[i]) / bc2_sqrt + eps;
            w[i] -= step_size * m[i] / denom;
        }
    }
    t->time_optim += as_train_clock() - t0;
}

void as_trainer_free(AsTrainer *t)
{
    if (!t)
        return;
    for (int k = 0; t->params && k < t->nparams; k++)
        if (t->params[k].slot && t->params[k].orig)
            *t->params[k].slot = t->params[k].orig;
    free(t->weights);
    free(t->params);
    free(t->grad);
    free(t->exp_avg);
    free(t->exp_avg_sq);
    free(t->queries);
    as_train_cache_free(t->cache);
    memset(t, 0, sizeof *t);
}


/* index of the first non-finite value of a[0..n), or -1 */
static long first_non_finite(const float *a, long n)
{
    for (long i = 0; i < n; i++)
        if (!isfinite(a[i]))
            return i;
    return -1;
}

int as_trainer_check_finite(const AsTrainer *t, const char *what, AsError *err)
{
    static const char *const names[4] = { "weight", "gradient", "AdamW exp_avg",
                                          "AdamW exp_avg_sq" };
    for (int k = 0; k < t->nparams; k++) {
        const AsParam *p = &t->params[k];
        const float *arrays[4] = { p->data, t->grad + p->off, t->exp_avg + p->off,
                                   t->exp_avg_sq + p->off };
        for (int a = 0; a < 4; a++) {
            long i = first_non_finite(arrays[a], p->numel);
            if (i >= 0)
                return as_error_set(err, AS_ERR_FORMAT, "%s: %s %s[%ld] is %g", what, names[a],
                                    p->name, i, (double)arrays[a][i]);
        }
        if (!isfinite(p->step) || p->step < 0)
            return as_error_set(err, AS_ERR_FORMAT, "%s: AdamW step of %s is %g", what,
                                p->name, p->step);
    }
    return 0;
}
