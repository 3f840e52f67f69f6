/* worker: background thread for model loading and segmentation (see worker.h). */
#include "worker.h"

#include <glib/gi18n.h>
#include <glib/gstdio.h>
#include <string.h>

#include "image.h"
#include "vutil.h"

#define CACHE_MAX 24

/* ---- shared objects ---- */

static void model_clear(gpointer p)
{
    ViewerModel *m = p;
    as_model_free(m->model);
    g_free(m->id);
    g_free(m->name);
}
ViewerModel *viewer_model_ref(ViewerModel *m) { return m ? g_atomic_rc_box_acquire(m) : NULL; }
void viewer_model_unref(ViewerModel *m)
{
    if (m)
        g_atomic_rc_box_release_full(m, model_clear);
}

static void image_clear(gpointer p)
{
    ViewerImage *im = p;
    g_free(im->path);
    as_image_free(&im->img);
    for (int i = 0; i < im->nlevels; i++)
        cairo_surface_destroy(im->level[i]);
}
ViewerImage *viewer_image_ref(ViewerImage *im) { return im ? g_atomic_rc_box_acquire(im) : NULL; }
void viewer_image_unref(ViewerImage *im)
{
    if (im)
        g_atomic_rc_box_release_full(im, image_clear);
}

static void result_clear(gpointer p)
{
    ViewerResult *r = p;
    as_result_free(&r->r);
    g_free(r->key);
}
ViewerResult *viewer_result_ref(ViewerResult *r) { return r ? g_atomic_rc_box_acquire(r) : NULL; }
void viewer_result_unref(ViewerResult *r)
{
    if (r)
        g_atomic_rc_box_release_full(r, result_clear);
}

/* ---- jobs ---- */

typedef enum { JOB_MODEL = 1, JOB_IMAGE = 2, JOB_QUIT = 4, JOB_TASK = 8 } JobKind;

typedef struct {
    JobKind kind;
    guint id;
    volatile int cancel;
    char *path, *backbone;
    AsModelOptions mopt;
    gboolean random;
    ViewerModel *model;
    int input_size;
    gboolean keep_aspect;
    WorkerTaskFn task; /* JOB_TASK */
    gpointer task_data;
    GDestroyNotify task_free;
    /* progress throttling (worker thread only) */
    char last_stage[64];
    double last_fraction;
    Worker *w;
} Job;

struct Worker {
    gint refs;
    GMutex lock;
    GCond cond;
    GQueue queue;   /* Job* */
    Job *current;
    GThread *thread;
    guint next_id;
    WorkerNotify notify; /* main thread only; NULL once freed */
    gpointer user;
    /* cache: worker thread only */
    GHashTable *cache; /* key -> ViewerResult* */
    GQueue cache_order; /* keys (owned by the table) oldest first */
};

static void job_free(Job *j)
{
    g_free(j->path);
    g_free(j->backbone);
    viewer_model_unref(j->model);
    if (j->task_free)
        j->task_free(j->task_data);
    g_free(j);
}

static Worker *worker_ref(Worker *w)
{
    g_atomic_int_inc(&w->refs);
    return w;
}

static void worker_unref(Worker *w)
{
    if (!g_atomic_int_dec_and_test(&w->refs))
        return;
    g_hash_table_destroy(w->cache);
    g_queue_clear(&w->cache_order);
    g_mutex_clear(&w->lock);
    g_cond_clear(&w->cond);
    g_free(w);
}

/* ---- events to the main loop ---- */

typedef struct {
    Worker *w;
    WorkerEvent ev;
} Post;

static gboolean post_dispatch(gpointer data)
{
    Post *p = data;
    if (p->w->notify)
        p->w->notify(&p->ev, p->w->user);
    g_free(p->ev.stage);
    g_free(p->ev.message);
    viewer_model_unref(p->ev.model);
    viewer_image_unref(p->ev.image);
    viewer_result_unref(p->ev.result);
    worker_unref(p->w);
    g_free(p);
    return G_SOURCE_REMOVE;
}

/* Takes ownership of the references in ev. */
static void post(Job *j, WorkerEvent ev)
{
    Post *p = g_new0(Post, 1);
    p->w = worker_ref(j->w);
    p->ev = ev;
    p->ev.job = j->id;
    p->ev.is_model = j->kind == JOB_MODEL;
    /* one priority for all events keeps them in order (progress never after IDLE) */
    g_idle_add_full(G_PRIORITY_DEFAULT, post_dispatch, p, NULL);
}

static void post_error(Job *j, const char *msg)
{
    post(j, (WorkerEvent){ .kind = WORKER_EV_ERROR, .message = g_strdup(msg) });
}

static void on_progress(void *user, const char *stage, long done, long total)
{
    Job *j = user;
    double fraction = total > 0 ? (double)done / (double)total : 0.0;
    if (!stage)
        stage = "";
    if (!strcmp(stage, j->last_stage) && fraction - j->last_fraction < 0.02 && fraction < 1.0)
        return;
    g_strlcpy(j->last_stage, stage, sizeof j->last_stage);
    j->last_fraction = fraction;
    post(j, (WorkerEvent){ .kind = WORKER_EV_PROGRESS, .stage = g_strdup(stage),
                           .fraction = fraction });
}

/* ---- the jobs ---- */

static char *file_identity(const char *path)
{
    GStatBuf st;
    if (!path)
        return g_strdup("");
    if (g_stat(path, &st) != 0)
        return g_strdup(path);
    return g_strdup_printf("%s@%" G_GINT64_FORMAT ":%" G_GINT64_FORMAT, path,
                           (gint64)st.st_mtime, (gint64)st.st_size);
}

static void run_model(Job *j)
{
    AsError err = { 0 };
    AsModel *m = NULL;
    int rc;
    post(j, (WorkerEvent){ .kind = WORKER_EV_PROGRESS, .stage = g_strdup("load"),
                           .fraction = 0.0 });
    if (j->random)
        rc = as_model_random(AS_ARCH_VIT_SMALL, 16, 5, 1, 3407, &m, &err);
    else
        rc = as_model_load(j->path, j->backbone, &j->mopt, &m, &err);
    if (rc != 0 || !m) {
        char hint[256];
        if (vu_heads_hint(err.msg, hint, sizeof hint)) { /* the value that would fit */
            char *t = g_strdup_printf("%s. %s", err.msg, hint);
            post_error(j, t);
            g_free(t);
        } else {
            post_error(j, err.msg[0] ? err.msg : _("The model could not be loaded."));
        }
        return;
    }
    ViewerModel *vm = g_atomic_rc_box_new0(ViewerModel);
    vm->model = m;
    vm->untrained = j->random || m->untrained;
    if (j->random) {
        vm->id = g_strdup("random:vit_small16:3407");
        vm->name = g_strdup(_("Random ViT-S/16 (untrained)"));
    } else {
        char *a = file_identity(j->path), *b = file_identity(j->backbone);
        vm->id = g_strdup_printf("%s|%s|eh%d|dh%d", a, b, j->mopt.encoder_heads,
                                 j->mopt.decoder_heads);
        vm->name = g_path_get_basename(j->path);
        g_free(a);
        g_free(b);
    }
    post(j, (WorkerEvent){ .kind = WORKER_EV_MODEL, .model = vm });
}

static cairo_surface_t *surface_from_rgb(const AsImage *img)
{
    cairo_surface_t *s = cairo_image_surface_create(CAIRO_FORMAT_RGB24, img->w, img->h);
    if (cairo_surface_status(s) != CAIRO_STATUS_SUCCESS) {
        cairo_surface_destroy(s);
        return NULL;
    }
    cairo_surface_flush(s);
    uint8_t *dst = cairo_image_surface_get_data(s);
    int stride = cairo_image_surface_get_stride(s);
    for (int y = 0; y < img->h; y++) {
        uint32_t *row = (uint32_t *)(void *)(dst + (size_t)y * stride);
        const uint8_t *src = img->rgb + (size_t)y * img->w * 3;
        for (int x = 0; x < img->w; x++)
            row[x] = 0xff000000u | ((uint32_t)src[3 * x] << 16) | ((uint32_t)src[3 * x + 1] << 8) |
                     src[3 * x + 2];
    }
    cairo_surface_mark_dirty(s);
    return s;
}

static void cache_put(Worker *w, ViewerResult *r)
{
    if (g_hash_table_contains(w->cache, r->key))
        return;
    while (g_queue_get_length(&w->cache_order) >= CACHE_MAX) {
        char *old = g_queue_pop_head(&w->cache_order);
        g_hash_table_remove(w->cache, old);
    }
    char *key = g_strdup(r->key);
    g_hash_table_insert(w->cache, key, viewer_result_ref(r));
    g_queue_push_tail(&w->cache_order, key);
}

static void run_image(Job *j)
{
    AsError err = { 0 };
    Worker *w = j->w;
    post(j, (WorkerEvent){ .kind = WORKER_EV_PROGRESS, .stage = g_strdup("image"),
                           .fraction = 0.0 });
    ViewerImage *im = g_atomic_rc_box_new0(ViewerImage);
    im->path = g_strdup(j->path);
    GStatBuf st;
    if (g_stat(j->path, &st) == 0) {
        im->mtime = st.st_mtime;
        im->size = st.st_size;
    }
    if (as_image_load(j->path, &im->img, &err) != 0) {
        post_error(j, err.msg[0] ? err.msg : _("The image could not be read."));
        viewer_image_unref(im);
        return;
    }
    im->surface = surface_from_rgb(&im->img);
    if (!im->surface) {
        post_error(j, _("Not enough memory to show this image."));
        viewer_image_unref(im);
        return;
    }
    im->level[0] = im->surface;
    im->nlevels = 1;
    while (im->nlevels < VIEWER_MAX_LEVELS) {
        cairo_surface_t *prev = im->level[im->nlevels - 1];
        int pw = cairo_image_surface_get_width(prev), ph = cairo_image_surface_get_height(prev);
        if (pw <= 256 && ph <= 256)
            break;
        cairo_surface_t *half = cairo_image_surface_create(CAIRO_FORMAT_RGB24, (pw + 1) / 2,
                                                           (ph + 1) / 2);
        if (cairo_surface_status(half) != CAIRO_STATUS_SUCCESS) {
            cairo_surface_destroy(half);
            break;
        }
        cairo_surface_flush(prev);
        cairo_surface_flush(half);
        vu_halve_xrgb(cairo_image_surface_get_data(prev), pw, ph,
                      cairo_image_surface_get_stride(prev), cairo_image_surface_get_data(half),
                      cairo_image_surface_get_stride(half));
        cairo_surface_mark_dirty(half);
        im->level[im->nlevels++] = half;
    }
    if (!j->model || j->cancel) {
        post(j, (WorkerEvent){ .kind = WORKER_EV_IMAGE, .image = im });
        return;
    }
    AsSegmentOptions o;
    as_segment_options_default(&o);
    o.size = j->input_size;
    o.long_side = j->keep_aspect ? j->input_size : 0;
    o.hooks = (AsHooks){ &j->cancel, on_progress, j };
    int in_w = 0, in_h = 0;
    if (as_input_size(j->model->model, im->img.w, im->img.h, &o, &in_w, &in_h, &err) != 0) {
        post(j, (WorkerEvent){ .kind = WORKER_EV_IMAGE, .image = viewer_image_ref(im) });
        post_error(j, err.msg);
        viewer_image_unref(im);
        return;
    }
    char *key = vu_cache_key(j->path, im->mtime, im->size, j->model->id, in_w, in_h);
    ViewerResult *hit = key ? g_hash_table_lookup(w->cache, key) : NULL;
    if (hit) {
        g_free(key);
        post(j, (WorkerEvent){ .kind = WORKER_EV_RESULT, .image = im,
                               .result = viewer_result_ref(hit), .cached = TRUE });
        return;
    }
    /* show the picture while the model runs */
    post(j, (WorkerEvent){ .kind = WORKER_EV_IMAGE, .image = viewer_image_ref(im) });
    ViewerResult *res = g_atomic_rc_box_new0(ViewerResult);
    res->key = key;
    res->untrained = j->model->untrained;
    gint64 t0 = g_get_monotonic_time();
    int rc = as_segment_image(j->model->model, &im->img, &o, &res->r, &err);
    res->seconds = (g_get_monotonic_time() - t0) / 1e6;
    if (rc != 0) {
        if (rc != AS_ERR_CANCELLED && !j->cancel)
            post_error(j, err.msg[0] ? err.msg : _("Segmentation failed."));
        viewer_result_unref(res);
        viewer_image_unref(im);
        return;
    }
    cache_put(w, res);
    post(j, (WorkerEvent){ .kind = WORKER_EV_RESULT, .image = im, .result = res });
}

static gpointer thread_main(gpointer data)
{
    Worker *w = data;
    for (;;) {
        g_mutex_lock(&w->lock);
        while (g_queue_is_empty(&w->queue))
            g_cond_wait(&w->cond, &w->lock);
        Job *j = g_queue_pop_head(&w->queue);
        w->current = j;
        g_mutex_unlock(&w->lock);
        if (j->kind == JOB_QUIT) {
            g_mutex_lock(&w->lock);
            w->current = NULL;
            g_mutex_unlock(&w->lock);
            job_free(j);
            break;
        }
        if (!j->cancel) {
            if (j->kind == JOB_TASK)
                j->task(j->task_data, &j->cancel);
            else if (j->kind == JOB_MODEL)
                run_model(j);
            else
                run_image(j);
        }
        post(j, (WorkerEvent){ .kind = WORKER_EV_IDLE });
        g_mutex_lock(&w->lock);
        w->current = NULL;
        g_mutex_unlock(&w->lock);
        job_free(j);
    }
    worker_unref(w);
    return NULL;
}

Worker *worker_new(WorkerNotify notify, gpointer user)
{
    Worker *w = g_new0(Worker, 1);
    w->refs = 1;
    g_mutex_init(&w->lock);
    g_cond_init(&w->cond);
    g_queue_init(&w->queue);
    g_queue_init(&w->cache_order);
    w->cache = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
                                     (GDestroyNotify)viewer_result_unref);
    w->notify = notify;
    w->user = user;
    w->thread = g_thread_new("alignseg-worker", thread_main, worker_ref(w));
    return w;
}

/* Mark running and queued jobs of the given kinds cancelled; lock held. */
static void cancel_locked(Worker *w, int kinds)
{
    if (w->current && (w->current->kind & kinds))
        w->current->cancel = 1;
    for (GList *l = w->queue.head; l; l = l->next) {
        Job *j = l->data;
        if (j->kind & kinds)
            j->cancel = 1;
    }
}

static guint submit(Worker *w, Job *j, int cancel_kinds)
{
    j->w = w;
    g_mutex_lock(&w->lock);
    cancel_locked(w, cancel_kinds);
    guint id = j->id = ++w->next_id;
    g_queue_push_tail(&w->queue, j);
    g_cond_signal(&w->cond);
    g_mutex_unlock(&w->lock);
    return id; /* j may already be freed by the worker */
}

guint worker_load_model(Worker *w, const char *path, const char *backbone,
                        const AsModelOptions *opt, gboolean random)
{
    Job *j = g_new0(Job, 1);
    j->kind = JOB_MODEL;
    j->path = g_strdup(path);
    j->backbone = g_strdup(backbone);
    if (opt)
        j->mopt = *opt;
    j->random = random;
    return submit(w, j, JOB_MODEL | JOB_IMAGE);
}

guint worker_segment(Worker *w, const char *path, ViewerModel *model, int input_size,
                     gboolean keep_aspect)
{
    Job *j = g_new0(Job, 1);
    j->kind = JOB_IMAGE;
    j->path = g_strdup(path);
    j->model = viewer_model_ref(model);
    j->input_size = input_size;
    j->keep_aspect = keep_aspect;
    return submit(w, j, JOB_IMAGE);
}

void worker_cancel_all(Worker *w)
{
    g_mutex_lock(&w->lock);
    cancel_locked(w, JOB_MODEL | JOB_IMAGE | JOB_TASK);
    g_mutex_unlock(&w->lock);
}

guint worker_run_task(Worker *w, WorkerTaskFn fn, gpointer data, GDestroyNotify free_data)
{
    Job *j = g_new0(Job, 1);
    j->kind = JOB_TASK;
    j->task = fn;
    j->task_data = data;
    j->task_free = free_data;
    return submit(w, j, 0);
}

void worker_cancel_job(Worker *w, guint id)
{
    g_mutex_lock(&w->lock);
    if (w->current && w->current->id == id)
        w->current->cancel = 1;
    for (GList *l = w->queue.head; l; l = l->next) {
        Job *j = l->data;
        if (j->id == id)
            j->cancel = 1;
    }
    g_mutex_unlock(&w->lock);
}

void worker_free(Worker *w)
{
    if (!w)
        return;
    w->notify = NULL;
    Job *q = g_new0(Job, 1);
    q->kind = JOB_QUIT;
    submit(w, q, JOB_MODEL | JOB_IMAGE | JOB_TASK);
    g_thread_join(w->thread);
    worker_unref(w);
}
