/* cmd_train: the 'alignseg train' sub-command: trains the AlignSeg decoder
 * (prototypes, cross/self attention, FFN) on a folder of images with the
 * frozen DINO encoder, as METHOD.md section 5. Writes PyTorch checkpoints each
 * epoch (RUNDIR/epochN.pth, readable by torch.load and the published code),
 * a CSV log of the losses per step, a progress line, and on Ctrl-C a
 * resumable RUNDIR/interrupted.pth. --resume continues exactly: weights,
 * AdamW moments, schedule, position in the epoch and random state. */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cblas.h>

#include "checkpoint.h"
#include "cli.h"
#include "commands.h"
#include "image.h"
#include "kmeans.h"
#include "pth.h"
#include "train.h"
#include "vit.h"

#define CMD "alignseg train"
#define STATE_KEY "alignseg_train"

static volatile sig_atomic_t g_stop = 0;
static int g_bad_images = 0; /* unreadable images reported (each once) */

static void on_sigint(int sig)
{
    (void)sig;
    g_stop = 1;
    signal(SIGINT, SIG_DFL); /* a second Ctrl-C ends at once */
}

typedef struct {
    const char *backbone, *images, *rundir, *resume;
    const char *random_arch; /* --random-backbone: benchmark without weights */
    int epochs, batch, queries, hidden, layers, local_crops, crop_size, threads;
    int lr_step, max_steps, log_every, kmeans_images;
    double lr, weight_decay, lr_gamma, mass;
    float negative_pressure;
    AsPairing pairing;
    bool kmeans, keep_all;
    uint64_t seed;
    AsModelOptions mopt;
    /* which options the command line gave (they override a resumed run's) */
    bool set_epochs, set_batch, set_lr, set_wd, set_np, set_pairing, set_crop, set_local,
        set_lr_step, set_gamma, set_mass, set_threads;
} Opts;

static void usage(FILE *f)
{
    fprintf(f,
            "Usage: " CMD " -b DINO_BACKBONE --images DIR -o RUNDIR [OPTIONS]\n"
            "       " CMD " --resume RUNDIR/epochN.pth --images DIR -o RUNDIR [OPTIONS]\n"
            "\n"
            "Train the AlignSeg decoder and prototypes on the CPU; the DINO encoder stays frozen.\n"
            "\n"
            "  -b, --backbone FILE       DINO backbone (.pth/.safetensors), ViT-S/B, patch 8/16\n"
            "  --images DIR              folder of JPEG/PNG images (unreadable ones are skipped)\n"
            "  -o, --output RUNDIR       checkpoints (epochN.pth), train_log.csv\n"
            "  --epochs N                (default 10)\n"
            "  --batch N                 images per step (default 32)\n"
            "  --queries Q               prototypes (default 5)\n"
            "  --hidden H                decoder FFN width (default 768)\n"
            "  --layers L                decoder layers (default 1)\n"
            "  --encoder-heads H         encoder heads (default D/64)\n"
            "  --decoder-heads H         decoder heads (default 3)\n"
            "  --lr X                    AdamW learning rate (default 5e-4)\n"
            "  --weight-decay X          on weights, not biases/1-D/prototypes (default 0.04)\n"
            "  --lr-step N, --lr-gamma G learning rate times G every N epochs (default 3, 0.5)\n"
            "  --negative-pressure B     of the correlation loss (default 0.11; COCO 0.10)\n"
            "  --pairing P               reference (default) or same-image\n"
            "  --init-prototypes P       random (default, N(0,1)) or kmeans (of image tokens)\n"
            "  --seed N                  (default 3407)\n"
            "  --resume FILE             continue from a checkpoint written by this command\n"
            "  --crop-size S             crop side in pixels (default 224)\n"
            "  --local-crops N           local crops per image (default 2)\n"
            "  --mass-threshold T        attention mass kept as foreground (default 0.6)\n"
            "  --threads N               CPU threads (default 2; --resume keeps the run's)\n"
            "  --max-steps N             stop after N steps (saves interrupted.pth)\n"
            "  --log-every N             progress line every N steps when not a terminal (10)\n"
            "  --keep-all                keep every epoch's checkpoint (default: the newest)\n"
            "  --random-backbone A       benchmark on a random encoder instead of -b: vit_small16,\n"
            "                            vit_small8, vit_base16 or vit_base8\n"
            "\n"
            "Ctrl-C saves RUNDIR/interrupted.pth; continue with --resume RUNDIR/interrupted.pth.\n");
}

static int parse(Opts *o, int argc, char **argv)
{
    memset(o, 0, sizeof *o);
    o->epochs = 10;
    o->batch = 32;
    o->queries = 5;
    o->hidden = 768;
    o->layers = 1;
    o->local_crops = 2;
    o->crop_size = 224;
    o->threads = 2;
    o->lr_step = 3;
    o->lr_gamma = 0.5;
    AsTrainHyper defaults; /* METHOD.md 5 values, one place */
    as_train_hyper_default(&defaults);
    o->lr = defaults.lr;
    o->weight_decay = defaults.weight_decay;
    o->negative_pressure = defaults.negative_pressure;
    o->mass = 0.6;
    o->seed = 3407;
    o->log_every = 10;
    o->kmeans_images = 64;
    o->pairing = AS_PAIRING_REFERENCE;
    double v;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *val = i + 1 < argc ? argv[i + 1] : NULL;
#define INTOPT(name, field, lo, hi, flag)                                          \
    if (!strcmp(a, name) && val) {                                                 \
        if (!cli_parse_double("train", a, argv[++i], lo, hi, &v))                  \
            return 2;                                                              \
        o->field = (int)v;                                                         \
        flag;                                                                      \
        continue;                                                                  \
    }
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 1;
        }
        if ((!strcmp(a, "-b") || !strcmp(a, "--backbone")) && val) {
            o->backbone = argv[++i];
            continue;
        }
        if (!strcmp(a, "--images") && val) {
            o->images = argv[++i];
            continue;
        }
        if ((!strcmp(a, "-o") || !strcmp(a, "--output")) && val) {
            o->rundir = argv[++i];
            continue;
        }
        if (!strcmp(a, "--random-backbone") && val) {
            o->random_arch = argv[++i];
            continue;
        }
        if (!strcmp(a, "--resume") && val) {
            o->resume = argv[++i];
            continue;
        }
        INTOPT("--epochs", epochs, 1, 1e6, o->set_epochs = true)
        INTOPT("--batch", batch, 1, 4096, o->set_batch = true)
        INTOPT("--queries", queries, 2, 4096, (void)0)
        INTOPT("--hidden", hidden, 1, 1 << 16, (void)0)
        INTOPT("--layers", layers, 1, 64, (void)0)
        INTOPT("--local-crops", local_crops, 1, 16, o->set_local = true)
        INTOPT("--crop-size", crop_size, 8, 4096, o->set_crop = true)
        INTOPT("--threads", threads, 1, 16, o->set_threads = true)
        INTOPT("--lr-step", lr_step, 1, 1e6, o->set_lr_step = true)
        INTOPT("--max-steps", max_steps, 1, 1e9, (void)0)
        INTOPT("--log-every", log_every, 1, 1e9, (void)0)
        INTOPT("--encoder-heads", mopt.encoder_heads, 1, 1024, (void)0)
        INTOPT("--decoder-heads", mopt.decoder_heads, 1, 1024, (void)0)
#undef INTOPT
        if (!strcmp(a, "--lr") && val) {
            if (!cli_parse_double("train", a, argv[++i], 0, 10, &o->lr))
                return 2;
            o->set_lr = true;
        } else if (!strcmp(a, "--weight-decay") && val) {
            if (!cli_parse_double("train", a, argv[++i], 0, 10, &o->weight_decay))
                return 2;
            o->set_wd = true;
        } else if (!strcmp(a, "--lr-gamma") && val) {
            if (!cli_parse_double("train", a, argv[++i], 0, 10, &o->lr_gamma))
                return 2;
            o->set_gamma = true;
        } else if (!strcmp(a, "--mass-threshold") && val) {
            if (!cli_parse_double("train", a, argv[++i], 0, 1, &o->mass))
                return 2;
            o->set_mass = true;
        } else if (!strcmp(a, "--negative-pressure") && val) {
            if (!cli_parse_double("train", a, argv[++i], -10, 10, &v))
                return 2;
            o->negative_pressure = (float)v;
            o->set_np = true;
        } else if (!strcmp(a, "--seed") && val) {
            if (!cli_parse_double("train", a, argv[++i], 0, 9007199254740992.0, &v))
                return 2;
            o->seed = (uint64_t)v;
        } else if (!strcmp(a, "--pairing") && val) {
            const char *p = argv[++i];
            if (!strcmp(p, "reference"))
                o->pairing = AS_PAIRING_REFERENCE;
            else if (!strcmp(p, "same-image"))
                o->pairing = AS_PAIRING_SAME_IMAGE;
            else {
                fprintf(stderr, CMD ": --pairing: '%s' is not reference or same-image\n", p);
                return 2;
            }
            o->set_pairing = true;
        } else if (!strcmp(a, "--init-prototypes") && val) {
            const char *p = argv[++i];
            if (!strcmp(p, "random"))
                o->kmeans = false;
            else if (!strcmp(p, "kmeans"))
                o->kmeans = true;
            else {
                fprintf(stderr, CMD ": --init-prototypes: '%s' is not random or kmeans\n", p);
                return 2;
            }
        } else if (!strcmp(a, "--keep-all")) {
            o->keep_all = true;
        } else {
            fprintf(stderr, CMD ": unknown option or missing value: %s\n", a);
            usage(stderr);
            return 2;
        }
    }
    if (!o->images || !o->rundir || (!o->backbone && !o->resume && !o->random_arch)) {
        fprintf(stderr, CMD ": need --images DIR, -o RUNDIR and -b BACKBONE (or --resume)\n");
        usage(stderr);
        return 2;
    }
    return 0;
}

/* ---- the image folder ---- */

typedef struct {
    char **paths;
    int count;
    bool *bad; /* reported once, then skipped */
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

static int list_images(const char *dir, ImageList *l)
{
    memset(l, 0, sizeof *l);
    DIR *d = opendir(dir);
    if (!d) {
        fprintf(stderr, CMD ": cannot open the image folder %s: %s\n", dir, strerror(errno));
        return -1;
    }
    int cap = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.' || !has_image_ext(e->d_name))
            continue;
        char *p = NULL;
        if (asprintf(&p, "%s/%s", dir, e->d_name) < 0)
            break;
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
                break;
            }
            l->paths = np;
        }
        l->paths[l->count++] = p;
    }
    closedir(d);
    if (l->count)
        qsort(l->paths, (size_t)l->count, sizeof *l->paths, cmp_str);
    l->bad = calloc((size_t)(l->count ? l->count : 1), 1);
    if (!l->count) {
        fprintf(stderr, CMD ": no .jpg/.jpeg/.png images in %s\n", dir);
        return -1;
    }
    return l->bad ? 0 : -1;
}

static void free_images(ImageList *l)
{
    for (int i = 0; i < l->count; i++)
        free(l->paths[i]);
    free(l->paths);
    free(l->bad);
}

/* ---- the model ---- */

static bool is_decoder_key(const char *n)
{
    return !strncmp(n, "clsQueries.", 11) || !strncmp(n, "decoder_", 8);
}

/* Backbone + a freshly initialised decoder. */
static int fresh_model(const Opts *o, AsModel **out)
{
    AsError err = { 0 };
    AsTensorMap map;
    as_tmap_init(&map);
    if (o->random_arch) {
        static const struct { const char *name; AsArch arch; int patch; } archs[] = {
            { "vit_small16", AS_ARCH_VIT_SMALL, 16 }, { "vit_small8", AS_ARCH_VIT_SMALL, 8 },
            { "vit_base16", AS_ARCH_VIT_BASE, 16 }, { "vit_base8", AS_ARCH_VIT_BASE, 8 },
        };
        int k = -1;
        for (int i = 0; i < 4; i++)
            if (!strcmp(o->random_arch, archs[i].name))
                k = i;
        AsModel *rm = NULL;
        if (k < 0) {
            fprintf(stderr, CMD ": --random-backbone: '%s' is not vit_small16, vit_small8, "
                            "vit_base16 or vit_base8\n", o->random_arch);
            return -1;
        }
        if (as_model_random(archs[k].arch, archs[k].patch, o->queries, 1, o->seed, &rm, &err)) {
            fprintf(stderr, CMD ": %s\n", err.msg);
            return -1;
        }
        for (size_t i = 0; i < rm->weights.count; i++) {
            const AsTensor *tt = &rm->weights.items[i];
            float *d = tt->data ? malloc((size_t)tt->numel * sizeof(float)) : NULL;
            if (!d || is_decoder_key(tt->name)) {
                free(d);
                continue;
            }
            memcpy(d, tt->data, (size_t)tt->numel * sizeof(float));
            if (as_tmap_add(&map, tt->name, tt->ndim, tt->shape, d, false, &err)) {
                fprintf(stderr, CMD ": %s\n", err.msg);
                as_model_free(rm);
                as_tmap_free(&map);
                return -1;
            }
        }
        as_model_free(rm);
    } else if (as_checkpoint_load(o->backbone, &map, &err)) {
        fprintf(stderr, CMD ": %s\n", err.msg);
        return -1;
    }
    /* a backbone must not bring its own decoder: drop any */
    for (;;) {
        const char *dk = NULL;
        for (size_t i = 0; i < map.count && !dk; i++)
            if (is_decoder_key(map.items[i].name))
                dk = map.items[i].name;
        if (!dk)
            break;
        char name[256];
        snprintf(name, sizeof name, "%s", dk);
        as_tmap_remove(&map, name);
    }
    const AsTensor *pe = as_tmap_find(&map, "patch_embed.proj.weight");
    if (!pe || pe->ndim != 4 || pe->shape[0] < 1 || pe->shape[0] > 65536) {
        fprintf(stderr, CMD ": %s: not a DINO backbone (no patch_embed.proj.weight of shape "
                        "(D, 3, p, p))\n", o->backbone ? o->backbone : o->random_arch);
        as_tmap_free(&map);
        return -1;
    }
    AsRng rng;
    as_rng_seed2(&rng, o->seed, 0x1417);
    if (as_decoder_init_tensors(&map, (int)pe->shape[0], o->queries, o->hidden, o->layers, NULL,
                                &rng, &err)) {
        fprintf(stderr, CMD ": %s\n", err.msg);
        as_tmap_free(&map);
        return -1;
    }
    if (as_model_from_tensors(&map, &o->mopt, out, &err)) {
        fprintf(stderr, CMD ": %s: the backbone does not fit: %s\n",
                o->backbone ? o->backbone : o->random_arch, err.msg);
        return -1;
    }
    return 0;
}

/* Prototypes = spherical k-means centres of the patch tokens of the first
 * images (whole image resized to the crop size). */
static int kmeans_prototypes(const Opts *o, AsModel *m, ImageList *imgs)
{
    const int S = o->crop_size, p = m->enc.cfg.patch, D = m->enc.cfg.dim;
    const int n = (S / p) * (S / p), Q = m->dec.cfg.queries;
    int want = imgs->count < o->kmeans_images ? imgs->count : o->kmeans_images;
    float *tok = malloc((size_t)want * n * D * sizeof(float));
    float *in = malloc((size_t)3 * S * S * sizeof(float));
    AsVitWorkspace ws;
    as_vit_workspace_init(&ws);
    AsError err = { 0 };
    int got = 0, rc = -1;
    if (!tok || !in)
        goto done;
    fprintf(stderr, CMD ": k-means prototypes from the tokens of %d images...\n", want);
    for (int i = 0; i < imgs->count && got < want && !g_stop; i++) {
        AsImage img = { 0, 0, NULL };
        if (as_image_load(imgs->paths[i], &img, &err)) {
            bool named = strstr(err.msg, imgs->paths[i]) != NULL;
            fprintf(stderr, CMD ": skipping %s%s%s\n", named ? "" : imgs->paths[i],
                    named ? "" : ": ", err.msg);
            imgs->bad[i] = true;
            g_bad_images++;
            continue;
        }
        AsBox all = { 0, 0, img.w, img.h };
        int r = as_crop_normalized(&img, &all, S, in, &err);
        as_image_free(&img);
        if (r || as_vit_forward(&m->enc, in, S, S, &ws, NULL, &err)) {
            fprintf(stderr, CMD ": %s: %s\n", imgs->paths[i], err.msg);
            continue;
        }
        memcpy(tok + (size_t)got * n * D, ws.tokens, (size_t)n * D * sizeof(float));
        got++;
    }
    int k = 0;
    if (got == 0 ||
        as_spherical_kmeans(tok, got * n, D, Q, AS_KMEANS_MAX_ITER, m->dec.queries, NULL, &k,
                            &err)) {
        fprintf(stderr, CMD ": k-means prototypes failed: %s\n",
                got ? err.msg : "no readable image");
        goto done;
    }
    if (k < Q) {
        fprintf(stderr, CMD ": only %d distinct k-means centres for %d prototypes\n", k, Q);
        goto done;
    }
    rc = 0;
done:
    as_vit_workspace_free(&ws);
    free(tok);
    free(in);
    return rc;
}

/* ---- run state (saved in checkpoints for --resume) ---- */

typedef struct {
    int epoch;          /* epoch in progress (0-based) = epochs completed */
    int cursor;         /* position in the epoch's image order */
    int64_t global_step;
    AsRng crop_rng;
    double base_lr;
} RunState;

static AsPValue *state_value(const Opts *o, const RunState *rs, int nimages)
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
    SET("version", as_pv_int(1));
    SET("epoch", as_pv_int(rs->epoch));
    SET("cursor", as_pv_int(rs->cursor));
    SET("global_step", as_pv_int(rs->global_step));
    if (!rc)
        rc = as_pv_dict_set_str(d, "crop_rng", rng, NULL);
    else
        as_pv_free(rng);
    SET("seed", as_pv_int((int64_t)o->seed));
    SET("base_lr", as_pv_float(rs->base_lr));
    SET("epochs", as_pv_int(o->epochs));
    SET("batch", as_pv_int(o->batch));
    SET("crop_size", as_pv_int(o->crop_size));
    SET("local_crops", as_pv_int(o->local_crops));
    SET("pairing", as_pv_str(o->pairing == AS_PAIRING_REFERENCE ? "reference" : "same-image"));
    SET("negative_pressure", as_pv_float(o->negative_pressure));
    SET("weight_decay", as_pv_float(o->weight_decay));
    SET("lr_step", as_pv_int(o->lr_step));
    SET("lr_gamma", as_pv_float(o->lr_gamma));
    SET("mass_threshold", as_pv_float(o->mass));
    SET("decoder_heads", as_pv_int(o->mopt.decoder_heads));
    SET("encoder_heads", as_pv_int(o->mopt.encoder_heads));
    SET("images", as_pv_int(nimages));
    SET("threads", as_pv_int(o->threads));
#undef SET
    if (rc) {
        as_pv_free(d);
        return NULL;
    }
    return d;
}

static bool get_num(const AsPValue *d, const char *key, double *v)
{
    return as_pv_number(as_pv_get(d, key), v);
}

/* Read our state (and the settings of the run) from a checkpoint's root. */
static int restore_state(Opts *o, RunState *rs, const AsPValue *root, int nimages)
{
    const AsPValue *d = as_pv_get(root, STATE_KEY);
    if (!d || d->kind != AS_PV_DICT) {
        /* a checkpoint of the published code: continue after its epoch */
        double e = 0;
        get_num(root, "epoch", &e);
        rs->epoch = e >= 0 && e < 1e6 ? (int)e : 0;
        rs->cursor = 0;
        rs->global_step = 0;
        rs->base_lr = o->lr;
        as_rng_seed2(&rs->crop_rng, o->seed, 0xc20b + (uint64_t)rs->epoch);
        fprintf(stderr, CMD ": %s has no run state of ours: starting epoch %d with a fresh "
                        "random state\n", o->resume, rs->epoch + 1);
        return 0;
    }
    double v;
    const AsPValue *rng = as_pv_get(d, "crop_rng");
    if (!get_num(d, "epoch", &v) || v < 0 || v > 1e6)
        return -1;
    rs->epoch = (int)v;
    if (!get_num(d, "cursor", &v) || v < 0 || v > 1e9)
        return -1;
    rs->cursor = (int)v;
    if (!get_num(d, "global_step", &v) || v < 0)
        return -1;
    rs->global_step = (int64_t)v;
    if (!rng || rng->kind != AS_PV_LIST || rng->count != 8)
        return -1;
    for (int i = 0; i < 4; i++) {
        double hi, lo;
        if (!as_pv_number(rng->items[2 * i], &hi) || !as_pv_number(rng->items[2 * i + 1], &lo) ||
            !(hi >= 0 && hi < 4294967296.0) || !(lo >= 0 && lo < 4294967296.0))
            return -1;
        rs->crop_rng.s[i] = ((uint64_t)hi << 32) | ((uint64_t)lo & 0xffffffffu);
    }
    if (!(rs->crop_rng.s[0] | rs->crop_rng.s[1] | rs->crop_rng.s[2] | rs->crop_rng.s[3]))
        return -1;
    if (get_num(d, "seed", &v) && v >= 0 && v < 9007199254740992.0)
        o->seed = (uint64_t)v;
    if (get_num(d, "base_lr", &v) && !o->set_lr && v > 0 && v < 10)
        o->lr = v;
    rs->base_lr = o->lr;
#define TAKE_INT(key, field, flag)                                                 \
    if (!o->flag && get_num(d, key, &v) && v >= 1 && v < 1e9)                      \
        o->field = (int)v;
    TAKE_INT("epochs", epochs, set_epochs)
    TAKE_INT("batch", batch, set_batch)
    TAKE_INT("crop_size", crop_size, set_crop)
    TAKE_INT("local_crops", local_crops, set_local)
    TAKE_INT("lr_step", lr_step, set_lr_step)
    TAKE_INT("threads", threads, set_threads) /* bit-exact continuation needs the same */
#undef TAKE_INT
    if (!o->set_np && get_num(d, "negative_pressure", &v) && fabs(v) <= 10)
        o->negative_pressure = (float)v;
    if (!o->set_wd && get_num(d, "weight_decay", &v) && v >= 0 && v <= 10)
        o->weight_decay = v;
    if (!o->set_gamma && get_num(d, "lr_gamma", &v) && v >= 0 && v <= 10)
        o->lr_gamma = v;
    if (!o->set_mass && get_num(d, "mass_threshold", &v) && v >= 0 && v <= 1)
        o->mass = v;
    const AsPValue *p = as_pv_get(d, "pairing");
    if (!o->set_pairing && p && p->kind == AS_PV_STR)
        o->pairing = strcmp(p->s, "same-image") ? AS_PAIRING_REFERENCE : AS_PAIRING_SAME_IMAGE;
    if (get_num(d, "images", &v) && (int)v != nimages)
        fprintf(stderr, CMD ": warning: the run had %d images, the folder now has %d: the "
                        "image order differs from an uninterrupted run\n", (int)v, nimages);
    return 0;
}

/* ---- checkpoints ---- */

static int save(const Opts *o, const AsModel *m, const AsTrainer *t, const RunState *rs,
                int nimages, const char *name, int64_t epoch_field)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", o->rundir, name);
    AsError err = { 0 };
    AsPValue *extra = as_pv_dict(false);
    AsPValue *st = state_value(o, rs, nimages);
    if (!extra || !st || as_pv_dict_set_str(extra, STATE_KEY, st, &err)) {
        if (!extra)
            as_pv_free(st);
        as_pv_free(extra);
        fprintf(stderr, CMD ": out of memory writing %s\n", path);
        return -1;
    }
    const char *net = m->enc.cfg.dim >= 768 ? "vit_base" : "vit_small";
    if (as_train_save(path, m, t, epoch_field, net, true, rs->base_lr, extra, &err)) {
        fprintf(stderr, CMD ": %s\n", err.msg);
        return -1;
    }
    return 0;
}

/* ---- progress ---- */

static void fmt_duration(double s, char *buf, size_t len)
{
    if (!(s >= 0) || s > 1e8)
        snprintf(buf, len, "?");
    else if (s >= 3600)
        snprintf(buf, len, "%dh%02dm", (int)(s / 3600), (int)(s / 60) % 60);
    else
        snprintf(buf, len, "%dm%02ds", (int)(s / 60), (int)s % 60);
}

static double now_sec(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ---- the command ---- */

int cmd_train(int argc, char **argv)
{
    Opts o;
    int pr = parse(&o, argc, argv);
    if (pr)
        return pr == 1 ? 0 : 2;

    int status = 1;
    AsError err = { 0 };
    ImageList imgs;
    memset(&imgs, 0, sizeof imgs);
    AsModel *m = NULL;
    AsTrainer t;
    memset(&t, 0, sizeof t);
    AsTrainCrops tc;
    as_train_crops_init(&tc);
    AsPth resume_pth;
    memset(&resume_pth, 0, sizeof resume_pth);
    float *crops = NULL;
    int *order = NULL;
    FILE *csv = NULL;
    RunState rs;
    memset(&rs, 0, sizeof rs);

    if (list_images(o.images, &imgs))
        goto done;
    if (mkdir(o.rundir, 0777) && errno != EEXIST) {
        fprintf(stderr, CMD ": cannot create %s: %s\n", o.rundir, strerror(errno));
        goto done;
    }
    if (o.resume) {
        if (as_pth_read(o.resume, &resume_pth, AS_PTH_BORROW, &err)) {
            fprintf(stderr, CMD ": %s\n", err.msg);
            goto done;
        }
        if (restore_state(&o, &rs, resume_pth.root, imgs.count)) {
            fprintf(stderr, CMD ": %s: the run state (%s) is damaged\n", o.resume, STATE_KEY);
            goto done;
        }
        const AsPValue *st = as_pv_get(resume_pth.root, STATE_KEY);
        double v;
        if (st && !o.mopt.decoder_heads && get_num(st, "decoder_heads", &v) && v >= 1)
            o.mopt.decoder_heads = (int)v;
        if (st && !o.mopt.encoder_heads && get_num(st, "encoder_heads", &v) && v >= 1)
            o.mopt.encoder_heads = (int)v;
        if (as_model_load(o.resume, o.backbone, &o.mopt, &m, &err)) {
            fprintf(stderr, CMD ": %s\n", err.msg);
            goto done;
        }
        if (!m->has_decoder) {
            fprintf(stderr, CMD ": %s holds no decoder to continue training\n", o.resume);
            goto done;
        }
    } else {
        if (fresh_model(&o, &m))
            goto done;
        rs.base_lr = o.lr;
        as_rng_seed2(&rs.crop_rng, o.seed, 0xc20b);
    }
    const int p = m->enc.cfg.patch;
    if (o.crop_size % p) {
        fprintf(stderr, CMD ": --crop-size %d is not a multiple of the patch size %d\n",
                o.crop_size, p);
        goto done;
    }
    if (!o.resume && o.kmeans && kmeans_prototypes(&o, m, &imgs))
        goto done;

    AsTrainHyper hyper;
    as_train_hyper_default(&hyper);
    hyper.lr = o.lr;
    hyper.weight_decay = o.weight_decay;
    hyper.negative_pressure = o.negative_pressure;
    if (as_trainer_init(&t, &m->dec, &hyper, &err)) {
        fprintf(stderr, CMD ": %s\n", err.msg);
        goto done;
    }
    if (o.resume) {
        const AsPValue *opt = as_pv_get(resume_pth.root, "optimizer");
        if (opt && as_train_load_optimizer(&t, opt, o.resume, &err)) {
            fprintf(stderr, CMD ": %s\n", err.msg);
            goto done;
        }
        t.hyper.weight_decay = o.weight_decay;
        as_pth_free(&resume_pth);
        memset(&resume_pth, 0, sizeof resume_pth);
    }

    const int B = o.batch, nc = 1 + o.local_crops, S = o.crop_size;
    const size_t crop_floats = (size_t)3 * S * S;
    crops = malloc((size_t)nc * B * crop_floats * sizeof(float));
    order = malloc((size_t)imgs.count * sizeof(int));
    if (!crops || !order) {
        fprintf(stderr, CMD ": out of memory for a batch of %d x %d crops of %d pixels\n", B, nc,
                S);
        goto done;
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/train_log.csv", o.rundir);
    bool new_csv = access(path, F_OK) != 0 || !o.resume;
    csv = fopen(path, new_csv ? "w" : "a");
    if (!csv) {
        fprintf(stderr, CMD ": cannot write %s: %s\n", path, strerror(errno));
        goto done;
    }
    if (new_csv)
        fprintf(csv, "epoch,step,global_step,images,loss,loss_query_ce,loss_correlation,lr,"
                     "images_per_s\n");
    fprintf(stderr,
            CMD ": %d images, batch %d, %d epochs, %d crops of %d px, D=%d Q=%d H=%d layers=%d "
                "decoder heads %d, pairing %s, %d threads%s\n",
            imgs.count, B, o.epochs, nc, S, m->dec.cfg.dim, m->dec.cfg.queries,
            m->dec.cfg.hidden, m->dec.cfg.layers, m->dec.cfg.heads,
            o.pairing == AS_PAIRING_REFERENCE ? "reference" : "same-image", o.threads,
            o.resume ? " (resumed)" : "");

    signal(SIGINT, on_sigint);
    const bool tty = isatty(2);
    const int steps_per_epoch = (imgs.count + B - 1) / B;
    int run_steps = 0;
    long run_images = 0;
    double run_start = now_sec(), data_time = 0;
    const char *stop_reason = NULL;
    for (; rs.epoch < o.epochs && !stop_reason; rs.epoch++) {
        t.hyper.lr = as_train_lr_at_epoch(rs.base_lr, rs.epoch, o.lr_step, o.lr_gamma);
        for (int i = 0; i < imgs.count; i++)
            order[i] = i;
        AsRng perm;
        as_rng_seed2(&perm, o.seed, 0x5e7 + (uint64_t)rs.epoch);
        as_rng_shuffle(&perm, order, imgs.count);
        int step_in_epoch = rs.cursor / B;
        const bool whole_epoch = rs.cursor == 0;
        long epoch_images = 0;
        while (rs.cursor < imgs.count) {
            if (g_stop) {
                stop_reason = "interrupted (Ctrl-C)";
                break;
            }
            if (o.max_steps && run_steps >= o.max_steps) {
                stop_reason = "--max-steps reached";
                break;
            }
            /* gather up to B readable images */
            double d0 = now_sec();
            const int cursor_before = rs.cursor;
            const AsRng rng_before = rs.crop_rng;
            int nb = 0;
            while (nb < B && rs.cursor < imgs.count) {
                int idx = order[rs.cursor++];
                if (imgs.bad[idx])
                    continue;
                AsImage img = { 0, 0, NULL };
                if (as_image_load(imgs.paths[idx], &img, &err)) {
                    bool named = strstr(err.msg, imgs.paths[idx]) != NULL;
                    fprintf(stderr, "%s" CMD ": skipping %s%s%s\n", tty ? "\n" : "",
                            named ? "" : imgs.paths[idx], named ? "" : ": ", err.msg);
                    imgs.bad[idx] = true;
                    g_bad_images++;
                    continue;
                }
                AsBox boxes[17];
                as_sample_multicrop(&rs.crop_rng, img.w, img.h, nc - 1, 0.05, boxes);
                int rc = 0;
                for (int c = 0; c < nc && !rc; c++)
                    rc = as_crop_normalized(&img, &boxes[c], S,
                                            crops + ((size_t)c * B + nb) * crop_floats, &err);
                as_image_free(&img);
                if (rc) {
                    fprintf(stderr, "%s" CMD ": skipping %s: %s\n", tty ? "\n" : "",
                            imgs.paths[idx], err.msg);
                    imgs.bad[idx] = true;
                    g_bad_images++;
                    continue;
                }
                nb++;
            }
            if (nb == 0)
                break;
            epoch_images += nb;
            if (nb < B) /* a short last batch: close the gaps between crop kinds */
                for (int c = 1; c < nc; c++)
                    memmove(crops + (size_t)c * nb * crop_floats,
                            crops + (size_t)c * B * crop_floats,
                            (size_t)nb * crop_floats * sizeof(float));
            data_time += now_sec() - d0;
            openblas_set_num_threads(1);
            const AsHooks stop_hooks = { (const volatile int *)&g_stop, NULL, NULL };
            int rc = as_train_crops_encode(&tc, &m->enc, crops, nc, nb, S, o.pairing,
                                           (float)o.mass, o.threads, &stop_hooks, &err);
            openblas_set_num_threads(o.threads);
            if (rc == AS_ERR_CANCELLED) { /* redo this batch after --resume */
                rs.cursor = cursor_before;
                rs.crop_rng = rng_before;
                stop_reason = "interrupted (Ctrl-C)";
                break;
            }
            AsTrainLosses L;
            if (rc || as_train_forward_backward(&t, &tc.batch_view, &L, &err)) {
                fprintf(stderr, "%s" CMD ": %s\n", tty ? "\n" : "", err.msg);
                goto done;
            }
            as_train_adamw_step(&t);
            rs.global_step++;
            run_steps++;
            run_images += nb;
            step_in_epoch++;
            double el = now_sec() - run_start;
            double ips = run_images / (el > 0 ? el : 1e-9);
            long left = (long)(o.epochs - rs.epoch - 1) * imgs.count + (imgs.count - rs.cursor);
            char eta[32];
            fmt_duration(left / (ips > 0 ? ips : 1e-9), eta, sizeof eta);
            fprintf(csv, "%d,%d,%lld,%d,%.7f,%.7f,%.7f,%.6g,%.3f\n", rs.epoch + 1,
                    step_in_epoch, (long long)rs.global_step, nb, L.loss, L.loss_ce,
                    L.loss_corr, t.hyper.lr, ips);
            if (tty || run_steps % o.log_every == 0 || run_steps == 1)
                fprintf(stderr,
                        "%sepoch %d/%d step %d/%d | %.2f img/s | ETA %s | loss %.4f "
                        "(query ce %.4f, correlation %.4f)%s",
                        tty ? "\r" : "", rs.epoch + 1, o.epochs, step_in_epoch, steps_per_epoch,
                        ips, eta, L.loss, L.loss_ce, L.loss_corr, tty ? "   " : "\n");
        }
        if (stop_reason)
            break;
        if (whole_epoch && epoch_images == 0) {
            fprintf(stderr, CMD ": none of the %d images in %s could be read\n", imgs.count,
                    o.images);
            goto done;
        }
        fflush(csv);
        if (tty)
            fputc('\n', stderr);
        /* end of the epoch: the checkpoint says "epoch N done" like the reference */
        rs.cursor = 0;
        RunState next = rs;
        next.epoch = rs.epoch + 1;
        /* the saved learning rate is the next epoch's, as after the reference's
         * scheduler.step() */
        t.hyper.lr = as_train_lr_at_epoch(rs.base_lr, next.epoch, o.lr_step, o.lr_gamma);
        char name[64];
        snprintf(name, sizeof name, "epoch%d.pth", rs.epoch + 1);
        if (save(&o, m, &t, &next, imgs.count, name, rs.epoch + 1))
            goto done;
        fprintf(stderr, CMD ": saved %s/%s\n", o.rundir, name);
        if (!o.keep_all && rs.epoch > 0) {
            char old[4096];
            snprintf(old, sizeof old, "%s/epoch%d.pth", o.rundir, rs.epoch);
            unlink(old);
        }
    }
    if (tty)
        fputc('\n', stderr);
    if (stop_reason) {
        if (save(&o, m, &t, &rs, imgs.count, "interrupted.pth", rs.epoch))
            goto done;
        fprintf(stderr, CMD ": %s: saved %s/interrupted.pth (epoch %d, image %d of %d); "
                        "continue with --resume %s/interrupted.pth\n",
                stop_reason, o.rundir, rs.epoch + 1, rs.cursor, imgs.count, o.rundir);
    } else {
        char ip[4096];
        snprintf(ip, sizeof ip, "%s/interrupted.pth", o.rundir);
        unlink(ip); /* finished: an older interruption point is stale */
    }
    double total = now_sec() - run_start;
    double step_t = t.time_forward + t.time_backward + t.time_optim + tc.time_encoder;
    if (run_steps)
        fprintf(stderr,
                CMD ": %d steps, %ld images in %.1f s: %.2f images/s; time in encoder %.1f%%, "
                    "decoder forward+losses %.1f%%, backward %.1f%%, AdamW %.1f%%, data %.1f%%"
                    "%s\n",
                run_steps, run_images, total, run_images / (total > 0 ? total : 1e-9),
                100 * tc.time_encoder / total, 100 * t.time_forward / total,
                100 * t.time_backward / total, 100 * t.time_optim / total,
                100 * data_time / total, step_t > total ? " (overlapping)" : "");
    if (g_bad_images)
        fprintf(stderr, CMD ": %d unreadable images were skipped\n", g_bad_images);
    status = stop_reason && g_stop ? 130 : 0;
done:
    signal(SIGINT, SIG_DFL);
    if (csv)
        fclose(csv);
    as_trainer_free(&t);
    as_train_crops_free(&tc);
    as_pth_free(&resume_pth);
    as_model_free(m);
    free_images(&imgs);
    free(crops);
    free(order);
    return status;
}
