/* worker: the viewer's single background thread. It loads models and images
 * and runs the segmentation (all BLAS work happens on this one thread), keeps
 * a cache of results per image, model and input size, and reports progress
 * and results to the main loop through g_idle_add. Submitting a new image or
 * model cancels the running job (AsSegmentOptions.cancel). */
#ifndef ALIGNSEG_VIEWER_WORKER_H
#define ALIGNSEG_VIEWER_WORKER_H

#include <cairo.h>
#include <glib.h>

#include "model.h"
#include "segment.h"

/* A loaded model, shared by reference count (g_atomic_rc_box). */
typedef struct {
    AsModel *model;
    char *id;      /* cache identity: file names, mtimes and options */
    char *name;    /* shown to the user */
    gboolean untrained;
} ViewerModel;

/* A decoded image, its cairo surface (RGB24) and a pyramid of halved copies
 * down to <= 256 px (so drawing a big photo small stays fast), shared by
 * reference count. */
#define VIEWER_MAX_LEVELS 12
typedef struct {
    char *path;
    AsImage img;
    cairo_surface_t *surface; /* == level[0] */
    cairo_surface_t *level[VIEWER_MAX_LEVELS]; /* display pyramid: each half the previous */
    int nlevels;
    gint64 mtime, size;
} ViewerImage;

/* A segmentation result (immutable once published), shared by reference count. */
typedef struct {
    AsResult r;
    char *key;
    gboolean untrained;
    double seconds; /* inference time */
} ViewerResult;

ViewerModel *viewer_model_ref(ViewerModel *m);
void viewer_model_unref(ViewerModel *m);
ViewerImage *viewer_image_ref(ViewerImage *im);
void viewer_image_unref(ViewerImage *im);
ViewerResult *viewer_result_ref(ViewerResult *r);
void viewer_result_unref(ViewerResult *r);

typedef enum {
    WORKER_EV_PROGRESS, /* stage, fraction */
    WORKER_EV_MODEL,    /* model (a new reference for the receiver to keep) */
    WORKER_EV_IMAGE,    /* image */
    WORKER_EV_RESULT,   /* image + result (cached or new) */
    WORKER_EV_ERROR,    /* message; is_model tells which job failed */
    WORKER_EV_IDLE      /* the job ended (after any of the above), or was cancelled */
} WorkerEventKind;

typedef struct {
    WorkerEventKind kind;
    guint job;          /* the id worker_* returned */
    gboolean is_model;  /* the job loads a model */
    char *stage;
    double fraction;
    ViewerModel *model;
    ViewerImage *image;
    ViewerResult *result;
    gboolean cached;
    char *message;
} WorkerEvent;

/* Called on the main thread; the event is freed after the call (take refs). */
typedef void (*WorkerNotify)(const WorkerEvent *ev, gpointer user);

typedef struct Worker Worker;

Worker *worker_new(WorkerNotify notify, gpointer user);
/* Stop: cancel, wait for the thread, drop pending events. */
void worker_free(Worker *w);

/* Load a model (path may be a DINO backbone or an AlignSeg checkpoint), or a
 * random ViT-S/16 when random is TRUE. Cancels running segmentations.
 * Returns a job id. */
guint worker_load_model(Worker *w, const char *path, const char *backbone,
                        const AsModelOptions *opt, gboolean random);
/* Load the image and, when model is non-NULL, segment it at input_size:
 * the square side, or with keep_aspect the longer side of an input with the
 * photo's aspect ratio (both sides multiples of the patch, as the command
 * line's --long-side). Cancels the running / queued image jobs. */
guint worker_segment(Worker *w, const char *path, ViewerModel *model, int input_size,
                     gboolean keep_aspect);
/* Cancel everything running or queued. */
void worker_cancel_all(Worker *w);

/* A task run on the worker thread after the jobs queued before it (e.g. a
 * dataset export, window-export.c): fn(data, cancel) reports through its own
 * g_idle_add calls; *cancel becomes non-zero on worker_cancel_all or
 * worker_cancel_job. Only its WORKER_EV_IDLE event is posted. free_data (may
 * be NULL) runs on the worker thread afterwards. Returns a job id. */
typedef void (*WorkerTaskFn)(gpointer data, const volatile int *cancel);
guint worker_run_task(Worker *w, WorkerTaskFn fn, gpointer data, GDestroyNotify free_data);
/* Cancel one job (running or queued) by its id. */
void worker_cancel_job(Worker *w, guint id);

#endif
