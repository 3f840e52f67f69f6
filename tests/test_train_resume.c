/* test_train_resume: a training run through core (as_train_run) and its
 * resume state, treated as hostile input (issue 13, rebuilt from its
 * descriptions):
 *  - every option limit refuses just outside its range, on the command line
 *    and in a resumed run state alike (one table);
 *  - a run state with crop_size or local_crops 10^6, threads 100000, batch 0,
 *    crop_size 0, a missing field, an unknown pairing, a bad random state or
 *    epoch is refused naming the file and the field, writing nothing;
 *  - a NaN / Inf optimizer moment or weight in a resumed file is refused
 *    naming the file and the tensor;
 *  - a non-finite gradient during training stops the run with a message and
 *    leaves the last good checkpoint as it was; no later checkpoint appears;
 *  - train-step refuses NaN crops and writes no output;
 *  - a stopped and resumed run equals an uninterrupted one, bit for bit. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pth.h"
#include "run_state.h"
#include "testutil.h"
#include "train_run.h"

#define BACKBONE "reference/train_tiny/alignseg_before.pth"

static char g_dir[TEST_TMPDIR_MAX], g_images[TEST_TMPDIR_MAX + 16];

/* the bytes of a file, malloc'd, and their count */
static unsigned char *read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    unsigned char *buf = NULL;
    size_t cap = 0;
    *len = 0;
    if (!f)
        return NULL;
    for (;;) {
        if (*len == cap) {
            unsigned char *nb = realloc(buf, cap = cap ? 2 * cap : 65536);
            if (!nb)
                break;
            buf = nb;
        }
        size_t got = fread(buf + *len, 1, cap - *len, f);
        *len += got;
        if (got == 0)
            break;
    }
    fclose(f);
    return buf;
}

static void make_images(void)
{
    static const char *const src[] = { "reference/infer_tiny/input.png",
                                       "reference/infer_tiny_posinterp/input.png",
                                       "reference/backbone_rect/input.png",
                                       "reference/infer_small8/input.png" };
    snprintf(g_images, sizeof g_images, "%s/images", g_dir);
    CHECK(mkdir(g_images, 0777) == 0, "mkdir %s", g_images);
    for (int i = 0; i < 4; i++) {
        char dst[TEST_TMPDIR_MAX + 64];
        snprintf(dst, sizeof dst, "%s/im%d.png", g_images, i);
        size_t len = 0;
        unsigned char *data = read_all(test_path(src[i]), &len);
        CHECK(data != NULL, "read %s", src[i]);
        if (data)
            test_write_file(dst, data, len);
        free(data);
    }
}

static void base_options(AsTrainOptions *o, const char *rundir)
{
    as_train_options_default(o);
    o->backbone = test_path(BACKBONE);
    o->images = g_images;
    o->rundir = rundir;
    o->encoder_heads = 3;
    o->batch = 2;
    o->epochs = 2;
    o->crop_size = 64;
    o->queries = 4;
    o->hidden = 48;
    o->threads = 1;
}

static bool file_exists(const char *path)
{
    return access(path, F_OK) == 0;
}

/* ---- one table of limits ---- */

static void test_limits(void)
{
    AsTrainOptions o;
    as_train_options_default(&o);
    AsError err = { 0 };
    for (int i = 0; i < as_train_nlimits; i++) {
        const AsTrainLimit *l = &as_train_limits[i];
        CHECK(as_train_option_check(i, l->lo, NULL, NULL) == 0, "%s %g refused", l->flag, l->lo);
        CHECK(as_train_option_check(i, l->hi, NULL, NULL) == 0, "%s %g refused", l->flag, l->hi);
        const double above = l->hi + fmax(1.0, l->hi * 1e-6);
        CHECK(as_train_option_check(i, above, NULL, &err) != 0 && strstr(err.msg, l->flag),
              "%s %g accepted", l->flag, above);
        if (l->lo - 1 != 0 || !(l->flags & AS_TOPT_ZERO_UNSET)) /* 0 = "not set" */
            CHECK(as_train_option_check(i, l->lo - 1, NULL, NULL) != 0, "%s %g accepted",
                  l->flag, l->lo - 1);
        CHECK(as_train_option_check(i, NAN, NULL, NULL) != 0, "%s NaN accepted", l->flag);
        if (l->kind != AS_TOPT_REAL)
            CHECK(as_train_option_check(i, l->lo + 0.5, NULL, NULL) != 0, "%s %g accepted",
                  l->flag, l->lo + 0.5);
    }
    /* the command line refuses what the table refuses */
    static const char *const bad[] = { "--crop-size 1000000", "--local-crops 1000000",
                                       "--threads 100000", "--batch 0", "--crop-size 0" };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        char cmd[4096], out[4096];
        snprintf(cmd, sizeof cmd, "'%s' train -b '%s' --images '%s' -o '%s/cli' %s 2>&1",
                 test_bin(), test_path(BACKBONE), g_images, g_dir, bad[i]);
        int rc = test_run_capture(cmd, out, sizeof out);
        char flag[32];
        snprintf(flag, sizeof flag, "%.*s", (int)strcspn(bad[i], " "), bad[i]);
        const int lim = as_train_limit_find(flag);
        char range[96];
        snprintf(range, sizeof range, "from %g to %g", as_train_limits[lim].lo,
                 as_train_limits[lim].hi);
        CHECK(rc == 2 && strstr(out, flag) && strstr(out, range), "%s: exit %d: %s", bad[i], rc,
              out);
    }
    char cli[TEST_TMPDIR_MAX + 8];
    snprintf(cli, sizeof cli, "%s/cli", g_dir);
    CHECK(!file_exists(cli), "a refused command created %s", cli);
}

/* ---- hostile run states ---- */

typedef struct {
    const char *what;   /* the field, expected in the message */
    const char *key;    /* run-state key to change (NULL: see tensor) */
    double value;
    bool remove;
    const char *tensor; /* optimizer state 0 moment / state-dict tensor to poison */
} Mutation;

static AsPValue *state_of(AsPth *p)
{
    return as_pv_get(p->root, AS_TRAIN_STATE_KEY);
}

static void set_number(AsPValue *v, double x)
{
    if (v->kind == AS_PV_INT && x == floor(x) && fabs(x) < 9e18) {
        v->i = (int64_t)x;
    } else {
        v->kind = AS_PV_FLOAT;
        v->f = x;
    }
}

/* good -> path with one change; false if the change could not be made */
static bool mutate(const char *good, const char *path, const Mutation *mu)
{
    AsPth p;
    AsError err = { 0 };
    if (as_pth_read(good, &p, 0, &err)) {
        CHECK(0, "%s", err.msg);
        return false;
    }
    bool ok = false;
    AsPValue *st = state_of(&p);
    if (mu->key && !strcmp(mu->key, "pairing")) {
        AsPValue *v = as_pv_get(st, "pairing");
        if (v && v->kind == AS_PV_STR) {
            free(v->s);
            v->s = strdup("sideways");
            v->len = 8;
            ok = v->s != NULL;
        }
    } else if (mu->key && !strcmp(mu->key, "crop_rng")) {
        AsPValue *v = as_pv_get(st, "crop_rng");
        if (v && v->kind == AS_PV_LIST && v->count == 8) {
            set_number(v->items[3], mu->value);
            ok = true;
        }
    } else if (mu->key && mu->remove) {
        for (size_t i = 0; st && i < st->count; i++)
            if (!strcmp(st->keys[i]->s, mu->key)) {
                free(st->keys[i]->s);
                st->keys[i]->s = strdup("renamed");
                ok = true;
            }
    } else if (mu->key) {
        AsPValue *v = as_pv_get(st, mu->key);
        if (v) {
            set_number(v, mu->value);
            ok = true;
        }
    } else if (mu->tensor) {
        AsPValue *opt = as_pv_get(p.root, "optimizer");
        AsPValue *s0 = opt ? as_pv_get_int(as_pv_get(opt, "state"), 0) : NULL;
        AsPValue *t = s0 ? as_pv_get(s0, mu->tensor) : NULL;
        if (!t)
            t = as_pv_get(as_pv_get(p.root, "state_dict"), mu->tensor);
        if (t && t->kind == AS_PV_TENSOR && t->t->f32 && t->t->numel > 1) {
            t->t->f32[1] = (float)mu->value;
            ok = true;
        }
    }
    CHECK(ok, "could not apply %s", mu->what);
    if (ok && as_pth_write(path, NULL, p.root, &err)) {
        CHECK(0, "%s", err.msg);
        ok = false;
    }
    as_pth_free(&p);
    return ok;
}

static void test_hostile_state(const char *good)
{
    static const Mutation cases[] = {
        { "crop_size", "crop_size", 1e6, false, NULL },
        { "local_crops", "local_crops", 1e6, false, NULL },
        { "threads", "threads", 100000, false, NULL },
        { "batch", "batch", 0, false, NULL },
        { "crop_size", "crop_size", 0, false, NULL },
        { "epochs", "epochs", -3, false, NULL },
        { "base_lr", "base_lr", NAN, false, NULL },
        { "mass_threshold", "mass_threshold", 2.5, false, NULL },
        { "negative_pressure", "negative_pressure", INFINITY, false, NULL },
        { "batch", "batch", 0, true, NULL },
        { "pairing", "pairing", 0, false, NULL },
        { "crop_rng", "crop_rng", -5, false, NULL },
        { "epoch", "epoch", 1e9, false, NULL },
        { "cursor", "cursor", -1, false, NULL },
        { "exp_avg", NULL, NAN, false, "exp_avg" },
        { "exp_avg_sq", NULL, INFINITY, false, "exp_avg_sq" },
        { "clsQueries.weight", NULL, NAN, false, "clsQueries.weight" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        const Mutation *mu = &cases[i];
        char path[TEST_TMPDIR_MAX + 64], rundir[TEST_TMPDIR_MAX + 64];
        snprintf(path, sizeof path, "%s/hostile%zu.pth", g_dir, i);
        snprintf(rundir, sizeof rundir, "%s/hostile_run%zu", g_dir, i);
        if (!mutate(good, path, mu))
            continue;
        AsTrainOptions o;
        base_options(&o, rundir);
        o.backbone = NULL;
        o.resume = path;
        AsTrainSummary s;
        AsError err = { 0 };
        int rc = as_train_run(&o, NULL, NULL, &s, &err);
        CHECK(rc != 0 && strstr(err.msg, path) && strstr(err.msg, mu->what),
              "case %zu (%s): rc %d: %s", i, mu->what, rc, err.msg);
        char ck[TEST_TMPDIR_MAX + 96];
        snprintf(ck, sizeof ck, "%s/epoch2.pth", rundir);
        CHECK(!file_exists(ck), "case %zu: a checkpoint was written", i);
        snprintf(ck, sizeof ck, "%s/interrupted.pth", rundir);
        CHECK(!file_exists(ck), "case %zu: interrupted.pth was written", i);
        printf("refused (%s): %s\n", mu->what, err.msg);
    }
}

/* ---- a non-finite gradient mid-run ---- */

typedef struct {
    int calls, poison_at;
    char watch[TEST_TMPDIR_MAX + 64];
    unsigned char *saved;
    size_t saved_len;
} Poison;

static int poison_reduce(void *user, float *grad, long n, AsTrainLosses *loss, AsError *err)
{
    (void)loss;
    (void)err;
    Poison *p = user;
    if (++p->calls == p->poison_at && n > 0)
        grad[n / 2] = NAN;
    return 0;
}

static void poison_note(void *user, const char *line)
{
    Poison *p = user;
    if (strstr(line, "saved") && strstr(line, "epoch1.pth") && !p->saved)
        p->saved = read_all(p->watch, &p->saved_len);
}

static void test_nan_gradient(void)
{
    char rundir[TEST_TMPDIR_MAX + 64];
    snprintf(rundir, sizeof rundir, "%s/nan_run", g_dir);
    AsTrainOptions o;
    base_options(&o, rundir);
    o.epochs = 3;
    Poison p = { 0, 3, "", NULL, 0 }; /* 2 steps per epoch: the first of epoch 2 */
    snprintf(p.watch, sizeof p.watch, "%s/epoch1.pth", rundir);
    AsTrainEvents ev = { poison_note, NULL, &p, 0, 2, poison_reduce };
    AsTrainSummary s;
    AsError err = { 0 };
    int rc = as_train_run(&o, NULL, &ev, &s, &err);
    CHECK(rc != 0 && strstr(err.msg, "gradient") && strstr(err.msg, "nothing saved"),
          "NaN gradient: rc %d: %s", rc, err.msg);
    CHECK(p.saved != NULL, "epoch1.pth was not saved before the NaN");
    size_t len = 0;
    unsigned char *now = read_all(p.watch, &len);
    CHECK(now && p.saved && len == p.saved_len && !memcmp(now, p.saved, len),
          "epoch1.pth changed after the NaN");
    char ck[TEST_TMPDIR_MAX + 96];
    snprintf(ck, sizeof ck, "%s/epoch2.pth", rundir);
    CHECK(!file_exists(ck), "epoch2.pth written after a NaN gradient");
    snprintf(ck, sizeof ck, "%s/interrupted.pth", rundir);
    CHECK(!file_exists(ck), "interrupted.pth written after a NaN gradient");
    printf("stopped: %s\n", err.msg);
    free(now);
    free(p.saved);
}

/* ---- NaN crops in train-step ---- */

static void test_nan_crops(void)
{
    AsNpy a;
    AsError err = { 0 };
    if (test_npy_load_f32(test_path("reference/train_tiny/crop1.npy"), &a)) {
        CHECK(0, "crop1.npy");
        return;
    }
    ((float *)a.data)[7] = NAN;
    char crop[TEST_TMPDIR_MAX + 32], out[TEST_TMPDIR_MAX + 32];
    snprintf(crop, sizeof crop, "%s/nan_crop1.npy", g_dir);
    snprintf(out, sizeof out, "%s/after_nan.pth", g_dir);
    CHECK(as_npy_write(crop, AS_DT_F32, a.ndim, a.shape, a.data, &err) == 0, "%s", err.msg);
    as_npy_free(&a);
    char cmd[8192], msg[4096];
    snprintf(cmd, sizeof cmd,
             "'%s' train-step -m '%s' --encoder-heads 3 --decoder-heads 3 --crops '%s' '%s' "
             "'%s' -o '%s' 2>&1",
             test_bin(), test_path(BACKBONE), test_path("reference/train_tiny/crop0.npy"), crop,
             test_path("reference/train_tiny/crop2.npy"), out);
    int rc = test_run_capture(cmd, msg, sizeof msg);
    CHECK(rc != 0 && strstr(msg, "nan_crop1.npy") && strstr(msg, "finite"), "exit %d: %s", rc,
          msg);
    CHECK(!file_exists(out), "train-step wrote %s from NaN crops", out);
}

/* ---- resume equals an uninterrupted run ---- */

static void compare_checkpoints(const char *a, const char *b)
{
    AsPth x, y;
    AsError err = { 0 };
    if (as_pth_read(a, &x, 0, &err) || as_pth_read(b, &y, 0, &err)) {
        CHECK(0, "%s", err.msg);
        return;
    }
    const AsPValue *sx = as_pv_get(x.root, "state_dict"), *sy = as_pv_get(y.root, "state_dict");
    CHECK(sx && sy && sx->count == sy->count, "state dicts differ in size");
    int same = 0;
    for (size_t i = 0; sx && sy && i < sx->count && i < sy->count; i++) {
        const AsPTensor *tx = sx->items[i]->t, *ty = sy->items[i]->t;
        same += !strcmp(sx->keys[i]->s, sy->keys[i]->s) && tx->numel == ty->numel &&
                !memcmp(tx->f32, ty->f32, (size_t)tx->numel * sizeof(float));
    }
    CHECK(sx && same == (int)sx->count, "%d of %zu tensors equal after resume", same,
          sx ? sx->count : 0);
    const AsPValue *ox = as_pv_get(as_pv_get(x.root, "optimizer"), "state");
    const AsPValue *oy = as_pv_get(as_pv_get(y.root, "optimizer"), "state");
    int moments = 0;
    for (size_t i = 0; ox && oy && i < ox->count && i < oy->count; i++)
        for (int k = 0; k < 2; k++) {
            const char *m = k ? "exp_avg_sq" : "exp_avg";
            const AsPTensor *tx = as_pv_get(ox->items[i], m)->t;
            const AsPTensor *ty = as_pv_get(oy->items[i], m)->t;
            moments += tx->numel == ty->numel &&
                       !memcmp(tx->f32, ty->f32, (size_t)tx->numel * sizeof(float));
        }
    CHECK(ox && oy && ox->count == oy->count && moments == 2 * (int)ox->count,
          "AdamW moments differ after resume");
    as_pth_free(&x);
    as_pth_free(&y);
}

/* ---- cancelled through the hooks, then resumed ---- */

typedef struct {
    volatile int stop;
    int progress_calls;
    long last_done, last_total;
} Cancel;

static void cancel_progress(void *user, const char *stage, long done, long total)
{
    Cancel *c = user;
    CHECK(!strcmp(stage, "train"), "stage %s", stage);
    c->progress_calls++;
    c->last_done = done;
    c->last_total = total;
    if (done == 2)
        c->stop = 1; /* as Ctrl-C after the second step */
}

static void test_cancel(const char *full_ckpt)
{
    char rundir[TEST_TMPDIR_MAX + 32], path[TEST_TMPDIR_MAX + 64];
    snprintf(rundir, sizeof rundir, "%s/cancel", g_dir);
    snprintf(path, sizeof path, "%s/interrupted.pth", rundir);
    Cancel c = { 0, 0, 0, 0 };
    const AsHooks hooks = { &c.stop, cancel_progress, &c };
    AsTrainOptions o;
    base_options(&o, rundir);
    AsTrainSummary s;
    AsError err = { 0 };
    int rc = as_train_run(&o, &hooks, NULL, &s, &err);
    CHECK(rc == AS_ERR_CANCELLED && s.steps == 2 && s.stopped && file_exists(path),
          "cancel: rc %d, %d steps: %s", rc, s.steps, err.msg);
    CHECK(c.progress_calls == 2 && c.last_total == 4, "progress: %d calls, total %ld",
          c.progress_calls, c.last_total);
    base_options(&o, rundir);
    o.backbone = NULL;
    o.resume = path;
    rc = as_train_run(&o, NULL, NULL, &s, &err);
    CHECK(rc == 0 && s.steps == 2, "resume after cancel: rc %d: %s", rc, err.msg);
    char ck[TEST_TMPDIR_MAX + 64];
    snprintf(ck, sizeof ck, "%s/epoch2.pth", rundir);
    compare_checkpoints(full_ckpt, ck);
}

int main(void)
{
    if (!test_tmpdir_make(g_dir, sizeof g_dir, "train_resume"))
        return 1;
    make_images();
    char full[TEST_TMPDIR_MAX + 16], cut[TEST_TMPDIR_MAX + 16], good[TEST_TMPDIR_MAX + 64];
    snprintf(full, sizeof full, "%s/full", g_dir);
    snprintf(cut, sizeof cut, "%s/cut", g_dir);
    snprintf(good, sizeof good, "%s/interrupted.pth", cut);
    AsTrainOptions o;
    AsTrainSummary s;
    AsError err = { 0 };
    base_options(&o, full);
    CHECK(as_train_run(&o, NULL, NULL, &s, &err) == 0 && s.steps == 4, "full run: %s",
          err.msg);
    base_options(&o, cut);
    o.max_steps = 1;
    CHECK(as_train_run(&o, NULL, NULL, &s, &err) == 0 && s.stopped && file_exists(good),
          "stopped run: %s", err.msg);
    test_limits();
    test_hostile_state(good);
    base_options(&o, cut); /* the untouched file resumes */
    o.backbone = NULL;
    o.resume = good;
    CHECK(as_train_run(&o, NULL, NULL, &s, &err) == 0 && s.steps == 3 && !s.stopped,
          "resume: %s", err.msg);
    char a[TEST_TMPDIR_MAX + 32], b[TEST_TMPDIR_MAX + 32];
    snprintf(a, sizeof a, "%s/epoch2.pth", full);
    snprintf(b, sizeof b, "%s/epoch2.pth", cut);
    compare_checkpoints(a, b);
    CHECK(!file_exists(good), "interrupted.pth left after the resumed run finished");
    test_cancel(a);
    test_nan_gradient();
    test_nan_crops();
    test_tmpdir_remove(g_dir);
    return check_report("train_resume");
}
