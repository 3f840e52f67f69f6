/* cmd_train_step: the 'alignseg train-step' sub-command: exactly one training
 * step on given normalised crops (global first), as the reference check of
 * the training code. Writes the weights and AdamW state after the step and,
 * with --dump, the losses, foreground masks, adapted prototypes and the
 * gradient of every trained parameter as .npy files named as in the
 * reference data (tests/data/reference/train_tiny). */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "atomic.h"
#include "cli.h"
#include "commands.h"
#include "npy.h"
#include "pth.h"
#include "crops.h"
#include "train.h"
#include "train_ckpt.h"
#include "train_options.h"

#define CMD "alignseg train-step"
#define MAX_CROPS 16

static void usage(FILE *f)
{
    fprintf(f,
            "Usage: " CMD " -m BEFORE.pth --crops crop0.npy crop1.npy [crop2.npy ...] -o AFTER.pth\n"
            "       [--dump DIR] [OPTIONS]\n"
            "\n"
            "Run exactly one training step of the decoder on given crops and write the\n"
            "weights and optimizer state after it.\n"
            "\n"
            "  -m, --model FILE          checkpoint with encoder and decoder (AlignSeg .pth)\n"
            "  -b, --backbone FILE       DINO backbone, if FILE holds only the decoder\n"
            "  --crops A.npy B.npy ...   normalised crops (B,3,S,S), the global crop first\n"
            "  -o, --output FILE         checkpoint after the step (.pth)\n"
            "  --dump DIR                write loss.json, fg_masks.npy, queries_crop{i}.npy,\n"
            "                            gc_tokens.npy, lc_tokens.npy, grad.<param>.npy\n"
            "  --encoder-heads H         encoder heads (default D/64)\n"
            "  --decoder-heads H         decoder heads (default 3)\n"
            "  --pairing P               reference (default) or same-image\n"
            "  --lr X                    learning rate (default 5e-4)\n"
            "  --weight-decay X          weight decay of the weights (default 0.04)\n"
            "  --negative-pressure B     of the correlation loss (default 0.11)\n"
            "  --mass-threshold T        attention mass kept as foreground (default 0.6)\n"
            "  --threads N               encoder threads (default 1)\n");
}

static int write_f32(const char *dir, const char *name, int ndim, const int64_t *shape,
                     const float *data)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    AsError err = { 0 };
    if (as_npy_write(path, AS_DT_F32, ndim, shape, data, &err)) {
        fprintf(stderr, CMD ": %s\n", err.msg);
        return -1;
    }
    return 0;
}

/* epoch, net and optimizer of the input checkpoint when it is a torch zip */
static void read_meta(const char *path, AsPth *pth, int64_t *epoch, char *net, size_t netlen)
{
    AsError err = { 0 };
    *epoch = 0;
    snprintf(net, netlen, "vit_small");
    if (as_pth_read(path, pth, AS_PTH_BORROW, &err)) {
        memset(pth, 0, sizeof *pth);
        return;
    }
    double e;
    if (as_pv_number(as_pv_get(pth->root, "epoch"), &e) && e >= 0 && e < 1e9)
        *epoch = (int64_t)e;
    const AsPValue *n = as_pv_get(pth->root, "net");
    if (n && n->kind == AS_PV_STR)
        snprintf(net, netlen, "%s", n->s);
}

/* the options of `train` that a single step takes */
static bool step_option(const char *flag)
{
    static const char *const opts[] = { "--encoder-heads", "--decoder-heads", "--lr",
                                        "--weight-decay", "--negative-pressure",
                                        "--mass-threshold", "--threads" };
    for (size_t i = 0; i < sizeof opts / sizeof *opts; i++)
        if (!strcmp(flag, opts[i]))
            return true;
    return false;
}

int cmd_train_step(int argc, char **argv)
{
    const char *model = NULL, *backbone = NULL, *output = NULL, *dump = NULL;
    const char *crop_paths[MAX_CROPS];
    int ncrops = 0;
    AsTrainOptions to;
    as_train_options_default(&to);
    to.threads = 1;
    AsPairing pairing = AS_PAIRING_REFERENCE;
    double v;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int has = i + 1 < argc;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        } else if ((!strcmp(a, "-m") || !strcmp(a, "--model")) && has) {
            model = argv[++i];
        } else if ((!strcmp(a, "-b") || !strcmp(a, "--backbone")) && has) {
            backbone = argv[++i];
        } else if ((!strcmp(a, "-o") || !strcmp(a, "--output")) && has) {
            output = argv[++i];
        } else if (!strcmp(a, "--dump") && has) {
            dump = argv[++i];
        } else if (!strcmp(a, "--crops") && has) {
            while (i + 1 < argc && argv[i + 1][0] != '-') {
                if (ncrops == MAX_CROPS) {
                    fprintf(stderr, CMD ": at most %d crops\n", MAX_CROPS);
                    return 2;
                }
                crop_paths[ncrops++] = argv[++i];
            }
        } else if (step_option(a) && has) { /* limits: train_options.h, as `train` */
            AsError e = { 0 };
            const AsTrainLimit *l = &as_train_limits[as_train_limit_find(a)];
            if (!cli_parse_double("train-step", a, argv[++i], l->lo, l->hi, &v))
                return 2;
            if (as_train_option_set(&to, as_train_limit_find(a), v, a, &e)) {
                fprintf(stderr, CMD ": %s\n", e.msg);
                return 2;
            }
        } else if (!strcmp(a, "--pairing") && has) {
            const char *p = argv[++i];
            if (!as_pairing_parse(p, &pairing)) {
                fprintf(stderr, CMD ": --pairing: '%s' is not reference or same-image\n", p);
                return 2;
            }
        } else {
            fprintf(stderr, CMD ": unknown option or missing value: %s\n", a);
            usage(stderr);
            return 2;
        }
    }
    AsModelOptions mopt = { to.encoder_heads, to.decoder_heads, false };
    AsTrainHyper hyper;
    as_train_hyper_default(&hyper);
    hyper.lr = to.lr;
    hyper.weight_decay = to.weight_decay;
    hyper.negative_pressure = (float)to.negative_pressure;
    const int threads = to.threads;
    const double mass = to.mass_threshold;
    if (!model || !output || ncrops < 2) {
        fprintf(stderr, CMD ": need -m MODEL, -o OUTPUT and --crops with a global and at least "
                        "one local crop\n");
        usage(stderr);
        return 2;
    }

    int status = 1;
    AsError err = { 0 };
    AsModel *m = NULL;
    AsNpy crops[MAX_CROPS];
    memset(crops, 0, sizeof crops);
    float *all = NULL;
    AsTrainer t;
    memset(&t, 0, sizeof t);
    AsTrainCrops tc;
    as_train_crops_init(&tc);
    AsPth meta;
    memset(&meta, 0, sizeof meta);
    int64_t epoch;
    char net[64];

    if (as_model_load(model, backbone, &mopt, &m, &err)) {
        fprintf(stderr, CMD ": %s\n", err.msg);
        goto done;
    }
    if (!m->has_decoder) {
        fprintf(stderr, CMD ": %s has no decoder (%s): train-step needs an AlignSeg "
                        "checkpoint\n", model, as_decoder_param_table[AS_DP_QUERIES].pattern);
        goto done;
    }
    read_meta(model, &meta, &epoch, net, sizeof net);
    int B = 0, S = 0;
    for (int c = 0; c < ncrops; c++) {
        if (as_npy_read(crop_paths[c], &crops[c], &err) || as_npy_to_f32(&crops[c], &err)) {
            fprintf(stderr, CMD ": %s\n", err.msg);
            goto done;
        }
        const AsNpy *a = &crops[c];
        if (a->ndim != 4 || a->shape[1] != 3 || a->shape[2] != a->shape[3] || a->shape[0] < 1 ||
            a->shape[0] > 4096 || a->shape[2] < 1 || a->shape[2] > 4096) {
            fprintf(stderr, CMD ": %s: expected normalised crops of shape (B, 3, S, S)\n",
                    crop_paths[c]);
            goto done;
        }
        for (int64_t k = 0; k < a->numel; k++)
            if (!isfinite(((const float *)a->data)[k])) {
                fprintf(stderr, CMD ": %s: value %lld is %g: crops must be finite\n",
                        crop_paths[c], (long long)k, (double)((const float *)a->data)[k]);
                goto done;
            }
        if (c == 0) {
            B = (int)a->shape[0];
            S = (int)a->shape[2];
        } else if (a->shape[0] != B || a->shape[2] != S) {
            fprintf(stderr, CMD ": %s: shape differs from %s (all crops (%d, 3, %d, %d))\n",
                    crop_paths[c], crop_paths[0], B, S, S);
            goto done;
        }
    }
    size_t per = (size_t)B * 3 * S * S;
    all = malloc((size_t)ncrops * per * sizeof(float));
    if (!all) {
        fprintf(stderr, CMD ": out of memory\n");
        goto done;
    }
    for (int c = 0; c < ncrops; c++)
        memcpy(all + (size_t)c * per, crops[c].data, per * sizeof(float));
    if (as_train_crops_encode(&tc, &m->enc, all, ncrops, B, S, pairing, (float)mass, threads,
                              NULL, &err)) {
        fprintf(stderr, CMD ": encoder: %s\n", err.msg);
        goto done;
    }
    if (as_trainer_init(&t, &m->dec, &hyper, &err)) {
        fprintf(stderr, CMD ": %s\n", err.msg);
        goto done;
    }
    const AsPValue *opt = meta.root ? as_pv_get(meta.root, "optimizer") : NULL;
    if (opt && opt->kind == AS_PV_DICT) {
        double lr_keep = t.hyper.lr;
        if (as_train_load_optimizer(&t, opt, model, &err)) {
            fprintf(stderr, CMD ": %s\n", err.msg);
            goto done;
        }
        t.hyper.lr = lr_keep; /* the command line decides */
    }
    if (as_trainer_check_finite(&t, model, &err)) {
        fprintf(stderr, CMD ": %s\n", err.msg);
        goto done;
    }
    AsTrainLosses L;
    if (as_train_forward_backward(&t, &tc.batch_view, &L, &err)) {
        fprintf(stderr, CMD ": %s\n", err.msg);
        goto done;
    }
    if (!isfinite(L.loss) || as_trainer_check_finite(&t, "after the backward pass", &err)) {
        fprintf(stderr, CMD ": %s%s: nothing written\n",
                isfinite(L.loss) ? "" : "the loss is not finite", isfinite(L.loss) ? err.msg : "");
        goto done;
    }
    printf("loss %.7f (query_ce %.7f, correlation %.7f)\n", L.loss, L.loss_ce, L.loss_corr);
    if (dump) {
        if (mkdir(dump, 0777) && errno != EEXIST) {
            fprintf(stderr, CMD ": cannot create %s: %s\n", dump, strerror(errno));
            goto done;
        }
        char path[4096];
        snprintf(path, sizeof path, "%s/loss.json", dump);
        char text[256];
        int tn = snprintf(text, sizeof text,
                          "{\n \"loss\": %.9g,\n \"loss_query_ce\": %.9g,\n"
                          " \"loss_correlation\": %.9g\n}\n",
                          L.loss, L.loss_ce, L.loss_corr);
        if (as_atomic_write_file(path, text, (size_t)tn, NULL) != 0) {
            fprintf(stderr, CMD ": cannot write %s\n", path);
            goto done;
        }
        const int n = tc.n, D = tc.dim, Q = m->dec.cfg.queries, nl = ncrops - 1;
        float *fgf = malloc((size_t)ncrops * B * n * sizeof(float));
        if (!fgf)
            goto done;
        for (size_t k = 0; k < (size_t)ncrops * B * n; k++)
            fgf[k] = tc.fg[k];
        int64_t sh_fg[3] = { (int64_t)ncrops * B, tc.gh, tc.gw };
        int rc = write_f32(dump, "fg_masks.npy", 3, sh_fg, fgf);
        free(fgf);
        int64_t sh_gc[3] = { B, n, D }, sh_lc[4] = { B, nl, n, D };
        if (!rc)
            rc = write_f32(dump, "gc_tokens.npy", 3, sh_gc, tc.tokens);
        if (!rc)
            rc = write_f32(dump, "lc_tokens.npy", 4, sh_lc, tc.lc);
        for (int c = 0; c < ncrops && !rc; c++) {
            char name[64];
            snprintf(name, sizeof name, "queries_crop%d.npy", c);
            int64_t sh[3] = { B, Q, D };
            rc = write_f32(dump, name, 3, sh, t.queries + (size_t)c * B * Q * D);
        }
        for (int k = 0; k < t.nparams && !rc; k++) {
            const AsParam *p = &t.params[k];
            if (!p->trained)
                continue;
            char name[192];
            snprintf(name, sizeof name, "grad.%s.npy", p->name);
            rc = write_f32(dump, name, p->ndim, p->shape, t.grad + p->off);
        }
        if (rc)
            goto done;
    }
    as_train_adamw_step(&t);
    if (as_trainer_check_finite(&t, "after the AdamW step", &err)) {
        fprintf(stderr, CMD ": %s: nothing written\n", err.msg);
        goto done;
    }
    if (as_train_save(output, m, &t, epoch + 1, net, false, 0.0, NULL, &err)) {
        fprintf(stderr, CMD ": %s\n", err.msg);
        goto done;
    }
    printf("wrote %s%s%s\n", output, dump ? " and " : "", dump ? dump : "");
    status = 0;
done:
    as_trainer_free(&t);
    as_train_crops_free(&tc);
    free(all);
    for (int c = 0; c < MAX_CROPS; c++)
        as_npy_free(&crops[c]);
    as_pth_free(&meta);
    as_model_free(m);
    return status;
}
