/* train_run: see train_run.h */
#include "train_run.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "checkpoint.h"
#include "pool.h"
#include "crops.h"
#include "kmeans.h"
#include "pth.h"
#include "run_state.h"
#include "train_ckpt.h"
#include "vit.h"

#define MIN_INTERSECTION 0.05 /* of a local crop with the global crop (METHOD.md 5) */

/* ---- reporting ---- */

typedef struct {
    const AsTrainEvents *ev;
    bool writer; /* rank 0: writes files, reports */
    bool split;  /* data parallel: each rank crops and encodes its share */
    int rank, world;
    int *bounds; /* world + 1 */
} Run;

void as_train_share_bounds(int B, int nb, int world, int *bounds)
{
    for (int r = 0; r <= world; r++) {
        const int b = (int)((long)B * r / world);
        bounds[r] = b < nb ? b : nb;
    }
}

static void note(const Run *r, const char *fmt, ...) AS_PRINTF(2, 3);
static void note(const Run *r, const char *fmt, ...)
{
    if (!r->writer || !r->ev || !r->ev->note)
        return;
    char line[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    r->ev->note(r->ev->user, line);
}

/* ---- the image folder ---- */

typedef struct {
    char **paths;
    int count;
    bool *bad; /* reported once, then skipped */
    int nbad;
} ImageList;

static bool has_image_ext(const char *name)
{
    const char *dot = strrchr(name, '.');
    if (!dot)
        return false;
    char ext[8] = { 0 };
    for (int i = 0; i < 7 && dot[1 + i]; i++)
        ext[i] = (char)tolower((unsigned char)dot[1 + i]);
    return !strcmp(ext, "jpg") || !strcmp(ext, "jpeg") || !strcmp(ext, "png");
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void free_images(ImageList *l)
{
    for (int i = 0; i < l->count; i++)
        free(l->paths[i]);
    free(l->paths);
    free(l->bad);
    memset(l, 0, sizeof *l);
}

static int list_images(const char *dir, ImageList *l, AsError *err)
{
    memset(l, 0, sizeof *l);
    DIR *d = opendir(dir);
    if (!d)
        return as_error_set(err, AS_ERR_IO, "cannot open the image folder %s: %s", dir,
                            strerror(errno));
    int cap = 0, rc = 0;
    struct dirent *e;
    while (!rc && (e = readdir(d))) {
        if (e->d_name[0] == '.' || !has_image_ext(e->d_name))
            continue;
        char *p = NULL;
        if (asprintf(&p, "%s/%s", dir, e->d_name) < 0) {
            rc = as_error_set(err, AS_ERR_NOMEM, "out of memory listing %s", dir);
            break;
        }
        struct stat st;
        if (stat(p, &st) || !S_ISREG(st.st_mode)) {
            free(p);
            continue;
        }
        if (l->count == cap) {
            cap = cap ? 2 * cap : 256;
            char **np = realloc(l->paths, (size_t)cap * sizeof *np);
            if (!np) {
                free(p);
                rc = as_error_set(err, AS_ERR_NOMEM, "out of memory listing %s", dir);
                break;
            }
            l->paths = np;
        }
        l->paths[l->count++] = p;
    }
    closedir(d);
    if (!rc && !l->count)
        rc = as_error_set(err, AS_ERR_ARG, "no .jpg/.jpeg/.png images in %s", dir);
    if (!rc) {
        qsort(l->paths, (size_t)l->count, sizeof *l->paths, cmp_str);
        l->bad = calloc((size_t)l->count, 1);
        if (!l->bad)
            rc = as_error_set(err, AS_ERR_NOMEM, "out of memory listing %s", dir);
    }
    if (rc)
        free_images(l);
    return rc;
}

/* One batch being gathered, perhaps on the producer thread while the
 * previous batch trains: its crops, the image cursor and crop sampler before
 * and after it, and what gathering found (images to mark unreadable,
 * messages), which the main thread applies when it takes the batch. The
 * gatherer only reads the image list, whose marks the main thread changes
 * only between gatherings. */
typedef struct {
    const Run *r;
    const AsTrainOptions *o;
    ImageList *imgs;
    const int *order;
    int cursor, cursor_after;
    AsRng rng, rng_after;
    float *crops;   /* (ncrops, B, 3, S, S) */
    int *bounds;    /* world + 1: the rank split while cropping */
    int nb;         /* images gathered; -1: a crop failed in a split run (err) */
    AsError err;
    int *bad;       /* images found unreadable, nbad of them */
    int nbad;
    char *notes;    /* messages, one per line */
    size_t notes_len, notes_cap;
} Batch;

static void batch_note(Batch *b, const char *fmt, ...) AS_PRINTF(2, 3);
static void batch_note(Batch *b, const char *fmt, ...)
{
    char line[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    const size_t len = strlen(line);
    if (b->notes_len + len + 2 > b->notes_cap) {
        const size_t cap = (b->notes_len + len + 2) * 2;
        char *n = realloc(b->notes, cap);
        if (!n)
            return; /* out of memory: the message is dropped, the mark kept */
        b->notes = n;
        b->notes_cap = cap;
    }
    memcpy(b->notes + b->notes_len, line, len);
    b->notes_len += len;
    b->notes[b->notes_len++] = '\n';
    b->notes[b->notes_len] = 0;
}

/* Image i, or false after reporting it (once) as unreadable: now, or, with
 * defer, when the main thread takes the batch. */
static bool load_image(const Run *r, ImageList *l, int i, AsImage *img, Batch *defer)
{
    AsError e = { 0 };
    if (l->bad[i])
        return false;
    if (as_image_load(l->paths[i], img, &e) == 0)
        return true;
    const bool named = strstr(e.msg, l->paths[i]) != NULL;
    if (defer) {
        batch_note(defer, "skipping %s%s%s", named ? "" : l->paths[i], named ? "" : ": ", e.msg);
        defer->bad[defer->nbad++] = i;
        return false;
    }
    note(r, "skipping %s%s%s", named ? "" : l->paths[i], named ? "" : ": ", e.msg);
    l->bad[i] = true;
    l->nbad++;
    return false;
}

/* ---- the model ---- */

/* The encoder of a random ViT (benchmarks without weights) into map. */
static int random_encoder(const AsTrainOptions *o, AsTensorMap *map, AsError *err)
{
    static const struct { const char *name; AsArch arch; int patch; } archs[] = {
        { "vit_small16", AS_ARCH_VIT_SMALL, 16 }, { "vit_small8", AS_ARCH_VIT_SMALL, 8 },
        { "vit_base16", AS_ARCH_VIT_BASE, 16 }, { "vit_base8", AS_ARCH_VIT_BASE, 8 },
    };
    int k = -1;
    for (int i = 0; i < 4; i++)
        if (!strcmp(o->random_arch, archs[i].name))
            k = i;
    if (k < 0)
        return as_error_set(err, AS_ERR_ARG, "random backbone '%s' is not vit_small16, "
                            "vit_small8, vit_base16 or vit_base8", o->random_arch);
    AsModel *rm = NULL;
    int rc = as_model_random(archs[k].arch, archs[k].patch, o->queries, 1, o->seed, &rm, err);
    for (size_t i = 0; !rc && i < rm->weights.count; i++) {
        const AsTensor *tt = &rm->weights.items[i];
        if (!tt->data || as_is_decoder_key(tt->name))
            continue;
        float *d = malloc((size_t)tt->numel * sizeof(float));
        if (!d) {
            rc = as_error_set(err, AS_ERR_NOMEM, "out of memory for %s", tt->name);
            break;
        }
        memcpy(d, tt->data, (size_t)tt->numel * sizeof(float));
        rc = as_tmap_add(map, tt->name, tt->ndim, tt->shape, d, false, err);
    }
    as_model_free(rm);
    return rc;
}

/* Backbone + a freshly initialised decoder. */
static int fresh_model(const AsTrainOptions *o, AsModel **out, AsError *err)
{
    AsTensorMap map;
    as_tmap_init(&map);
    const char *src = o->backbone ? o->backbone : o->random_arch;
    int rc = o->random_arch ? random_encoder(o, &map, err)
                            : as_checkpoint_load(o->backbone, &map, err);
    /* a backbone must not bring its own decoder: drop any */
    for (size_t i = 0; !rc && i < map.count;) {
        if (as_is_decoder_key(map.items[i].name)) {
            char name[256];
            snprintf(name, sizeof name, "%s", map.items[i].name);
            as_tmap_remove(&map, name);
        } else {
            i++;
        }
    }
    const AsTensor *pe = rc ? NULL : as_tmap_find(&map, "patch_embed.proj.weight");
    if (!rc && (!pe || pe->ndim != 4 || pe->shape[0] < 1 || pe->shape[0] > 65536))
        rc = as_error_set(err, AS_ERR_FORMAT, "%s: not a DINO backbone (no "
                          "patch_embed.proj.weight of shape (D, 3, p, p))", src);
    AsRng rng;
    as_rng_seed2(&rng, o->seed, 0x1417);
    if (!rc)
        rc = as_decoder_init_tensors(&map, (int)pe->shape[0], o->queries, o->hidden, o->layers,
                                     NULL, &rng, err);
    if (rc) {
        as_tmap_free(&map);
        return rc;
    }
    AsModelOptions mo = { o->encoder_heads, o->decoder_heads, false };
    rc = as_model_from_tensors(&map, &mo, out, err);
    if (rc)
        as_error_prefix(err, "%s: the backbone does not fit: ", src);
    return rc;
}

/* Prototypes = spherical k-means centres of the patch tokens of the first
 * images (whole image resized to the crop size). */
static int kmeans_prototypes(const Run *r, const AsTrainOptions *o, const AsHooks *hooks,
                             AsModel *m, ImageList *imgs, AsError *err)
{
    const int S = o->crop_size, p = m->enc.cfg.patch, D = m->enc.cfg.dim;
    const int n = (S / p) * (S / p), Q = m->dec.cfg.queries;
    const int want = imgs->count < o->kmeans_images ? imgs->count : o->kmeans_images;
    float *tok = malloc((size_t)want * n * D * sizeof(float));
    float *in = malloc((size_t)3 * S * S * sizeof(float));
    AsVitWorkspace ws;
    as_vit_workspace_init(&ws);
    int got = 0, k = 0, rc = 0;
    if (!tok || !in)
        rc = as_error_set(err, AS_ERR_NOMEM, "out of memory for the tokens of %d images", want);
    else
        note(r, "k-means prototypes from the tokens of %d images...", want);
    for (int i = 0; !rc && i < imgs->count && got < want; i++) {
        if (as_hooks_cancelled(hooks))
            rc = as_error_set(err, AS_ERR_CANCELLED, "cancelled during the k-means prototypes");
        AsImage img = { 0, 0, NULL };
        if (rc || !load_image(r, imgs, i, &img, NULL))
            continue;
        AsBox all = { 0, 0, img.w, img.h };
        AsError e = { 0 };
        int bad = as_crop_normalized(&img, &all, S, in, &e) ||
                  as_vit_forward(&m->enc, in, S, S, &ws, NULL, &e);
        as_image_free(&img);
        if (bad) {
            note(r, "%s: %s", imgs->paths[i], e.msg);
            continue;
        }
        memcpy(tok + (size_t)got * n * D, ws.tokens, (size_t)n * D * sizeof(float));
        got++;
    }
    if (!rc && got == 0)
        rc = as_error_set(err, AS_ERR_ARG, "k-means prototypes: no readable image");
    if (!rc && (rc = as_spherical_kmeans(tok, got * n, D, Q, AS_KMEANS_MAX_ITER, m->dec.queries,
                                         NULL, &k, err)))
        as_error_prefix(err, "k-means prototypes: ");
    if (!rc && k < Q)
        rc = as_error_set(err, AS_ERR_ARG, "only %d distinct k-means centres for %d prototypes",
                          k, Q);
    as_vit_workspace_free(&ws);
    free(tok);
    free(in);
    return rc;
}

/* The model, the trainer and the run state of a fresh or resumed run. */
static int setup(const Run *r, AsTrainOptions *o, const AsHooks *hooks, ImageList *imgs,
                 AsModel **m, AsTrainer *t, AsTrainState *rs, AsError *err)
{
    AsPth pth;
    memset(&pth, 0, sizeof pth);
    int rc = 0;
    if (o->resume) {
        char warn[512];
        rc = as_pth_read(o->resume, &pth, AS_PTH_BORROW, err);
        if (!rc)
            rc = as_train_state_restore(o, rs, pth.root, imgs->count, o->resume, warn,
                                        sizeof warn, err);
        if (!rc && warn[0])
            note(r, "warning: %s", warn);
        AsModelOptions mo = { o->encoder_heads, o->decoder_heads, false };
        if (!rc)
            rc = as_model_load(o->resume, o->backbone, &mo, m, err);
        if (!rc && !(*m)->has_decoder)
            rc = as_error_set(err, AS_ERR_FORMAT, "%s holds no decoder to continue training",
                              o->resume);
    } else {
        rc = fresh_model(o, m, err);
        rs->base_lr = o->lr;
        as_rng_seed2(&rs->crop_rng, o->seed, 0xc20b);
    }
    if (!rc && o->crop_size % (*m)->enc.cfg.patch)
        rc = as_error_set(err, AS_ERR_ARG, "crop size %d is not a multiple of the patch size %d",
                          o->crop_size, (*m)->enc.cfg.patch);
    as_pool_set_threads(o->threads); /* the run's thread count from here on */
    if (!rc && !o->resume && o->kmeans)
        rc = kmeans_prototypes(r, o, hooks, *m, imgs, err);
    AsTrainHyper hyper;
    as_train_hyper_default(&hyper);
    hyper.lr = o->lr;
    hyper.weight_decay = o->weight_decay;
    hyper.negative_pressure = (float)o->negative_pressure;
    if (!rc)
        rc = as_trainer_init(t, &(*m)->dec, &hyper, err);
    if (!rc && o->resume) {
        const AsPValue *opt = as_pv_get(pth.root, "optimizer");
        if (opt)
            rc = as_train_load_optimizer(t, opt, o->resume, err);
        t->hyper.weight_decay = o->weight_decay;
        if (!rc)
            rc = as_trainer_check_finite(t, o->resume, err);
    }
    as_pth_free(&pth);
    return rc;
}

/* RUNDIR/name with the model, optimizer and run state. */
static int save(const AsTrainOptions *o, const AsModel *m, const AsTrainer *t,
                const AsTrainState *rs, int nimages, const char *name, int64_t epoch_field,
                AsError *err)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", o->rundir, name);
    AsPValue *extra = as_pv_dict(false);
    AsPValue *st = as_train_state_value(o, rs, nimages);
    if (!extra || !st || as_pv_dict_set_str(extra, AS_TRAIN_STATE_KEY, st, err)) {
        if (!extra)
            as_pv_free(st);
        as_pv_free(extra);
        return as_error_set(err, AS_ERR_NOMEM, "out of memory writing %s", path);
    }
    const char *net = m->enc.cfg.dim >= 768 ? "vit_base" : "vit_small";
    return as_train_save(path, m, t, epoch_field, net, true, rs->base_lr, extra, err);
}

/* ---- the run ---- */

/* Up to B readable images of the epoch's order from b->cursor on, cropped
 * into b->crops (ncrops, B, 3, S, S), the crop kinds packed for the images
 * found; b->nb their number. Touches nothing outside b but reads the image
 * list. */
static void gather(Batch *b)
{
    const Run *r = b->r;
    const AsTrainOptions *o = b->o;
    const ImageList *imgs = b->imgs;
    const int B = o->batch, nc = 1 + o->local_crops, S = o->crop_size;
    const size_t crop_floats = (size_t)3 * S * S;
    float *crops = b->crops;
    int cursor = b->cursor;
    AsRng rng = b->rng;
    b->nbad = 0;
    b->notes_len = 0;
    if (b->notes)
        b->notes[0] = 0;
    memset(&b->err, 0, sizeof b->err);
    int nb = 0;
    while (nb < B && cursor < imgs->count) {
        int idx = b->order[cursor++];
        AsImage img = { 0, 0, NULL };
        if (!load_image(r, b->imgs, idx, &img, b))
            continue;
        AsBox boxes[17];
        as_sample_multicrop(&rng, img.w, img.h, nc - 1, MIN_INTERSECTION, boxes);
        int rc = 0;
        if (r->split) { /* only this rank's positions of the full batch are cropped */
            as_train_share_bounds(B, B, r->world, b->bounds);
            const bool mine = nb >= b->bounds[r->rank] && nb < b->bounds[r->rank + 1];
            for (int c = 0; c < nc && !rc && mine; c++)
                rc = as_crop_normalized(&img, &boxes[c], S,
                                        crops + ((size_t)c * B + nb) * crop_floats, &b->err);
            as_image_free(&img);
            if (rc) { /* the other ranks cannot know: no skipping here */
                b->nb = -1;
                b->cursor_after = cursor;
                b->rng_after = rng;
                return;
            }
            nb++;
            continue;
        }
        for (int c = 0; c < nc && !rc; c++)
            rc = as_crop_normalized(&img, &boxes[c], S,
                                    crops + ((size_t)c * B + nb) * crop_floats, &b->err);
        as_image_free(&img);
        if (rc) {
            batch_note(b, "skipping %s: %s", imgs->paths[idx], b->err.msg);
            b->bad[b->nbad++] = idx;
            continue;
        }
        nb++;
    }
    if (nb && nb < B) /* a short last batch: close the gaps between crop kinds */
        for (int c = 1; c < nc; c++)
            memmove(crops + (size_t)c * nb * crop_floats, crops + (size_t)c * B * crop_floats,
                    (size_t)nb * crop_floats * sizeof(float));
    b->nb = nb;
    b->cursor_after = cursor;
    b->rng_after = rng;
}

static void *gather_thread(void *arg)
{
    gather(arg);
    return NULL;
}

/* The main thread takes a gathered batch: its marks and messages. */
static void batch_apply(const Run *r, ImageList *imgs, Batch *b)
{
    for (int i = 0; i < b->nbad; i++)
        if (!imgs->bad[b->bad[i]]) {
            imgs->bad[b->bad[i]] = true;
            imgs->nbad++;
        }
    for (char *line = b->notes; line && *line;) {
        char *end = strchr(line, '\n');
        if (end)
            *end = 0;
        note(r, "%s", line);
        line = end ? end + 1 : line + strlen(line);
    }
    b->nbad = 0;
    b->notes_len = 0;
}

static void batch_free(Batch *b)
{
    free(b->crops);
    free(b->bounds);
    free(b->bad);
    free(b->notes);
    memset(b, 0, sizeof *b);
}

/* One step on nb gathered images: encoder, cached step, the data-parallel
 * reduction, the finite check, AdamW. */
static int train_step(const Run *r, const AsTrainOptions *o, const AsHooks *hooks, AsModel *m,
                      AsTrainer *t, AsTrainCrops *tc, const float *crops, int nb,
                      AsTrainLosses *L, AsError *err)
{
    if (r->split) {
        as_train_share_bounds(o->batch, nb, r->world, r->bounds);
        tc->rank = r->rank;
        tc->world = r->world;
        tc->bounds = r->bounds;
        tc->share = r->ev->share;
        tc->share_user = r->ev->user;
    }
    int rc = as_train_crops_encode(tc, &m->enc, crops, 1 + o->local_crops, nb, o->crop_size,
                                   o->pairing, (float)o->mass_threshold, 0, hooks, err);
    if (!rc)
        rc = as_train_forward_backward(t, &tc->batch_view, L, err);
    if (!rc && r->ev && r->ev->world > 1 && r->ev->reduce)
        rc = r->ev->reduce(r->ev->user, t->grad, t->total, L, err);
    if (!rc && !(isfinite(L->loss) && isfinite(L->loss_ce) && isfinite(L->loss_corr)))
        rc = as_error_set(err, AS_ERR_FORMAT, "the loss is %g (query ce %g, correlation %g)",
                          L->loss, L->loss_ce, L->loss_corr);
    if (!rc)
        rc = as_trainer_check_finite(t, "before the AdamW step", err);
    if (!rc) {
        as_train_adamw_step(t);
        rc = as_trainer_check_finite(t, "after the AdamW step", err);
    }
    return rc;
}

int as_train_run(const AsTrainOptions *opts, const AsHooks *hooks, const AsTrainEvents *ev,
                 AsTrainSummary *sum, AsError *err)
{
    memset(sum, 0, sizeof *sum);
    AsError local = { 0 };
    if (!err) /* messages of skipped images come from err */
        err = &local;
    AsTrainOptions o = *opts;
    Run r = { ev, !ev || ev->rank == 0, false, 0, 1, NULL };
    ImageList imgs;
    memset(&imgs, 0, sizeof imgs);
    AsModel *m = NULL;
    AsTrainer t;
    memset(&t, 0, sizeof t);
    AsTrainCrops tc;
    as_train_crops_init(&tc);
    AsTrainState rs;
    memset(&rs, 0, sizeof rs);
    Batch bt[2];
    memset(bt, 0, sizeof bt);
    int *order = NULL;
    FILE *csv = NULL;
    char path[4096];
    int rc = 0;

    if (!o.images || !o.rundir || (!o.backbone && !o.resume && !o.random_arch)) {
        rc = as_error_set(err, AS_ERR_ARG, "need the images, the run folder and a backbone "
                          "(or a run to resume)");
        goto done;
    }
    if (ev && ev->world > 1 && ev->share) {
        if (ev->rank < 0 || ev->rank >= ev->world) {
            rc = as_error_set(err, AS_ERR_ARG, "rank %d outside 0..%d", ev->rank, ev->world - 1);
            goto done;
        }
        r.split = true;
        r.rank = ev->rank;
        r.world = ev->world;
        if (!(r.bounds = malloc((size_t)(ev->world + 1) * sizeof(int)))) {
            rc = as_error_set(err, AS_ERR_NOMEM, "out of memory");
            goto done;
        }
        note(&r, "%d ranks, each crops and encodes its share of every batch", r.world);
    }
    if ((rc = list_images(o.images, &imgs, err)))
        goto done;
    if (r.writer && mkdir(o.rundir, 0777) && errno != EEXIST) {
        rc = as_error_set(err, AS_ERR_IO, "cannot create %s: %s", o.rundir, strerror(errno));
        goto done;
    }
    if ((rc = setup(&r, &o, hooks, &imgs, &m, &t, &rs, err)))
        goto done;
    const int B = o.batch, nc = 1 + o.local_crops, S = o.crop_size;
    order = malloc((size_t)imgs.count * sizeof(int));
    bool alloc_ok = order != NULL;
    for (int i = 0; i < 2; i++) { /* one batch trains while the other is gathered */
        Batch *b = &bt[i];
        b->r = &r;
        b->o = &o;
        b->imgs = &imgs;
        b->order = order;
        b->crops = malloc((size_t)nc * B * 3 * S * S * sizeof(float));
        b->bounds = malloc((size_t)(r.world + 1) * sizeof(int));
        b->bad = malloc((size_t)imgs.count * sizeof(int));
        alloc_ok = alloc_ok && b->crops && b->bounds && b->bad;
    }
    if (!alloc_ok) {
        rc = as_error_set(err, AS_ERR_NOMEM, "out of memory for a batch of %d x %d crops of %d "
                          "pixels", B, nc, S);
        goto done;
    }
    snprintf(path, sizeof path, "%s/train_log.csv", o.rundir);
    const bool new_csv = access(path, F_OK) != 0 || !o.resume;
    if (r.writer && !(csv = fopen(path, new_csv ? "w" : "a"))) {
        rc = as_error_set(err, AS_ERR_IO, "cannot write %s: %s", path, strerror(errno));
        goto done;
    }
    if (csv && new_csv)
        fprintf(csv, "epoch,step,global_step,images,loss,loss_query_ce,loss_correlation,lr,"
                     "images_per_s\n");
    note(&r, "%d images, batch %d, %d epochs, %d crops of %d px, D=%d Q=%d H=%d layers=%d "
             "decoder heads %d, pairing %s, %d threads%s",
         imgs.count, B, o.epochs, nc, S, m->dec.cfg.dim, m->dec.cfg.queries, m->dec.cfg.hidden,
         m->dec.cfg.layers, m->dec.cfg.heads, as_pairing_name(o.pairing), o.threads,
         o.resume ? " (resumed)" : "");

    const int steps_per_epoch = (imgs.count + B - 1) / B;
    const long steps_left = (long)(o.epochs - rs.epoch) * steps_per_epoch - rs.cursor / B;
    const double run_start = as_train_clock();
    for (; rs.epoch < o.epochs && !sum->stopped; rs.epoch++) {
        t.hyper.lr = as_train_lr_at_epoch(rs.base_lr, rs.epoch, o.lr_step, o.lr_gamma);
        for (int i = 0; i < imgs.count; i++)
            order[i] = i;
        AsRng perm;
        as_rng_seed2(&perm, o.seed, 0x5e7 + (uint64_t)rs.epoch);
        as_rng_shuffle(&perm, order, imgs.count);
        int step_in_epoch = rs.cursor / B;
        const bool whole_epoch = rs.cursor == 0;
        long epoch_images = 0;
        int cur = 0;
        bool ready = false; /* bt[cur] already gathered from rs by the producer */
        while (rs.cursor < imgs.count) {
            if (as_hooks_cancelled(hooks)) {
                sum->stopped = "interrupted";
                break;
            }
            if (o.max_steps && sum->steps >= o.max_steps) {
                sum->stopped = "--max-steps reached";
                break;
            }
            const double d0 = as_train_clock();
            const int cursor_before = rs.cursor;
            const AsRng rng_before = rs.crop_rng;
            Batch *b = &bt[cur];
            if (!ready) {
                b->cursor = rs.cursor;
                b->rng = rs.crop_rng;
                gather(b);
            }
            ready = false;
            batch_apply(&r, &imgs, b);
            rs.cursor = b->cursor_after;
            rs.crop_rng = b->rng_after;
            const int nb = b->nb;
            if (nb < 0) {
                rc = AS_ERR_IO;
                *err = b->err;
                as_error_prefix(err, "rank %d of %d: ", r.rank, r.world);
                goto done;
            }
            if (nb == 0)
                break;
            epoch_images += nb;
            /* the producer gathers the next batch while this one trains */
            pthread_t producer;
            bool producing = false;
            if (rs.cursor < imgs.count && !(o.max_steps && sum->steps + 1 >= o.max_steps)) {
                Batch *next = &bt[1 - cur];
                next->cursor = rs.cursor;
                next->rng = rs.crop_rng;
                producing = pthread_create(&producer, NULL, gather_thread, next) == 0;
            }
            sum->time_data += as_train_clock() - d0;
            AsTrainLosses L;
            rc = train_step(&r, &o, hooks, m, &t, &tc, b->crops, nb, &L, err);
            if (producing) {
                const double w0 = as_train_clock();
                pthread_join(producer, NULL);
                sum->time_data += as_train_clock() - w0;
                ready = true;
                cur = 1 - cur;
            }
            if (rc == AS_ERR_CANCELLED) { /* redo this batch after a resume */
                rs.cursor = cursor_before;
                rs.crop_rng = rng_before;
                sum->stopped = "interrupted";
                rc = 0;
                break;
            }
            if (rc) {
                as_error_prefix(err, "epoch %d step %d: training stopped, nothing saved: ",
                                rs.epoch + 1, step_in_epoch + 1);
                goto done;
            }
            rs.global_step++;
            sum->steps++;
            sum->images += nb;
            step_in_epoch++;
            const double el = as_train_clock() - run_start;
            AsTrainProgress p = { rs.epoch + 1, o.epochs, step_in_epoch, steps_per_epoch,
                                  rs.global_step, nb, L, t.hyper.lr, 0.0, 0.0 };
            p.images_per_s = sum->images / (el > 0 ? el : 1e-9);
            const long left = (long)(o.epochs - rs.epoch - 1) * imgs.count +
                              (imgs.count - rs.cursor);
            p.eta_s = left / (p.images_per_s > 0 ? p.images_per_s : 1e-9);
            if (csv)
                fprintf(csv, "%d,%d,%lld,%d,%.7f,%.7f,%.7f,%.6g,%.3f\n", p.epoch, p.step,
                        (long long)p.global_step, nb, L.loss, L.loss_ce, L.loss_corr, p.lr,
                        p.images_per_s);
            if (r.writer && ev && ev->step)
                ev->step(ev->user, &p);
            as_hooks_progress(hooks, "train", sum->steps, steps_left);
        }
        if (sum->stopped)
            break;
        if (whole_epoch && epoch_images == 0) {
            rc = as_error_set(err, AS_ERR_ARG, "none of the %d images in %s could be read",
                              imgs.count, o.images);
            goto done;
        }
        if (csv)
            fflush(csv);
        /* end of the epoch: the checkpoint says "epoch N done" like the reference */
        rs.cursor = 0;
        AsTrainState next = rs;
        next.epoch = rs.epoch + 1;
        /* the saved learning rate is the next epoch's, as after the reference's
         * scheduler.step() */
        t.hyper.lr = as_train_lr_at_epoch(rs.base_lr, next.epoch, o.lr_step, o.lr_gamma);
        char name[64];
        snprintf(name, sizeof name, "epoch%d.pth", rs.epoch + 1);
        if (r.writer) {
            if ((rc = save(&o, m, &t, &next, imgs.count, name, rs.epoch + 1, err)))
                goto done;
            note(&r, "saved %s/%s", o.rundir, name);
            if (!o.keep_all && rs.epoch > 0) {
                snprintf(path, sizeof path, "%s/epoch%d.pth", o.rundir, rs.epoch);
                unlink(path);
            }
        }
    }
    snprintf(path, sizeof path, "%s/interrupted.pth", o.rundir);
    if (sum->stopped && r.writer)
        rc = save(&o, m, &t, &rs, imgs.count, "interrupted.pth", rs.epoch, err);
    else if (r.writer)
        unlink(path); /* finished: an older interruption point is stale */
    if (!rc && sum->stopped && !strcmp(sum->stopped, "interrupted"))
        rc = as_error_set(err, AS_ERR_CANCELLED, "interrupted: saved %s", path);
    sum->seconds = as_train_clock() - run_start;
    sum->time_encoder = tc.time_encoder;
    sum->time_forward = t.time_forward;
    sum->time_backward = t.time_backward;
    sum->time_optim = t.time_optim;
    sum->epoch = rs.epoch + 1;
    sum->cursor = rs.cursor;
done:
    sum->nimages = imgs.count;
    sum->bad_images = imgs.nbad;
    if (csv)
        fclose(csv);
    as_trainer_free(&t);
    as_train_crops_free(&tc);
    as_model_free(m);
    free_images(&imgs);
    batch_free(&bt[0]);
    batch_free(&bt[1]);
    free(order);
    free(r.bounds);
    return rc;
}
