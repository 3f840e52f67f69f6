/* test_viewer_worker: the viewer's background worker (ui/worker.h) with a
 * real main loop: a new image cancels the running segmentation, results are
 * cached per image, model and input size, progress names the stages, and a
 * bad file is an error event naming the file (no crash). */
#include <glib.h>
#include <glib/gstdio.h>
#include <string.h>

#include "check.h"
#include "worker.h"

typedef struct {
    GMainLoop *loop;
    guint wait_job;           /* quit the loop on IDLE of this job */
    ViewerModel *model;
    ViewerResult *result[16]; /* by job id */
    gboolean cached[16];
    gboolean image[16];
    char *error[16];
    int progress[16];
    gboolean saw_encoder[16];
    gboolean idle[16];
} State;

static void notify(const WorkerEvent *ev, gpointer user)
{
    State *s = user;
    guint j = ev->job < 16 ? ev->job : 15;
    switch (ev->kind) {
    case WORKER_EV_PROGRESS:
        s->progress[j]++;
        if (ev->stage && !strcmp(ev->stage, "encoder"))
            s->saw_encoder[j] = TRUE;
        break;
    case WORKER_EV_MODEL:
        s->model = viewer_model_ref(ev->model);
        break;
    case WORKER_EV_IMAGE:
        s->image[j] = TRUE;
        break;
    case WORKER_EV_RESULT:
        s->result[j] = viewer_result_ref(ev->result);
        s->cached[j] = ev->cached;
        break;
    case WORKER_EV_ERROR:
        s->error[j] = g_strdup(ev->message);
        break;
    case WORKER_EV_IDLE:
        s->idle[j] = TRUE;
        if (ev->job == s->wait_job)
            g_main_loop_quit(s->loop);
        break;
    }
}

static gboolean timeout_cb(gpointer data)
{
    State *s = data;
    fprintf(stderr, "timeout waiting for job %u\n", s->wait_job);
    g_main_loop_quit(s->loop);
    return G_SOURCE_CONTINUE;
}

static void wait_for(State *s, guint job)
{
    s->wait_job = job;
    if (!s->idle[job < 16 ? job : 15])
        g_main_loop_run(s->loop);
}

int main(void)
{
    State s = { 0 };
    s.loop = g_main_loop_new(NULL, FALSE);
    g_timeout_add_seconds(240, timeout_cb, &s);
    char *cat = g_build_filename(g_getenv("ALIGNSEG_TESTDATA") ? g_getenv("ALIGNSEG_TESTDATA") : "tests/data",
                                 "..", "..", "data", "samples", "chelsea.png", NULL);
    char *coffee = g_build_filename(g_getenv("ALIGNSEG_TESTDATA") ? g_getenv("ALIGNSEG_TESTDATA") : "tests/data",
                                    "..", "..", "data", "samples", "coffee.png", NULL);
    Worker *w = worker_new(notify, &s);

    AsModelOptions mo = { 0 };
    guint jm = worker_load_model(w, NULL, NULL, &mo, TRUE);
    wait_for(&s, jm);
    CHECK(s.model != NULL, "random ViT-S/16 loaded");
    if (!s.model) {
        worker_free(w);
        return check_report("viewer_worker");
    }
    CHECK(s.model->untrained, "random model is marked untrained");

    /* A is still running (or queued) when B arrives: A must be cancelled */
    guint ja = worker_segment(w, cat, s.model, 224, FALSE);
    guint jb = worker_segment(w, coffee, s.model, 224, FALSE);
    wait_for(&s, jb);
    CHECK(s.result[ja] == NULL, "the first image's job was cancelled (no result)");
    CHECK(s.error[ja] == NULL, "cancelling is not an error: %s", s.error[ja] ? s.error[ja] : "");
    CHECK(s.result[jb] != NULL, "the second image was segmented");
    CHECK(!s.cached[jb], "first run is not from the cache");
    CHECK(s.saw_encoder[jb], "progress names the encoder stage");
    CHECK(s.image[jb], "the picture is shown before the result");
    if (s.result[jb]) {
        CHECK(s.result[jb]->r.in_w == 224 && s.result[jb]->r.gw == 14, "224 input, 14x14 grid");
        CHECK(s.result[jb]->untrained, "result carries the untrained mark");
    }

    /* same image, model and size: from the cache, the very same result */
    guint jc = worker_segment(w, coffee, s.model, 224, FALSE);
    wait_for(&s, jc);
    CHECK(s.cached[jc] && s.result[jc] == s.result[jb], "second request served from the cache");

    /* another input size is another cache entry */
    guint jd = worker_segment(w, coffee, s.model, 160, FALSE);
    wait_for(&s, jd);
    CHECK(s.result[jd] && !s.cached[jd] && s.result[jd]->r.in_w == 160,
          "a new input size runs the model again");

    /* keep-aspect input (issue 11, item 8): the 600x400 photo is not squeezed
     * into a square; longer side 224, both sides multiples of the patch */
    guint jk = worker_segment(w, coffee, s.model, 224, TRUE);
    wait_for(&s, jk);
    CHECK(s.result[jk] && !s.cached[jk], "keep-aspect is another cache entry");
    if (s.result[jk]) {
        const AsResult *r = &s.result[jk]->r;
        CHECK(r->in_w == 224 && r->in_h < r->in_w && r->in_h % 16 == 0 && r->in_h >= 144 &&
                  r->in_h <= 160 && r->gh == r->in_h / 16,
              "keep-aspect input %dx%d for a 600x400 photo", r->in_w, r->in_h);
    }

    /* bad files: error events naming the file */
    guint je = worker_segment(w, "/nonexistent/dir/cat.png", s.model, 224, FALSE);
    wait_for(&s, je);
    CHECK(s.error[je] && strstr(s.error[je], "cat.png"), "missing image: %s",
          s.error[je] ? s.error[je] : "(no error)");
    char *junk = g_build_filename(g_get_tmp_dir(), "alignseg-viewer-junk.pth", NULL);
    g_file_set_contents(junk, "PK\003\004 this is no checkpoint", -1, NULL);
    guint jf = worker_load_model(w, junk, NULL, &mo, FALSE);
    wait_for(&s, jf);
    CHECK(s.error[jf] && strstr(s.error[jf], "alignseg-viewer-junk.pth"), "hostile checkpoint: %s",
          s.error[jf] ? s.error[jf] : "(no error)");
    g_unlink(junk);

    /* a wrong head count is explained with the counts that fit (issue 11, item 9) */
    char *small8 = g_build_filename(g_getenv("ALIGNSEG_TESTDATA") ? g_getenv("ALIGNSEG_TESTDATA")
                                                                   : "tests/data",
                                    "reference", "infer_small8", "alignseg.pth", NULL);
    AsModelOptions mo4 = { 0 };
    mo4.encoder_heads = 4;
    guint jh = worker_load_model(w, small8, NULL, &mo4, FALSE);
    wait_for(&s, jh);
    CHECK(jh < 16 && s.error[jh] && strstr(s.error[jh], "decoder heads 3 do not divide the width 64") &&
              strstr(s.error[jh], "try 2 or 4"),
          "head-count hint: %s", jh < 16 && s.error[jh] ? s.error[jh] : "(no error)");
    g_free(small8);

    worker_free(w);
    for (int i = 0; i < 16; i++) {
        viewer_result_unref(s.result[i]);
        g_free(s.error[i]);
    }
    viewer_model_unref(s.model);
    g_free(junk);
    g_free(cat);
    g_free(coffee);
    g_main_loop_unref(s.loop);
    return check_report("viewer_worker");
}
