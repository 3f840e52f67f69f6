/* cmd_bench: the 'alignseg bench' sub-command. Builds randomly initialised
 * weights of a published shape in memory, runs the whole per-image pipeline
 * (encoder, decoder, assignment, foreground mask, upsampling) and prints
 * per-stage medians, GFLOP, GFLOPS and the share of the sgemm peak, which it
 * measures on the model's own matrix shapes. Optional: peak RSS, checkpoint
 * load time, slider relabel time, a per-stage encoder breakdown (timed by
 * as_vit_forward_timed inside the real forward pass), and
 * --save-weights / --save-input / --dump for bench/compare's equality check
 * against our PyTorch implementation and ONNX Runtime. */
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "activations.h"
#include "cli.h"
#include "commands.h"
#include "cpu.h"
#include "decoder.h"
#include "decoder_params.h"
#include "error.h"
#include "gemm.h"
#include "linear.h"
#include "model.h"
#include "npy.h"
#include "pickle.h"
#include "pool.h"
#include "pth.h"
#include "segment.h"
#include "vit.h"

enum { ST_ENCODER, ST_DECODER, ST_ASSIGN, ST_FOREGROUND, ST_UPSAMPLE, ST_COUNT };
static const char *const stage_names[ST_COUNT] = { "encoder", "decoder", "assignment",
                                                   "foreground", "upsample" };

typedef struct {
    AsArch arch;
    int patch, size, threads, runs, queries, dec_layers;
    float mass_threshold;
    bool peak, load, breakdown, json;
    const char *save_weights, *save_input, *dump;
} BenchArgs;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(const double *v, int n)
{
    if (n <= 0)
        return 0.0;
    double *s = malloc((size_t)n * sizeof *s);
    if (!s)
        return v[0];
    memcpy(s, v, (size_t)n * sizeof *s);
    qsort(s, (size_t)n, sizeof *s, cmp_double);
    const double m = n % 2 ? s[n / 2] : 0.5 * (s[n / 2 - 1] + s[n / 2]);
    free(s);
    return m;
}

static double peak_rss_mib(void)
{
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0)
        return 0.0;
    return (double)ru.ru_maxrss / 1024.0; /* Linux: KiB */
}

/* ---------------------------------------------------------------- FLOPs */

/* 2*m*n*k for y (m,n) = x (m,k) W^T. */
static double gemm_flop(double m, double n, double k)
{
    return 2.0 * m * n * k;
}

/* GFLOP of each encoder stage (as_vit_forward_timed's stages) at ntok tokens
 * (n patches), all blocks together. */
static void encoder_stage_gflop(const AsEncoderConfig *c, int ntok, int n,
                                double gflop[AS_VIT_STAGE_COUNT])
{
    const double nt = ntok, d = c->dim, hid = c->mlp_hidden, L = c->depth;
    for (int k = 0; k < AS_VIT_STAGE_COUNT; k++)
        gflop[k] = 0.0;
    gflop[AS_VIT_PATCH] = gemm_flop(n, d, 3.0 * c->patch * c->patch) * 1e-9;
    gflop[AS_VIT_QKV] = L * gemm_flop(nt, 3.0 * d, d) * 1e-9;
    gflop[AS_VIT_ATTENTION] = L * 2.0 * gemm_flop(nt, nt, d) * 1e-9;
    gflop[AS_VIT_PROJ] = L * gemm_flop(nt, d, d) * 1e-9;
    gflop[AS_VIT_FC1] = L * gemm_flop(nt, hid, d) * 1e-9;
    gflop[AS_VIT_FC2] = L * gemm_flop(nt, d, hid) * 1e-9;
}

static double decoder_gflop(const AsDecoderConfig *c, int n)
{
    const double q = c->queries, d = c->dim, h = c->hidden;
    const double cross = gemm_flop(q, d, d) + gemm_flop(n, 2 * d, d) + 2.0 * gemm_flop(q, n, d) +
                         gemm_flop(q, d, d);
    const double self = gemm_flop(q, 3 * d, d) + 2.0 * gemm_flop(q, q, d) + gemm_flop(q, d, d);
    const double ffn = gemm_flop(q, h, d) + gemm_flop(q, d, h);
    /* by default only the last layer runs (every layer reads Q0) */
    return (cross + self + ffn) * 1e-9;
}

/* ---------------------------------------------------------------- input */

/* The deterministic test image, normalised (3, s, s): the same formula as
 * bench/torch_alignseg.py test_image and bench/ort_run.js testImage. */
static void test_image(int s, float *out)
{
    static const double mean[3] = { 0.485, 0.456, 0.406 }, stdv[3] = { 0.229, 0.224, 0.225 };
    for (int c = 0; c < 3; c++)
        for (int y = 0; y < s; y++)
            for (int x = 0; x < s; x++) {
                const double v = 0.5 + 0.5 * sin(0.05 * x * (c + 1) + 0.031 * y * (3 - c) + c);
                out[((size_t)c * s + y) * s + x] = (float)((v - mean[c]) / stdv[c]);
            }
}

/* ---------------------------------------------------------------- pipeline */

typedef struct {
    AsVitWorkspace vit;
    AsDecoderWorkspace dec;
    float *tn, *pn, *assign, *attn_mean;
    int32_t *labels_patch, *labels_full;
    uint8_t *fg;
    int h, w, n, q, dim;
} Pipeline;

static void pipeline_free(Pipeline *p)
{
    as_vit_workspace_free(&p->vit);
    as_decoder_workspace_free(&p->dec);
    free(p->tn);
    free(p->pn);
    free(p->assign);
    free(p->attn_mean);
    free(p->labels_patch);
    free(p->labels_full);
    free(p->fg);
    memset(p, 0, sizeof *p);
}

static int pipeline_init(Pipeline *p, const AsModel *m, int h, int w, AsError *err)
{
    memset(p, 0, sizeof *p);
    as_vit_workspace_init(&p->vit);
    as_decoder_workspace_init(&p->dec);
    int rc = as_vit_workspace_prepare(&p->vit, &m->enc, h, w, err);
    if (rc)
        return rc;
    const int n = p->vit.n, d = m->enc.cfg.dim, q = m->dec.cfg.queries;
    rc = as_decoder_workspace_prepare(&p->dec, &m->dec, n, err);
    if (rc)
        return rc;
    p->h = h;
    p->w = w;
    p->n = n;
    p->q = q;
    p->dim = d;
    p->tn = malloc((size_t)n * d * sizeof(float));
    p->pn = malloc((size_t)q * d * sizeof(float));
    p->assign = malloc((size_t)n * q * sizeof(float));
    p->attn_mean = malloc((size_t)n * sizeof(float));
    p->labels_patch = malloc((size_t)n * sizeof(int32_t));
    p->labels_full = malloc((size_t)h * w * sizeof(int32_t));
    p->fg = malloc((size_t)n);
    if (!p->tn || !p->pn || !p->assign || !p->attn_mean || !p->labels_patch || !p->labels_full ||
        !p->fg)
        return as_error_set(err, AS_ERR_NOMEM, "out of memory for a %dx%d pipeline", w, h);
    return 0;
}

/* METHOD.md 4.3-4.5 at patch resolution: cosine similarity, softmax, argmax. */
static void assignment(Pipeline *p)
{
    const int n = p->n, q = p->q, d = p->dim;
    as_l2norm_rows(p->vit.tokens, n, d, 1e-10f, p->tn);
    as_l2norm_rows(p->dec.out, q, d, 1e-10f, p->pn);
    as_sgemm_rows(true, n, q, d, 1.0f, p->tn, d, p->pn, d, 0.0f, p->assign, q);
    as_softmax_rows(p->assign, n, q);
    for (int i = 0; i < n; i++) {
        const float *r = p->assign + (size_t)i * q;
        int best = 0;
        for (int k = 1; k < q; k++)
            if (r[k] > r[best])
                best = k;
        p->labels_patch[i] = best;
    }
}

static void foreground(Pipeline *p, int heads, float mass_threshold)
{
    const int n = p->n;
    for (int i = 0; i < n; i++) {
        float s = 0.0f;
        for (int h = 0; h < heads; h++)
            s += p->vit.cls_attn[(size_t)h * n + i];
        p->attn_mean[i] = s / (float)heads;
    }
    as_foreground_mask(p->attn_mean, p->vit.gh, p->vit.gw, mass_threshold, p->fg);
}

/* One image through every stage; t[ST_*] receives seconds per stage. */
static int pipeline_run(Pipeline *p, const AsModel *m, const float *input, float mass_threshold,
                        double t[ST_COUNT], AsError *err)
{
    double t0 = now_s();
    int rc = as_vit_forward(&m->enc, input, p->h, p->w, &p->vit, NULL, err);
    if (rc)
        return rc;
    double t1 = now_s();
    t[ST_ENCODER] = t1 - t0;
    rc = as_decoder_forward(&m->dec, p->vit.tokens, p->n, &p->dec, err);
    if (rc)
        return rc;
    t0 = now_s();
    t[ST_DECODER] = t0 - t1;
    assignment(p);
    t1 = now_s();
    t[ST_ASSIGN] = t1 - t0;
    foreground(p, m->enc.cfg.heads, mass_threshold);
    t0 = now_s();
    t[ST_FOREGROUND] = t0 - t1;
    as_upsample_argmax(p->assign, p->vit.gh, p->vit.gw, p->q, p->h, p->w, p->labels_full);
    t1 = now_s();
    t[ST_UPSAMPLE] = t1 - t0;
    return 0;
}

/* ---------------------------------------------------------------- sgemm peak */

/* Best GFLOPS of OpenBLAS sgemm (as_sgemm) on the encoder's linear-layer shapes at this
 * input size (x (m,k) times W^T, W (n,k) row-major, as as_linear does it);
 * *packed gets the best of our packed GEMM (gemm.h) on the same shapes (0
 * where it does not run). */
static double sgemm_peak(const AsEncoderConfig *c, int ntok, char *best_shape, size_t len,
                         double *packed)
{
    *packed = 0.0;
    const int d = c->dim, hid = c->mlp_hidden;
    const int shapes[4][3] = { { ntok, 3 * d, d }, { ntok, d, d }, { ntok, hid, d }, { ntok, d, hid } };
    const char *names[4] = { "qkv", "proj", "fc1", "fc2" };
    double best = 0.0;
    const size_t maxa = (size_t)ntok * hid, maxw = (size_t)hid * d;
    float *a = malloc(maxa * sizeof *a), *wt = malloc(maxw * sizeof *wt),
          *y = malloc(maxa * sizeof *y);
    if (!a || !wt || !y) {
        free(a);
        free(wt);
        free(y);
        return 0.0;
    }
    for (size_t i = 0; i < maxa; i++)
        a[i] = (float)((i * 2654435761u) % 1000) * 1e-3f - 0.5f;
    for (size_t i = 0; i < maxw; i++)
        wt[i] = (float)((i * 40503u) % 1000) * 1e-3f - 0.5f;
    for (int s = 0; s < 4; s++) {
        const int m = shapes[s][0], n = shapes[s][1], k = shapes[s][2];
        const double flop = gemm_flop(m, n, k);
        /* enough repetitions for ~0.15 s per shape at 150 GFLOPS, at least 3 */
        int reps = (int)(0.15 * 150e9 / flop);
        if (reps < 3)
            reps = 3;
        if (reps > 200)
            reps = 200;
        double tbest = 1e30;
        as_sgemm(false, true, m, n, k, 1.0f, a, k, wt, k, 0.0f, y, n);
        for (int r = 0; r < reps; r++) {
            const double t0 = now_s();
            as_sgemm(false, true, m, n, k, 1.0f, a, k, wt, k, 0.0f, y, n);
            const double dt = now_s() - t0;
            if (dt < tbest)
                tbest = dt;
        }
        const double g = flop / tbest * 1e-9;
        if (g > best) {
            best = g;
            snprintf(best_shape, len, "%s %dx%dx%d", names[s], m, n, k);
        }
        float *pk =
            aligned_alloc(64, (as_gemm_packed_floats(n, k) * sizeof(float) + 63) / 64 * 64);
        if (pk) {
            as_gemm_pack(wt, n, k, pk);
            double pbest = 1e30;
            for (int r = 0; r <= reps; r++) { /* the first is a warm-up */
                const double t0 = now_s();
                as_gemm_packed(a, m, k, NULL, pk, n, k, NULL, AS_EPI_STORE, y, n);
                const double dt = now_s() - t0;
                if (r && dt < pbest)
                    pbest = dt;
            }
            if (flop / pbest * 1e-9 > *packed)
                *packed = flop / pbest * 1e-9;
            free(pk);
        }
    }
    free(a);
    free(wt);
    free(y);
    return best;
}

/* ---------------------------------------------------------------- breakdown */

/* The exact-erf GELU alone on the hidden activations, once per block:
 * what fusing it into fc1 saves at most. */
static double gelu_alone(const AsEncoderConfig *c, AsVitWorkspace *ws)
{
    const double t0 = now_s();
    for (int i = 0; i < c->depth; i++)
        as_gelu_inplace(ws->hidden, (long)ws->ntok * c->mlp_hidden);
    return now_s() - t0;
}

/* ---------------------------------------------------------------- files */

/* The model's tensors as an AlignSeg checkpoint: {"state_dict": {...}} with
 * the encoder under "backbone.". Tensor data is borrowed from the model. */
static int write_checkpoint(const AsModel *m, const char *path, AsError *err)
{
    AsPValue *root = as_pv_dict(false), *sd = as_pv_dict(true);
    if (!root || !sd) {
        as_pv_free(root);
        as_pv_free(sd);
        return as_error_set(err, AS_ERR_NOMEM, "out of memory building %s", path);
    }
    int rc = 0;
    for (size_t i = 0; i < m->weights.count && !rc; i++) {
        const AsTensor *t = &m->weights.items[i];
        char key[512];
        snprintf(key, sizeof key, "%s%s", as_is_decoder_key(t->name) ? "" : "backbone.", t->name);
        AsPValue *v = as_pv_tensor_f32(t->ndim, t->shape, t->data, false);
        if (!v)
            rc = as_error_set(err, AS_ERR_NOMEM, "out of memory building %s", path);
        else
            rc = as_pv_dict_set_str(sd, key, v, err);
    }
    if (!rc)
        rc = as_pv_dict_set_str(root, "state_dict", sd, err);
    else
        as_pv_free(sd);
    if (!rc)
        rc = as_pth_write(path, NULL, root, err);
    as_pv_free(root);
    return rc;
}

static int save_npy_f32(const char *dir, const char *name, int ndim, const int64_t *shape,
                        const void *data, AsDtype dt, AsError *err)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s.npy", dir, name);
    return as_npy_write(path, dt, ndim, shape, data, err);
}

static int dump_outputs(const Pipeline *p, const AsModel *m, const char *dir, AsError *err)
{
    const int64_t tok[2] = { p->n, p->dim }, pro[2] = { p->q, p->dim },
                  att[2] = { m->enc.cfg.heads, p->n }, asg[2] = { p->n, p->q },
                  lab[2] = { p->h, p->w }, fg[1] = { p->n };
    int rc = save_npy_f32(dir, "tokens", 2, tok, p->vit.tokens, AS_DT_F32, err);
    if (!rc)
        rc = save_npy_f32(dir, "prototypes", 2, pro, p->dec.out, AS_DT_F32, err);
    if (!rc)
        rc = save_npy_f32(dir, "cls_attn", 2, att, p->vit.cls_attn, AS_DT_F32, err);
    if (!rc)
        rc = save_npy_f32(dir, "assign", 2, asg, p->assign, AS_DT_F32, err);
    if (!rc)
        rc = save_npy_f32(dir, "labels_full", 2, lab, p->labels_full, AS_DT_I32, err);
    if (!rc)
        rc = save_npy_f32(dir, "fg_mask", 1, fg, p->fg, AS_DT_U8, err);
    return rc;
}

/* ---------------------------------------------------------------- options */

static const char help[] =
    "Usage: alignseg bench [OPTIONS]\n"
    "\n"
    "Measure the per-image pipeline (encoder, decoder, assignment, foreground mask,\n"
    "upsampling) on randomly initialised weights of a published shape; no files needed.\n"
    "Prints the median of R runs after one warm-up per stage, GFLOP, GFLOPS and the\n"
    "share of the sgemm peak measured on the model's own matrix shapes (OpenBLAS),\n"
    "then our packed GEMM's best on those shapes and an FMA-only loop: the CPU's\n"
    "arithmetic ceiling, with the encoder's share of it.\n"
    "\n"
    "  --arch vit_small|vit_base  encoder (default vit_small)\n"
    "  --patch 16|8               patch size (default 16)\n"
    "  --size S                   square input side, a multiple of the patch (default 448)\n"
    "  --threads N                CPU threads (default: all cores)\n"
    "  --runs R                   timed runs after the warm-up (default 5)\n"
    "  --queries Q                prototypes (default 5)\n"
    "  --decoder-layers L         decoder layers (default 1)\n"
    "  --no-peak                  skip the peak measurements (OpenBLAS sgemm, our GEMM, FMA loop)\n"
    "  --no-load                  skip the checkpoint load timing (writes a temp .pth)\n"
    "  --breakdown                also time the encoder's stages one by one\n"
    "  --json                     print one JSON line instead of the table\n"
    "  --save-weights FILE.pth    write the random model as an AlignSeg checkpoint\n"
    "  --save-input FILE.npy      write the normalised (3,S,S) test input\n"
    "  --dump DIR                 write tokens, prototypes, cls_attn, assign, labels_full,\n"
    "                             fg_mask (.npy) of the last run to DIR (must exist)\n";

#define CMD "bench"

/* 0 ok, 1 = --help printed, 2 usage error */
static int parse_args(int argc, char **argv, BenchArgs *a)
{
    *a = (BenchArgs){ .arch = AS_ARCH_VIT_SMALL, .patch = 16, .size = 448, .threads = 0,
                      .runs = 5, .queries = 5, .dec_layers = 1, .mass_threshold = 0.6f,
                      .peak = true, .load = true };
    static const char *const archs[] = { "vit_small", "vit_base" };
    static const AsArch arch_ids[] = { AS_ARCH_VIT_SMALL, AS_ARCH_VIT_BASE };
    for (int i = 1; i < argc; i++) {
        const char *o = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        bool ok = true, takes = true;
        int k = 0;
#define IS(x) (!strcmp(o, x))
        if (IS("--help") || IS("-h")) {
            fputs(help, stdout);
            return 1;
        } else if (IS("--no-peak")) {
            a->peak = false, takes = false;
        } else if (IS("--no-load")) {
            a->load = false, takes = false;
        } else if (IS("--breakdown")) {
            a->breakdown = true, takes = false;
        } else if (IS("--json")) {
            a->json = true, takes = false;
        } else if (IS("--arch")) {
            ok = cli_parse_choice(CMD, o, v, archs, 2, &k);
            a->arch = arch_ids[k];
        } else if (IS("--patch")) {
            ok = cli_parse_int(CMD, o, v, 8, 16, &a->patch);
            if (ok && a->patch != 8 && a->patch != 16) {
                fprintf(stderr, "alignseg bench: --patch: must be 8 or 16, not %d\n", a->patch);
                ok = false;
            }
        } else if (IS("--size")) {
            ok = cli_parse_int(CMD, o, v, 1, 4096, &a->size);
        } else if (IS("--threads")) {
            ok = cli_parse_int(CMD, o, v, 1, 1024, &a->threads);
        } else if (IS("--runs")) {
            ok = cli_parse_int(CMD, o, v, 1, 100000, &a->runs);
        } else if (IS("--queries")) {
            ok = cli_parse_int(CMD, o, v, 1, 1000, &a->queries);
        } else if (IS("--decoder-layers")) {
            ok = cli_parse_int(CMD, o, v, 1, 100, &a->dec_layers);
        } else if (IS("--save-weights")) {
            ok = cli_parse_string(CMD, o, v, &a->save_weights);
        } else if (IS("--save-input")) {
            ok = cli_parse_string(CMD, o, v, &a->save_input);
        } else if (IS("--dump")) {
            ok = cli_parse_string(CMD, o, v, &a->dump);
        } else {
            fprintf(stderr, "alignseg bench: unknown option '%s' (see 'alignseg bench --help')\n",
                    o);
            return 2;
        }
#undef IS
        if (!ok)
            return 2;
        if (takes)
            i++;
    }
    if (a->size % a->patch) {
        fprintf(stderr, "alignseg bench: --size %d is not a multiple of the patch size %d\n",
                a->size, a->patch);
        return 2;
    }
    return 0;
}

/* ---------------------------------------------------------------- main */

static double model_mib(const AsModel *m)
{
    double bytes = 0;
    for (size_t i = 0; i < m->weights.count; i++)
        bytes += (double)m->weights.items[i].numel * sizeof(float);
    return bytes / (1024.0 * 1024.0);
}

static volatile float load_sink;

/* Write the model to a temporary .pth and time as_model_load (median of 3,
 * file in the page cache). Returns seconds, or a negative value on error. */
static double time_load(const AsModel *m, double *file_mb, AsError *err)
{
    char path[256];
    const char *tmp = getenv("TMPDIR");
    snprintf(path, sizeof path, "%s/alignseg-bench-%ld.pth", tmp && *tmp ? tmp : "/tmp",
             (long)getpid());
    if (write_checkpoint(m, path, err) != 0)
        return -1.0;
    FILE *f = fopen(path, "rb");
    *file_mb = 0;
    if (f) {
        if (fseek(f, 0, SEEK_END) == 0)
            *file_mb = (double)ftell(f) / 1e6;
        fclose(f);
    }
    double t[3];
    int k = 0;
    for (; k < 3; k++) {
        AsModel *m2 = NULL;
        AsModelOptions opt;
        memset(&opt, 0, sizeof opt);
        const double t0 = now_s();
        if (as_model_load(path, NULL, &opt, &m2, err) != 0) {
            unlink(path);
            return -1.0;
        }
        /* touch every page of the weights once, as the first inference would */
        float sink = 0;
        for (size_t i = 0; i < m2->weights.count; i++) {
            const AsTensor *tt = &m2->weights.items[i];
            for (int64_t j = 0; j < tt->numel; j += 1024)
                sink += tt->data[j];
        }
        load_sink = sink;
        t[k] = now_s() - t0;
        as_model_free(m2);
    }
    unlink(path);
    return median(t, k);
}

int cmd_bench(int argc, char **argv)
{
    BenchArgs a;
    int rc = parse_args(argc, argv, &a);
    if (rc)
        return rc == 1 ? 0 : 2;
    cli_set_threads(a.threads); /* 0: all cores */
    a.threads = as_threads();

    AsError err;
    as_error_clear(&err);
    AsModel *m = NULL;
    double t0 = now_s();
    if (as_model_random(a.arch, a.patch, a.queries, a.dec_layers, 12345, &m, &err) != 0) {
        fprintf(stderr, "alignseg bench: %s\n", err.msg);
        return 1;
    }
    const double t_build = now_s() - t0;
    const AsEncoderConfig *ec = &m->enc.cfg;
    if (a.save_weights && write_checkpoint(m, a.save_weights, &err) != 0) {
        fprintf(stderr, "alignseg bench: %s\n", err.msg);
        as_model_free(m);
        return 1;
    }

    const int s = a.size;
    float *input = malloc((size_t)3 * s * s * sizeof *input);
    Pipeline p;
    double (*times)[ST_COUNT] = calloc((size_t)a.runs, sizeof *times);
    double *totals = calloc((size_t)a.runs, sizeof *totals);
    int status = 1;
    if (!input || !times || !totals) {
        fprintf(stderr, "alignseg bench: out of memory\n");
        free(input);
        free(times);
        free(totals);
        as_model_free(m);
        return 1;
    }
    test_image(s, input);
    if (a.save_input) {
        const int64_t shape[3] = { 3, s, s };
        if (as_npy_write(a.save_input, AS_DT_F32, 3, shape, input, &err) != 0) {
            fprintf(stderr, "alignseg bench: %s\n", err.msg);
            goto done_nopipe;
        }
    }
    if (pipeline_init(&p, m, s, s, &err) != 0) {
        fprintf(stderr, "alignseg bench: %s\n", err.msg);
        pipeline_free(&p);
        goto done_nopipe;
    }

    /* warm-up, then R timed runs */
    double warm[ST_COUNT];
    if (pipeline_run(&p, m, input, a.mass_threshold, warm, &err) != 0) {
        fprintf(stderr, "alignseg bench: %s\n", err.msg);
        goto done;
    }
    for (int r = 0; r < a.runs; r++) {
        if (pipeline_run(&p, m, input, a.mass_threshold, times[r], &err) != 0) {
            fprintf(stderr, "alignseg bench: %s\n", err.msg);
            goto done;
        }
        totals[r] = 0;
        for (int k = 0; k < ST_COUNT; k++)
            totals[r] += times[r][k];
    }
    const double rss = peak_rss_mib();
    if (a.dump && dump_outputs(&p, m, a.dump, &err) != 0) {
        fprintf(stderr, "alignseg bench: %s\n", err.msg);
        goto done;
    }

    double med[ST_COUNT];
    for (int k = 0; k < ST_COUNT; k++) {
        for (int r = 0; r < a.runs; r++)
            totals[r] = times[r][k]; /* reused as a column, restored below */
        med[k] = median(totals, a.runs);
    }
    for (int r = 0; r < a.runs; r++) {
        totals[r] = 0;
        for (int k = 0; k < ST_COUNT; k++)
            totals[r] += times[r][k];
    }
    const double total = median(totals, a.runs);

    /* relabel after a slider move: foreground mask + full-resolution labels */
    double relabel[5];
    for (int r = 0; r < 5; r++) {
        t0 = now_s();
        foreground(&p, ec->heads, 0.3f + 0.1f * (float)r);
        as_upsample_argmax(p.assign, p.vit.gh, p.vit.gw, p.q, p.h, p.w, p.labels_full);
        relabel[r] = now_s() - t0;
    }
    const double t_relabel = median(relabel, 5);

    double g_stage[AS_VIT_STAGE_COUNT], g_enc = 0.0;
    encoder_stage_gflop(ec, p.vit.ntok, p.n, g_stage);
    for (int k = 0; k < AS_VIT_STAGE_COUNT; k++)
        g_enc += g_stage[k];
    const double g_dec = decoder_gflop(&m->dec.cfg, p.n);
    const double g_asg = 2.0 * p.n * p.q * p.dim * 1e-9;
    const double g_total = g_enc + g_dec + g_asg;

    AsVitTiming bk; /* one more encoder run, timed stage by stage */
    double t_gelu = 0;
    if (a.breakdown) {
        if (as_vit_forward_timed(&m->enc, input, s, s, &p.vit, NULL, &bk, &err) != 0) {
            fprintf(stderr, "alignseg bench: %s\n", err.msg);
            goto done;
        }
        t_gelu = gelu_alone(ec, &p.vit);
    }

    char peak_shape[64] = "";
    double packed_peak = 0.0, fma_peak = 0.0;
    const double peak = a.peak ? sgemm_peak(ec, p.vit.ntok, peak_shape, sizeof peak_shape,
                                            &packed_peak)
                               : 0.0;
    if (a.peak)
        fma_peak = as_gemm_fma_peak(0.2);
    double load_s = -1.0, file_mb = 0.0;
    if (a.load) {
        load_s = time_load(m, &file_mb, &err);
        if (load_s < 0) {
            fprintf(stderr, "alignseg bench: checkpoint load timing: %s\n", err.msg);
            as_error_clear(&err);
        }
    }

    const char *arch = a.arch == AS_ARCH_VIT_SMALL ? "vit_small" : "vit_base";
    if (a.json) {
        printf("{\"runtime\": \"alignseg\", \"arch\": \"%s\", \"patch\": %d, \"size\": %d, "
               "\"threads\": %d, \"runs\": %d, \"kernels\": \"%s\", \"times_ms\": [",
               arch, a.patch, s, a.threads, a.runs, as_cpu_path_name(as_cpu_path()));
        for (int r = 0; r < a.runs; r++)
            printf("%s%.4f", r ? ", " : "", totals[r] * 1e3);
        printf("], \"stages_ms\": {");
        for (int k = 0; k < ST_COUNT; k++)
            printf("%s\"%s\": %.4f", k ? ", " : "", stage_names[k], med[k] * 1e3);
        printf("}, \"total_ms\": %.4f, \"gflop\": %.4f, \"encoder_gflop\": %.4f, "
               "\"sgemm_peak_gflops\": %.2f, \"encoder_share_of_peak\": %.4f, "
               "\"packed_gemm_peak_gflops\": %.2f, \"fma_peak_gflops\": %.2f, "
               "\"peak_rss_mib\": %.2f, \"model_mib\": %.2f, \"relabel_ms\": %.4f, "
               "\"load_s\": %.4f, \"build_s\": %.4f}\n",
               total * 1e3, g_total, g_enc, peak,
               peak > 0 ? g_enc / med[ST_ENCODER] / peak : 0.0, packed_peak, fma_peak, rss,
               model_mib(m),
               t_relabel * 1e3, load_s, t_build);
    } else {
        printf("alignseg bench: %s/%d, %dx%d input (%dx%d patches), decoder %d layer(s) Q=%d, "
               "%d thread(s), median of %d run(s) after 1 warm-up\n",
               arch, a.patch, s, s, p.vit.gh, p.vit.gw, m->dec.cfg.layers, m->dec.cfg.queries,
               a.threads, a.runs);
        printf("kernels: %s path (ALIGNSEG_CPU=avx512|avx2|generic forces one)\n",
               as_cpu_path_name(as_cpu_path()));
        printf("  %-12s %10s %9s %9s\n", "stage", "ms", "GFLOP", "GFLOPS");
        const double gf[ST_COUNT] = { g_enc, g_dec, g_asg, 0, 0 };
        for (int k = 0; k < ST_COUNT; k++) {
            if (gf[k] > 0)
                printf("  %-12s %10.3f %9.3f %9.1f\n", stage_names[k], med[k] * 1e3, gf[k],
                       gf[k] / med[k]);
            else
                printf("  %-12s %10.3f %9s %9s\n", stage_names[k], med[k] * 1e3, "-", "-");
        }
        printf("  %-12s %10.3f %9.3f %9.1f\n", "total", total * 1e3, g_total, g_total / total);
        if (peak > 0)
            printf("sgemm peak: %.1f GFLOPS (%s, %d thread(s)); encoder at %.0f%% of it, "
                   "whole pipeline at %.0f%%\n",
                   peak, peak_shape, a.threads, 100.0 * g_enc / med[ST_ENCODER] / peak,
                   100.0 * g_total / total / peak);
        if (packed_peak > 0)
            printf("our packed GEMM on the same shapes: %.1f GFLOPS; FMA-only loop (%s, the "
                   "arithmetic ceiling): %.1f GFLOPS, encoder at %.0f%% of it\n",
                   packed_peak, as_gemm_fma_unit(), fma_peak,
                   fma_peak > 0 ? 100.0 * g_enc / med[ST_ENCODER] / fma_peak : 0.0);
        printf("relabel after a slider move (foreground mask + %dx%d labels): %.3f ms\n", s, s,
               t_relabel * 1e3);
        printf("peak RSS: %.1f MiB (weights %.1f MiB)\n", rss, model_mib(m));
        if (load_s >= 0)
            printf("checkpoint load (%.1f MB .pth, warm page cache): %.3f s\n", file_mb, load_s);
        if (a.breakdown) {
            printf("encoder breakdown (one more run of the encoder, as_vit_forward_timed, by "
                   "stage):\n");
            double sum = 0;
            for (int k = 0; k < AS_VIT_STAGE_COUNT; k++)
                sum += bk.seconds[k];
            for (int k = 0; k < AS_VIT_STAGE_COUNT; k++) {
                const double tk = bk.seconds[k];
                if (g_stage[k] > 0)
                    printf("  %-20s %9.3f ms %5.1f%% %7.3f GFLOP %7.1f GFLOPS\n",
                           as_vit_stage_name((AsVitStage)k), tk * 1e3, 100.0 * tk / sum,
                           g_stage[k], g_stage[k] / tk);
                else
                    printf("  %-20s %9.3f ms %5.1f%%\n", as_vit_stage_name((AsVitStage)k),
                           tk * 1e3, 100.0 * tk / sum);
            }
            printf("  (the GELU alone, as_gelu_inplace over the same activations: %.3f ms)\n",
                   t_gelu * 1e3);
        }
    }
    status = 0;
done:
    pipeline_free(&p);
done_nopipe:
    free(input);
    free(times);
    free(totals);
    as_model_free(m);
    return status;
}
