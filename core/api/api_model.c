/* api_model: alignseg/alignseg.h, the version, threads and models. */
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "pool.h"

#ifndef ALIGNSEG_VERSION
#define ALIGNSEG_VERSION "unknown"
#endif

const char *alignseg_version(void)
{
    return ALIGNSEG_VERSION;
}

const char *alignseg_status_name(AsStatus code)
{
    return as_status_name(code);
}

void alignseg_set_threads(int threads)
{
    as_pool_set_threads(threads < 0 ? 0 : threads);
}

void alignseg_model_options_init(AlignsegModelOptions *o)
{
    if (o)
        memset(o, 0, sizeof *o);
}

static int wrap(AsModel *m, AlignsegModel **out, AsError *err)
{
    AlignsegModel *w = calloc(1, sizeof *w);
    if (!w) {
        as_model_free(m);
        return as_error_set(err, AS_ERR_NOMEM, "out of memory");
    }
    w->m = m;
    *out = w;
    return 0;
}

int alignseg_model_load(const char *model_path, const char *backbone_path,
                        const AlignsegModelOptions *o, AlignsegModel **out, AsError *err)
{
    if (!out)
        return as_error_set(err, AS_ERR_ARG, "alignseg_model_load: out is NULL");
    *out = NULL;
    if (!model_path)
        return as_error_set(err, AS_ERR_ARG, "alignseg_model_load: no model file");
    if (o && (o->encoder_heads < 0 || o->decoder_heads < 0))
        return as_error_set(err, AS_ERR_ARG, "alignseg_model_load: negative head count");
    AsModelOptions mo = { 0 };
    if (o) {
        mo.encoder_heads = o->encoder_heads;
        mo.decoder_heads = o->decoder_heads;
    }
    AsModel *m = NULL;
    int rc = as_model_load(model_path, backbone_path, &mo, &m, err);
    if (rc)
        return rc;
    return wrap(m, out, err);
}

int alignseg_model_random(int patch, uint64_t seed, AlignsegModel **out, AsError *err)
{
    if (!out)
        return as_error_set(err, AS_ERR_ARG, "alignseg_model_random: out is NULL");
    *out = NULL;
    AsModel *m = NULL;
    int rc = as_model_random(AS_ARCH_VIT_SMALL, patch, 5, 1, seed, &m, err);
    if (rc)
        return rc;
    return wrap(m, out, err);
}

void alignseg_model_info(const AlignsegModel *w, AlignsegModelInfo *info)
{
    if (!info)
        return;
    memset(info, 0, sizeof *info);
    if (!w || !w->m)
        return;
    const AsModel *m = w->m;
    info->dim = m->enc.cfg.dim;
    info->depth = m->enc.cfg.depth;
    info->heads = m->enc.cfg.heads;
    info->patch = m->enc.cfg.patch;
    info->prototypes = m->has_decoder ? m->dec.cfg.queries : 0;
    info->backbone_only = !m->has_decoder;
    info->untrained = m->untrained;
    info->source = m->source ? m->source : "";
}

void alignseg_model_free(AlignsegModel *w)
{
    if (!w)
        return;
    as_model_free(w->m);
    free(w);
}
