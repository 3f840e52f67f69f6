/* window-export: the dataset export of the viewer (issue 11: a folder becomes
 * one consistent dataset) and the named classes of the legend.
 *
 * The rules of the dataset folder are core's (core/output/dataset.h): this
 * file gathers what the user chose and runs the export as a task on the
 * viewer's worker thread (worker_run_task), so the main loop never waits:
 *   - what: the current image, a selection of the opened folder's images, or
 *     all of them; the current image's labels come from vw_export_labels
 *     (what the window shows), the others are segmented with the current
 *     model, input size and sliders;
 *   - names: group g (0-based, as "prototype_<g>" in the files) may be given a
 *     class name from the legend's pencil menu; the window keeps a class table
 *     (names, colours, ids) read from the last export folder, shown in the
 *     menu as a one-click list, and used for the ids and colours of new
 *     classes; as_dataset_map_groups applies the rule (hidden groups are not
 *     exported, or exported as "ignore"; groups without pixels never are);
 *   - a warning lists the images the folder has already before replacing them.
 * Scriptable actions (--action): win.export-folder('DIR') (the current image),
 * win.export-all('DIR') (every image of the folder), win.group-class((G,'NAME'))
 * ('' clears the name), win.group-visible((G,false)), win.export-hidden(true),
 * win.export-formats('voc,coco'), win.export-replace(true) (replace without
 * asking), win.export (the dialog), win.class-menu(G) (group G's pencil menu). */
#include "window-private.h"

#include <string.h>

#include "dataset.h"
#include "export.h"
#include "image.h"

#include "window-export.h"

static void exp_free(gpointer p)
{
    VwExport *e = p;
    if (e->dialog)
        g_object_remove_weak_pointer(G_OBJECT(e->dialog), (gpointer *)&e->dialog);
    for (int g = 0; g < AS_MAX_GROUPS; g++)
        g_free(e->names[g]);
    g_free(e->table_dir);
    g_free(e->dir);
    g_free(e->labels);
    g_free(e);
}

VwExport *vw_export_state(ViewerWindow *w)
{
    VwExport *e = g_object_get_data(G_OBJECT(w), "vw-export");
    if (!e) {
        e = g_new0(VwExport, 1);
        e->formats = AS_EXPORT_ALL;
        g_object_set_data_full(G_OBJECT(w), "vw-export", e, exp_free);
    }
    return e;
}

/* Read the class table of the dataset in dir (once per folder); errors are
 * reported when exporting. */
static void load_table(ViewerWindow *w, const char *dir)
{
    VwExport *e = vw_export_state(w);
    if (!dir || !g_strcmp0(e->table_dir, dir))
        return;
    AsClass tab[AS_DATASET_MAX_CLASS + 1];
    if (as_dataset_peek(dir, tab, NULL, NULL) != 0)
        return;
    /* the folder's classes keep their ids; ours that it lacks keep theirs when free */
    for (int k = 1; k <= AS_DATASET_MAX_CLASS; k++)
        if (e->classes[k].name[0] && !as_class_table_find(tab, e->classes[k].name)) {
            int id;
            as_class_table_add(tab, e->classes[k].name, k, e->classes[k].rgb, &id, NULL);
        }
    memcpy(e->classes, tab, sizeof tab);
    g_free(e->table_dir);
    e->table_dir = g_strdup(dir);
}

const char *vw_export_default_dir(ViewerWindow *w)
{
    VwExport *e = vw_export_state(w);
    if (!e->dir) {
        char *last = vw_settings_get_path(w, "last-export-folder");
        if (last && g_file_test(last, G_FILE_TEST_IS_DIR))
            e->dir = last;
        else
            g_free(last);
        if (e->dir)
            load_table(w, e->dir);
    }
    return e->dir;
}

/* ---------------------------------------------------------------- labels */

const int32_t *vw_export_labels(ViewerWindow *w, int *width, int *height)
{
    VwExport *e = vw_export_state(w);
    *width = *height = 0;
    if (!w->result || !w->image || !w->group || w->ngroups <= 0)
        return NULL;
    const AsResult *r = &w->result->r;
    int iw = w->image->img.w, ih = w->image->img.h;
    /* the user's corrections (window-edit.c) win over the model's labels */
    const int32_t *corrected = vw_edit_export_labels(w, iw, ih);
    if (corrected) {
        *width = iw;
        *height = ih;
        return corrected;
    }
    size_t n = (size_t)iw * ih;
    if (n > e->labels_cap) {
        g_free(e->labels);
        e->labels = g_try_new(int32_t, n);
        e->labels_cap = e->labels ? n : 0;
        if (!e->labels)
            return NULL;
    }
    gboolean fg_only = gtk_check_button_get_active(GTK_CHECK_BUTTON(w->fg_check));
    if (as_relabel(r->assign, r->gh, r->gw, r->q, w->group, w->ngroups, fg_only ? w->fg : NULL,
                   ih, iw, NULL, e->labels, NULL) != 0)
        return NULL;
    *width = iw;
    *height = ih;
    return e->labels;
}

/* ---------------------------------------------------------------- the task */

typedef struct {
    ViewerWindow *w; /* a reference, dropped on the main thread */
    char *dir;
    AsExportOptions xo;
    char *model_name;
    AsClass tab[AS_DATASET_MAX_CLASS + 1];
    char *names[AS_MAX_GROUPS];
    bool visible[AS_MAX_GROUPS];
    gboolean hidden_ignore;
    char **paths; /* NULL-terminated */
    int n, current; /* index of the current image in paths, -1 */
    int32_t *labels; /* the current image's (NULL: computed by the worker from the copies below) */
    float *assign;    /* (gh*gw, q) copy of the result's assignment, for the relabel */
    int32_t *group;   /* (q) copy of the grouping */
    uint8_t *fg;      /* (gh*gw) copy of the fg mask, or NULL */
    int gh, gw, q;
    bool cur_empty[AS_MAX_GROUPS]; /* its groups the legend shows at 0 % (not exported) */
    int lw, lh, lgroups, in_w, in_h;
    ViewerModel *model;
    AsSegmentOptions so;
    AsMergeOptions mo;
    gboolean fg_only;
    /* outcome */
    gboolean ran, cancelled;
    int done, failed, total; /* total: images in the dataset after the export */
    char first[256];         /* file name of the first image exported */
    char *error;             /* the first error */
} Task;

typedef struct {
    ViewerWindow *w;
    char *text;
    double fraction;
} Progress;

static gboolean progress_idle(gpointer data)
{
    Progress *p = data;
    VwExport *e = vw_export_state(p->w);
    if (p->w->worker && e->job)
        vw_progress_show(p->w, p->text, p->fraction);
    g_object_unref(p->w);
    g_free(p->text);
    g_free(p);
    return G_SOURCE_REMOVE;
}

static void post_progress(Task *t, int i, const char *path)
{
    Progress *p = g_new0(Progress, 1);
    p->w = g_object_ref(t->w);
    char *base = g_path_get_basename(path);
    p->text = g_strdup_printf(_("Exporting %s (%d of %d)"), base, i + 1, t->n);
    g_free(base);
    p->fraction = (double)i / t->n;
    /* the worker's priority: in order with its events (IDLE after ours) */
    g_idle_add_full(G_PRIORITY_DEFAULT, progress_idle, p, NULL);
}

static void task_free(gpointer data)
{
    Task *t = data;
    g_free(t->dir);
    g_free(t->model_name);
    for (int g = 0; g < AS_MAX_GROUPS; g++)
        g_free(t->names[g]);
    g_strfreev(t->paths);
    g_free(t->labels);
    g_free(t->assign);
    g_free(t->group);
    g_free(t->fg);
    viewer_model_unref(t->model);
    g_free(t->error);
    g_free(t);
}

static void stem_of(const char *path, char *buf, size_t len)
{
    char *base = g_path_get_basename(path);
    g_strlcpy(buf, base, len);
    g_free(base);
    char *dot = strrchr(buf, '.');
    if (dot && dot != buf)
        *dot = 0;
}

/* One image other than the current one: load, segment, relabel. */
static int segment_one(Task *t, const char *path, const volatile int *cancel, int32_t **labels,
                       int *lw, int *lh, int *ng, int *in_w, int *in_h, AsError *err)
{
    AsImage img = { 0 };
    AsResult res;
    memset(&res, 0, sizeof res);
    int rc = as_image_load(path, &img, err);
    if (!rc) {
        AsSegmentOptions so = t->so;
        so.hooks.cancel = cancel;
        rc = as_segment_image(t->model->model, &img, &so, &res, err);
        if (rc && rc != AS_ERR_CANCELLED)
            as_error_prefix(err, "%s: ", path);
    }
    if (!rc) {
        *labels = g_try_new(int32_t, (size_t)img.w * img.h);
        if (!*labels)
            rc = as_error_set(err, AS_ERR_NOMEM, "%s: out of memory", path);
    }
    if (!rc) {
        rc = as_result_relabel(&res, &t->mo, t->fg_only, img.h, img.w, NULL, *labels, NULL, ng,
                               err);
        *lw = img.w;
        *lh = img.h;
        *in_w = res.in_w;
        *in_h = res.in_h;
    }
    as_result_free(&res);
    as_image_free(&img);
    return rc;
}

static gboolean done_idle(gpointer data);

static void task_run(gpointer data, const volatile int *cancel)
{
    Task *t = data;
    AsError err = { 0 };
    AsDataset *d = NULL;
    int gc[AS_MAX_GROUPS];
    t->ran = TRUE;
    int rc = as_dataset_open(t->dir, &t->xo, &d, &err);
    if (!rc)
        rc = as_dataset_map_groups(d, t->tab, AS_MAX_GROUPS, (const char *const *)t->names,
                                   t->visible, t->hidden_ignore, gc, &err);
    if (rc) {
        t->error = g_strdup(err.msg);
        t->failed = t->n;
    }
    for (int i = 0; !rc && i < t->n && !*cancel; i++) {
        const char *path = t->paths[i];
        post_progress(t, i, path);
        int32_t *own = NULL;
        const int32_t *labels = t->labels;
        int lw = t->lw, lh = t->lh, ng = t->lgroups, in_w = t->in_w, in_h = t->in_h;
        AsError e1 = { 0 };
        int st = 0;
        if (i == t->current && !t->labels) {
            /* the shown image at full size, off the main thread (same call as
             * vw_export_labels) */
            own = g_try_new(int32_t, (size_t)lw * lh);
            st = !own ? as_error_set(&e1, AS_ERR_NOMEM, "%s: out of memory", path)
                      : as_relabel(t->assign, t->gh, t->gw, t->q, t->group, ng, t->fg, lh, lw,
                                   NULL, own, &e1);
            labels = own;
        } else if (i != t->current) {
            st = t->model ? segment_one(t, path, cancel, &own, &lw, &lh, &ng, &in_w, &in_h, &e1)
                          : as_error_set(&e1, AS_ERR_ARG, "%s: no model", path);
            labels = own;
        }
        if (!st) {
            /* the shown image: what the legend calls empty is not exported
             * (its shares are counted at the model's size) */
            int gcur[AS_MAX_GROUPS];
            for (int g = 0; g < AS_MAX_GROUPS; g++)
                gcur[g] = i == t->current && t->cur_empty[g] ? 0 : gc[g];
            char stem[256];
            stem_of(path, stem, sizeof stem);
            st = as_dataset_add(d, stem, path, labels, lw, lh, ng, gcur, in_w, in_h, &e1);
        }
        g_free(own);
        if (st == AS_ERR_CANCELLED || *cancel)
            break;
        if (st) {
            t->failed++;
            if (!t->error)
                t->error = g_strdup(e1.msg);
        } else if (!t->done++) {
            char *b = g_path_get_basename(path);
            g_strlcpy(t->first, b, sizeof t->first);
            g_free(b);
        }
    }
    if (*cancel) {
        t->cancelled = TRUE; /* nothing is committed: the folder stays as it was */
    } else if (!rc && t->done > 0 && as_dataset_commit(d, &err) != 0) {
        g_free(t->error);
        t->error = g_strdup(err.msg);
        t->failed += t->done;
        t->done = 0;
    }
    if (d) {
        size_t n;
        const AsClass *c = as_dataset_classes(d, &n);
        if (!t->cancelled && t->done > 0)
            memcpy(t->tab, c, sizeof t->tab);
        t->total = (int)as_dataset_image_count(d);
        as_dataset_free(d);
    }
    /* report before the worker's idle event, so a scripted run sees the outcome */
    Task *copy = g_memdup2(t, sizeof *t);
    copy->dir = g_strdup(t->dir);
    copy->error = g_strdup(t->error);
    copy->model_name = NULL;
    memset(copy->names, 0, sizeof copy->names);
    copy->paths = NULL;
    copy->labels = NULL;
    copy->assign = NULL;
    copy->group = NULL;
    copy->fg = NULL;
    copy->model = NULL;
    t->w = NULL; /* the copy carries the window's reference */
    g_idle_add_full(G_PRIORITY_DEFAULT, done_idle, copy, NULL);
}

/* A task the worker dropped before running it (cancelled while queued). */
static void task_dropped(gpointer data)
{
    Task *t = data;
    if (!t->ran && t->w) {
        Task *copy = g_new0(Task, 1);
        copy->w = t->w;
        copy->cancelled = TRUE;
        copy->dir = g_strdup(t->dir);
        t->w = NULL;
        g_idle_add_full(G_PRIORITY_DEFAULT, done_idle, copy, NULL);
    }
    task_free(t);
}

static gboolean done_idle(gpointer data)
{
    Task *t = data;
    ViewerWindow *w = t->w;
    VwExport *e = vw_export_state(w);
    e->job = 0; /* one export at a time */
    if (w->worker) { /* the window is still there */
        if (t->done > 0) {
            /* the dataset's table: ids and colours as the files have them */
            for (int k = 1; k <= AS_DATASET_MAX_CLASS; k++)
                if (e->classes[k].name[0] && !as_class_table_find(t->tab, e->classes[k].name)) {
                    int id;
                    as_class_table_add(t->tab, e->classes[k].name, k, e->classes[k].rgb, &id,
                                       NULL);
                }
            memcpy(e->classes, t->tab, sizeof e->classes);
            g_free(e->table_dir);
            e->table_dir = g_strdup(t->dir);
            if (w->settings)
                g_settings_set_string(w->settings, "last-export-folder", t->dir);
        }
        char *msg;
        if (t->cancelled)
            msg = g_strdup_printf(_("Export cancelled: %s is unchanged."), t->dir);
        else if (t->done > 0 && t->failed == 0) {
            char *what = t->done == 1 ? g_strdup(t->first)
                                      : g_strdup_printf(ngettext("%d image", "%d images", t->done),
                                                        t->done);
            msg = g_strdup_printf(ngettext("Exported %s to the dataset in %s (%d image in it)",
                                           "Exported %s to the dataset in %s (%d images in it)",
                                           t->total),
                                  what, t->dir, t->total);
            g_free(what);
        }
        else
            msg = NULL;
        if (msg)
            vw_show_notice(w, msg, FALSE);
        g_free(msg);
        if (t->failed > 0 || (t->error && !t->cancelled)) {
            char *m = t->done > 0
                          ? g_strdup_printf(_("Exported %d of %d images to %s; %s"), t->done,
                                            t->done + t->failed, t->dir, t->error ? t->error : "")
                          : g_strdup(t->error ? t->error : _("Nothing was exported."));
            vw_show_error(w, m);
            g_free(m);
        }
        vw_schedule_relabel(w); /* legend names */
    }
    g_object_unref(w);
    g_free(t->dir);
    g_free(t->error);
    g_free(t);
    return G_SOURCE_REMOVE;
}

/* ---------------------------------------------------------------- starting */

typedef enum { SCOPE_IMAGE, SCOPE_ALL, SCOPE_LIST } Scope;

static void start_export(ViewerWindow *w, const char *dir, char **paths)
{
    VwExport *e = vw_export_state(w);
    if (w->relabel_idle) { /* a slider or legend change not yet applied */
        g_source_remove(w->relabel_idle);
        w->relabel_idle = 0;
        vw_relabel(w);
    }
    Task *t = g_new0(Task, 1);
    t->dir = g_strdup(dir);
    as_export_options_default(&t->xo);
    t->xo.formats = e->formats ? e->formats : AS_EXPORT_ALL;
    t->xo.generator = "alignseg-viewer " ALIGNSEG_VERSION;
    t->model_name = g_strdup(w->model ? w->model->name : NULL);
    t->xo.model = t->model_name;
    t->xo.untrained = w->result ? w->result->untrained : (w->model && w->model->untrained);
    memcpy(t->tab, e->classes, sizeof t->tab);
    for (int g = 0; g < AS_MAX_GROUPS; g++) {
        t->names[g] = g_strdup(e->names[g]);
        t->visible[g] = g < w->ngroups && w->result ? vw_group_visible(w, g) : true;
    }
    t->hidden_ignore = e->hidden_ignore;
    t->paths = paths;
    t->n = (int)g_strv_length(paths);
    t->current = -1;
    /* the shown image's labels: the corrected map is copied, the model's are
     * computed by the worker from copies (a full-size relabel takes seconds) */
    for (int i = 0; w->image && w->result && w->group && w->ngroups > 0 && i < t->n; i++)
        if (!strcmp(paths[i], w->image->path)) {
            const AsResult *r = &w->result->r;
            int iw = w->image->img.w, ih = w->image->img.h;
            const int32_t *corrected = vw_edit_export_labels(w, iw, ih);
            size_t np = (size_t)r->gh * r->gw;
            if (corrected) {
                t->labels = g_try_malloc((size_t)iw * ih * sizeof *corrected);
                if (!t->labels)
                    break;
                memcpy(t->labels, corrected, (size_t)iw * ih * sizeof *corrected);
            } else {
                if (!r->assign)
                    break;
                gboolean fg_only = gtk_check_button_get_active(GTK_CHECK_BUTTON(w->fg_check));
                t->assign = g_memdup2(r->assign, np * r->q * sizeof *r->assign);
                t->group = g_memdup2(w->group, (gsize)r->q * sizeof *w->group);
                t->fg = fg_only && w->fg ? g_memdup2(w->fg, np) : NULL;
                t->gh = r->gh;
                t->gw = r->gw;
                t->q = r->q;
                /* the model's labels (not corrected ones, which the shares do not count) */
                for (int g = 0; g < w->ngroups && g < AS_MAX_GROUPS; g++)
                    t->cur_empty[g] = w->share && w->share[g] <= 0;
            }
            t->current = i;
            t->lw = iw;
            t->lh = ih;
            t->lgroups = w->ngroups;
            t->in_w = r->in_w;
            t->in_h = r->in_h;
            break;
        }
    t->model = viewer_model_ref(w->model);
    as_segment_options_default(&t->so);
    t->so.size = w->input_size;
    t->so.long_side = w->keep_aspect ? w->input_size : 0;
    t->so.mass_threshold = (float)gtk_adjustment_get_value(w->mass_adj);
    as_merge_options_default(&t->mo);
    int k = (int)(gtk_adjustment_get_value(w->k_adj) + 0.5);
    t->mo.merge_to = w->result && k >= w->result->r.q ? 0 : k;
    double thr = gtk_adjustment_get_value(w->merge_adj);
    t->mo.threshold = thr > 1.0 ? 2.0f : (float)thr;
    t->fg_only = gtk_check_button_get_active(GTK_CHECK_BUTTON(w->fg_check));
    t->w = g_object_ref(w);
    e->job = worker_run_task(w->worker, task_run, t, task_dropped); /* t is the worker's now */
    w->last_job = e->job; /* a scripted run waits for it; win.cancel stops it */
    vw_progress_show(w, _("Exporting…"), 0.0);
    g_free(e->dir);
    e->dir = g_strdup(dir);
}

/* The images of scope, NULL-terminated (NULL if none). */
static char **scope_paths(ViewerWindow *w, Scope s, char **list)
{
    if (s == SCOPE_LIST)
        return g_strdupv(list);
    GPtrArray *a = g_ptr_array_new();
    if (s == SCOPE_ALL && w->files)
        for (guint i = 0; i < w->files->len; i++)
            g_ptr_array_add(a, g_strdup(g_ptr_array_index(w->files, i)));
    else if (s == SCOPE_IMAGE && w->image && w->result)
        g_ptr_array_add(a, g_strdup(w->image->path));
    if (a->len == 0) {
        g_ptr_array_free(a, TRUE);
        return NULL;
    }
    g_ptr_array_add(a, NULL);
    return (char **)g_ptr_array_free(a, FALSE);
}

typedef struct {
    ViewerWindow *w;
    char *dir;
    char **paths;
} Pending;

static void replace_response(GtkDialog *d, int response, gpointer data)
{
    Pending *p = data;
    if (response == GTK_RESPONSE_ACCEPT)
        start_export(p->w, p->dir, p->paths);
    else
        g_strfreev(p->paths);
    g_free(p->dir);
    g_free(p);
    gtk_window_destroy(GTK_WINDOW(d));
}

/* Export paths into dir: after a warning listing the images dir has already,
 * unless replacing was allowed. Takes paths. */
static void export_paths(ViewerWindow *w, const char *dir, char **paths, gboolean ask)
{
    VwExport *e = vw_export_state(w);
    if (!paths) {
        vw_show_error(w, _("Nothing to export yet: open an image and a model first."));
        return;
    }
    if (e->job) {
        vw_show_error(w, _("An export is running: wait for it or cancel it first."));
        g_strfreev(paths);
        return;
    }
    if (!w->model) {
        vw_show_error(w, _("Nothing to export yet: open an image and a model first."));
        g_strfreev(paths);
        return;
    }
    load_table(w, dir);
    AsClass tab[AS_DATASET_MAX_CLASS + 1];
    char **have = NULL;
    AsError err = { 0 };
    if (as_dataset_peek(dir, tab, &have, &err) != 0) {
        vw_show_error(w, err.msg);
        g_strfreev(paths);
        return;
    }
    GString *dup = g_string_new(NULL);
    int ndup = 0;
    for (int i = 0; paths[i]; i++) {
        char stem[256];
        stem_of(paths[i], stem, sizeof stem);
        for (int k = 0; have && have[k]; k++)
            if (!strcmp(have[k], stem)) {
                if (ndup < 8)
                    g_string_append_printf(dup, "\n• %s", stem);
                ndup++;
                break;
            }
    }
    as_dataset_free_names(have);
    if (ndup > 8)
        g_string_append_printf(dup, "\n• … (%d more)", ndup - 8);
    if (ndup == 0 || !ask || e->replace_ok) {
        g_string_free(dup, TRUE);
        start_export(w, dir, paths);
        return;
    }
    Pending *p = g_new0(Pending, 1);
    p->w = w;
    p->dir = g_strdup(dir);
    p->paths = paths;
    GtkWidget *d = gtk_message_dialog_new(
        GTK_WINDOW(w), GTK_DIALOG_MODAL | GTK_DIALOG_DESTROY_WITH_PARENT, GTK_MESSAGE_WARNING,
        GTK_BUTTONS_NONE,
        ngettext("Replace %d image in this dataset?", "Replace %d images in this dataset?", ndup),
        ndup);
    char *body = g_strdup_printf(
        _("%s already holds these images. Exporting replaces all their entries (VOC, masks, "
          "COCO, labelme); their image ids stay the same.%s"),
        dir, dup->str);
    gtk_message_dialog_format_secondary_text(GTK_MESSAGE_DIALOG(d), "%s", body);
    g_free(body);
    g_string_free(dup, TRUE);
    gtk_dialog_add_button(GTK_DIALOG(d), _("_Cancel"), GTK_RESPONSE_CANCEL);
    GtkWidget *rb = gtk_dialog_add_button(GTK_DIALOG(d), _("_Replace"), GTK_RESPONSE_ACCEPT);
    gtk_widget_add_css_class(rb, "destructive-action");
    gtk_dialog_set_default_response(GTK_DIALOG(d), GTK_RESPONSE_CANCEL);
    g_signal_connect(d, "response", G_CALLBACK(replace_response), p);
    gtk_window_present(GTK_WINDOW(d));
}

void vw_export_to(ViewerWindow *w, const char *dir)
{
    /* the command line's --export: the current image, no questions */
    export_paths(w, dir, scope_paths(w, SCOPE_IMAGE, NULL), FALSE);
}

/* ---------------------------------------------------------------- dialog */

typedef struct {
    ViewerWindow *w;
    GtkWidget *win, *folder_label, *info_label, *classes_label;
    GtkWidget *scope_image, *scope_all, *scope_list, *list;
    GtkWidget *fmt[4], *hidden_check;
    char *dir;
} Dlg;

static const unsigned fmt_bits[4] = { AS_EXPORT_VOC, AS_EXPORT_MASKS, AS_EXPORT_COCO,
                                      AS_EXPORT_LABELME };

static void dlg_free(gpointer p)
{
    Dlg *d = p;
    g_free(d->dir);
    g_free(d);
}

static void dlg_update(Dlg *d)
{
    ViewerWindow *w = d->w;
    VwExport *e = vw_export_state(w);
    char *shown = d->dir ? g_filename_display_name(d->dir) : g_strdup(_("(choose a folder)"));
    gtk_label_set_text(GTK_LABEL(d->folder_label), shown);
    g_free(shown);
    AsClass tab[AS_DATASET_MAX_CLASS + 1];
    char **have = NULL;
    AsError err = { 0 };
    char *info;
    if (!d->dir)
        info = g_strdup(_("Choose the dataset folder: a new one, or one exported to before."));
    else if (as_dataset_peek(d->dir, tab, &have, &err) != 0)
        info = g_strdup(err.msg);
    else if (!have || !have[0])
        info = g_strdup(_("A new dataset will be created in this folder."));
    else
        info = g_strdup_printf(ngettext("This folder holds a dataset of %d image; exported images "
                                        "are added to it, images it has are replaced.",
                                        "This folder holds a dataset of %d images; exported "
                                        "images are added to it, images it has are replaced.",
                                        (int)g_strv_length(have)),
                               (int)g_strv_length(have));
    as_dataset_free_names(have);
    gtk_label_set_text(GTK_LABEL(d->info_label), info);
    g_free(info);
    if (d->dir)
        load_table(w, d->dir);
    GString *c = g_string_new(NULL);
    for (int k = 1; k <= AS_DATASET_MAX_CLASS; k++)
        if (e->classes[k].name[0])
            g_string_append_printf(c, "%s%d %s", c->len ? " · " : "", k, e->classes[k].name);
    char *ct = g_strdup_printf(_("Class table (id name): %s"),
                               c->len ? c->str : _("none yet; unnamed groups are prototype_G"));
    gtk_label_set_text(GTK_LABEL(d->classes_label), ct);
    g_free(ct);
    g_string_free(c, TRUE);
    gtk_widget_set_sensitive(d->list,
                             gtk_check_button_get_active(GTK_CHECK_BUTTON(d->scope_list)));
}

static void dlg_folder_response(GtkNativeDialog *fc, int response, gpointer data)
{
    Dlg *d = data;
    if (response == GTK_RESPONSE_ACCEPT) {
        GFile *f = gtk_file_chooser_get_file(GTK_FILE_CHOOSER(fc));
        char *p = f ? g_file_get_path(f) : NULL;
        if (p) {
            g_free(d->dir);
            d->dir = p;
            dlg_update(d);
        }
        if (f)
            g_object_unref(f);
    }
    g_object_unref(fc);
}

static void dlg_choose_folder(GtkButton *b, gpointer data)
{
    (void)b;
    Dlg *d = data;
    GtkFileChooserNative *fc = gtk_file_chooser_native_new(
        _("Dataset Folder"), GTK_WINDOW(d->win), GTK_FILE_CHOOSER_ACTION_SELECT_FOLDER,
        _("_Select"), _("_Cancel"));
    if (d->dir) {
        GFile *gf = g_file_new_for_path(d->dir);
        gtk_file_chooser_set_current_folder(GTK_FILE_CHOOSER(fc), gf, NULL);
        g_object_unref(gf);
    }
    gtk_native_dialog_set_modal(GTK_NATIVE_DIALOG(fc), TRUE);
    g_signal_connect(fc, "response", G_CALLBACK(dlg_folder_response), d);
    gtk_native_dialog_show(GTK_NATIVE_DIALOG(fc));
}

static void dlg_scope_toggled(GtkCheckButton *b, gpointer data)
{
    (void)b;
    dlg_update(data);
}

static void dlg_export(GtkButton *b, gpointer data)
{
    (void)b;
    Dlg *d = data;
    ViewerWindow *w = d->w;
    VwExport *e = vw_export_state(w);
    if (!d->dir) {
        dlg_choose_folder(NULL, d);
        return;
    }
    unsigned f = 0;
    for (int i = 0; i < 4; i++)
        if (gtk_check_button_get_active(GTK_CHECK_BUTTON(d->fmt[i])))
            f |= fmt_bits[i];
    if (!f) {
        gtk_label_set_text(GTK_LABEL(d->info_label), _("Choose at least one format."));
        return;
    }
    e->formats = f;
    e->hidden_ignore = gtk_check_button_get_active(GTK_CHECK_BUTTON(d->hidden_check));
    char **paths;
    if (gtk_check_button_get_active(GTK_CHECK_BUTTON(d->scope_all))) {
        paths = scope_paths(w, SCOPE_ALL, NULL);
    } else if (gtk_check_button_get_active(GTK_CHECK_BUTTON(d->scope_list))) {
        GPtrArray *a = g_ptr_array_new();
        for (GtkWidget *r = gtk_widget_get_first_child(d->list); r;
             r = gtk_widget_get_next_sibling(r)) {
            GtkWidget *cb = gtk_list_box_row_get_child(GTK_LIST_BOX_ROW(r));
            if (cb && gtk_check_button_get_active(GTK_CHECK_BUTTON(cb)))
                g_ptr_array_add(a, g_strdup(g_object_get_data(G_OBJECT(cb), "path")));
        }
        g_ptr_array_add(a, NULL);
        paths = (char **)g_ptr_array_free(a, FALSE);
        if (!paths[0]) {
            g_strfreev(paths);
            gtk_label_set_text(GTK_LABEL(d->info_label), _("Select at least one image."));
            return;
        }
    } else {
        paths = scope_paths(w, SCOPE_IMAGE, NULL);
    }
    char *dir = g_strdup(d->dir);
    gtk_window_destroy(GTK_WINDOW(d->win)); /* frees d */
    export_paths(w, dir, paths, TRUE);
    vw_schedule_relabel(w);
    g_free(dir);
}

static void dlg_cancel(GtkButton *b, gpointer data)
{
    (void)b;
    Dlg *d = data;
    gtk_window_destroy(GTK_WINDOW(d->win));
}

static GtkWidget *heading(const char *text)
{
    GtkWidget *l = gtk_label_new(text);
    gtk_label_set_xalign(GTK_LABEL(l), 0);
    gtk_widget_add_css_class(l, "heading");
    gtk_widget_set_margin_top(l, 6);
    return l;
}

static void show_dialog(ViewerWindow *w)
{
    VwExport *e = vw_export_state(w);
    if (e->dialog) {
        gtk_window_present(GTK_WINDOW(e->dialog));
        return;
    }
    Dlg *d = g_new0(Dlg, 1);
    d->w = w;
    d->dir = g_strdup(vw_export_default_dir(w));
    GtkWidget *win = d->win = gtk_window_new();
    e->dialog = win;
    g_object_add_weak_pointer(G_OBJECT(win), (gpointer *)&e->dialog); /* closed any way */
    g_object_set_data_full(G_OBJECT(win), "dlg", d, dlg_free);
    gtk_window_set_title(GTK_WINDOW(win), _("Export Dataset"));
    gtk_window_set_titlebar(GTK_WINDOW(win), gtk_header_bar_new());
    gtk_window_set_transient_for(GTK_WINDOW(win), GTK_WINDOW(w));
    gtk_window_set_modal(GTK_WINDOW(win), TRUE);
    gtk_window_set_destroy_with_parent(GTK_WINDOW(win), TRUE);
    gtk_window_set_default_size(GTK_WINDOW(win), 520, -1);
    GtkWidget *box = gtk_box_new(GTK_ORIENTATION_VERTICAL, 6);
    gtk_widget_set_margin_start(box, 18);
    gtk_widget_set_margin_end(box, 18);
    gtk_widget_set_margin_top(box, 12);
    gtk_widget_set_margin_bottom(box, 18);
    gtk_window_set_child(GTK_WINDOW(win), box);

    gtk_box_append(GTK_BOX(box), heading(_("Dataset folder")));
    GtkWidget *row = gtk_box_new(GTK_ORIENTATION_HORIZONTAL, 8);
    d->folder_label = gtk_label_new(NULL);
    gtk_label_set_xalign(GTK_LABEL(d->folder_label), 0);
    gtk_label_set_ellipsize(GTK_LABEL(d->folder_label), PANGO_ELLIPSIZE_START);
    gtk_widget_set_hexpand(d->folder_label, TRUE);
    gtk_box_append(GTK_BOX(row), d->folder_label);
    GtkWidget *choose = gtk_button_new_with_mnemonic(_("C_hoose…"));
    g_signal_connect(choose, "clicked", G_CALLBACK(dlg_choose_folder), d);
    gtk_box_append(GTK_BOX(row), choose);
    gtk_box_append(GTK_BOX(box), row);
    d->info_label = gtk_label_new(NULL);
    gtk_label_set_xalign(GTK_LABEL(d->info_label), 0);
    gtk_label_set_wrap(GTK_LABEL(d->info_label), TRUE);
    gtk_label_set_max_width_chars(GTK_LABEL(d->info_label), 60);
    gtk_widget_add_css_class(d->info_label, "dim-label");
    gtk_box_append(GTK_BOX(box), d->info_label);

    gtk_box_append(GTK_BOX(box), heading(_("Images")));
    char *base = w->image ? g_path_get_basename(w->image->path) : g_strdup("-");
    char *t1 = g_strdup_printf(_("This image (%s)"), base);
    g_free(base);
    d->scope_image = gtk_check_button_new_with_label(t1);
    g_free(t1);
    int nfiles = w->files ? (int)w->files->len : 0;
    char *t2 = g_strdup_printf(ngettext("All %d image of the folder", "All %d images of the folder",
                                        nfiles),
                               nfiles);
    d->scope_all = gtk_check_button_new_with_label(t2);
    g_free(t2);
    d->scope_list = gtk_check_button_new_with_label(_("The images selected below"));
    gtk_check_button_set_group(GTK_CHECK_BUTTON(d->scope_all), GTK_CHECK_BUTTON(d->scope_image));
    gtk_check_button_set_group(GTK_CHECK_BUTTON(d->scope_list), GTK_CHECK_BUTTON(d->scope_image));
    gtk_check_button_set_active(GTK_CHECK_BUTTON(d->scope_image), TRUE);
    gtk_widget_set_sensitive(d->scope_image, w->result != NULL);
    if (!w->result)
        gtk_check_button_set_active(GTK_CHECK_BUTTON(d->scope_all), TRUE);
    gtk_widget_set_sensitive(d->scope_all, nfiles > 0);
    gtk_widget_set_sensitive(d->scope_list, nfiles > 0);
    gtk_box_append(GTK_BOX(box), d->scope_image);
    gtk_box_append(GTK_BOX(box), d->scope_all);
    gtk_box_append(GTK_BOX(box), d->scope_list);
    d->list = gtk_list_box_new();
    gtk_list_box_set_selection_mode(GTK_LIST_BOX(d->list), GTK_SELECTION_NONE);
    for (int i = 0; i < nfiles; i++) {
        const char *p = g_ptr_array_index(w->files, i);
        char *b = g_path_get_basename(p);
        GtkWidget *cb = gtk_check_button_new_with_label(b);
        g_free(b);
        g_object_set_data_full(G_OBJECT(cb), "path", g_strdup(p), g_free);
        gtk_check_button_set_active(GTK_CHECK_BUTTON(cb), i == w->file_index);
        gtk_list_box_append(GTK_LIST_BOX(d->list), cb);
    }
    GtkWidget *sc = gtk_scrolled_window_new();
    gtk_scrolled_window_set_child(GTK_SCROLLED_WINDOW(sc), d->list);
    gtk_scrolled_window_set_policy(GTK_SCROLLED_WINDOW(sc), GTK_POLICY_NEVER,
                                   GTK_POLICY_AUTOMATIC);
    gtk_scrolled_window_set_min_content_height(GTK_SCROLLED_WINDOW(sc), nfiles > 4 ? 110 : 60);
    gtk_scrolled_window_set_max_content_height(GTK_SCROLLED_WINDOW(sc), 160);
    gtk_scrolled_window_set_propagate_natural_height(GTK_SCROLLED_WINDOW(sc), TRUE);
    gtk_widget_set_margin_start(sc, 24);
    gtk_widget_add_css_class(sc, "frame");
    gtk_box_append(GTK_BOX(box), sc);
    g_signal_connect(d->scope_list, "toggled", G_CALLBACK(dlg_scope_toggled), d);

    gtk_box_append(GTK_BOX(box), heading(_("Formats")));
    GtkWidget *fr = gtk_box_new(GTK_ORIENTATION_HORIZONTAL, 12);
    static const char *const fmt_names[4] = { N_("PASCAL VOC"), N_("Masks"), N_("COCO"),
                                              N_("labelme") };
    for (int i = 0; i < 4; i++) {
        d->fmt[i] = gtk_check_button_new_with_label(_(fmt_names[i]));
        gtk_check_button_set_active(GTK_CHECK_BUTTON(d->fmt[i]),
                                    (e->formats ? e->formats : AS_EXPORT_ALL) & fmt_bits[i]);
        gtk_box_append(GTK_BOX(fr), d->fmt[i]);
    }
    gtk_box_append(GTK_BOX(box), fr);

    gtk_box_append(GTK_BOX(box), heading(_("Classes")));
    d->classes_label = gtk_label_new(NULL);
    gtk_label_set_xalign(GTK_LABEL(d->classes_label), 0);
    gtk_label_set_wrap(GTK_LABEL(d->classes_label), TRUE);
    gtk_label_set_max_width_chars(GTK_LABEL(d->classes_label), 60);
    gtk_box_append(GTK_BOX(box), d->classes_label);
    GtkWidget *hint = gtk_label_new(_("Name groups with the pencil in the legend. Hidden groups "
                                      "and groups without pixels are not exported."));
    gtk_label_set_xalign(GTK_LABEL(hint), 0);
    gtk_label_set_wrap(GTK_LABEL(hint), TRUE);
    gtk_label_set_max_width_chars(GTK_LABEL(hint), 60);
    gtk_widget_add_css_class(hint, "dim-label");
    gtk_box_append(GTK_BOX(box), hint);
    d->hidden_check = gtk_check_button_new_with_label(_("Export hidden groups as “ignore”"));
    gtk_check_button_set_active(GTK_CHECK_BUTTON(d->hidden_check), e->hidden_ignore);
    gtk_box_append(GTK_BOX(box), d->hidden_check);

    GtkWidget *buttons = gtk_box_new(GTK_ORIENTATION_HORIZONTAL, 8);
    gtk_widget_set_halign(buttons, GTK_ALIGN_END);
    gtk_widget_set_margin_top(buttons, 12);
    GtkWidget *cancel = gtk_button_new_with_mnemonic(_("_Cancel"));
    g_signal_connect(cancel, "clicked", G_CALLBACK(dlg_cancel), d);
    GtkWidget *ok = gtk_button_new_with_mnemonic(_("_Export"));
    gtk_widget_add_css_class(ok, "suggested-action");
    g_signal_connect(ok, "clicked", G_CALLBACK(dlg_export), d);
    gtk_box_append(GTK_BOX(buttons), cancel);
    gtk_box_append(GTK_BOX(buttons), ok);
    gtk_box_append(GTK_BOX(box), buttons);
    gtk_window_set_default_widget(GTK_WINDOW(win), ok);
    dlg_update(d);
    gtk_window_present(GTK_WINDOW(win));
    gtk_widget_grab_focus(ok); /* Enter exports */
}

/* ---------------------------------------------------------------- actions */

static void act_export(GtkWidget *widget, const char *action, GVariant *param)
{
    (void)action;
    (void)param;
    show_dialog(VIEWER_WINDOW(widget));
}

static void act_export_folder(GtkWidget *widget, const char *action, GVariant *param)
{
    ViewerWindow *w = VIEWER_WINDOW(widget);
    const char *dir = g_variant_get_string(param, NULL);
    Scope s = !strcmp(action, "win.export-all") ? SCOPE_ALL : SCOPE_IMAGE;
    export_paths(w, dir, scope_paths(w, s, NULL), TRUE);
}

static void act_group_class(GtkWidget *widget, const char *action, GVariant *param)
{
    (void)action;
    int g = 0;
    const char *name = NULL;
    g_variant_get(param, "(i&s)", &g, &name);
    vw_set_group_class(VIEWER_WINDOW(widget), g, name);
}

/* Open group g's class menu in the legend (the pencil). */
static void act_class_menu(GtkWidget *widget, const char *action, GVariant *param)
{
    (void)action;
    ViewerWindow *w = VIEWER_WINDOW(widget);
    char *name = g_strdup_printf("class-menu-%d", g_variant_get_int32(param));
    for (GtkWidget *row = gtk_widget_get_first_child(w->legend); row;
         row = gtk_widget_get_next_sibling(row)) {
        GtkWidget *box = gtk_list_box_row_get_child(GTK_LIST_BOX_ROW(row));
        for (GtkWidget *c = box ? gtk_widget_get_first_child(box) : NULL; c;
             c = gtk_widget_get_next_sibling(c))
            if (GTK_IS_MENU_BUTTON(c) && !g_strcmp0(gtk_widget_get_name(c), name))
                gtk_menu_button_popup(GTK_MENU_BUTTON(c));
    }
    g_free(name);
}

static void act_export_hidden(GtkWidget *widget, const char *action, GVariant *param)
{
    (void)action;
    ViewerWindow *w = VIEWER_WINDOW(widget);
    vw_export_state(w)->hidden_ignore = g_variant_get_boolean(param);
    vw_schedule_relabel(w);
}

static void act_export_replace(GtkWidget *widget, const char *action, GVariant *param)
{
    (void)action;
    vw_export_state(VIEWER_WINDOW(widget))->replace_ok = g_variant_get_boolean(param);
}

static void act_export_formats(GtkWidget *widget, const char *action, GVariant *param)
{
    (void)action;
    ViewerWindow *w = VIEWER_WINDOW(widget);
    unsigned f = 0;
    AsError err = { 0 };
    if (as_export_parse_formats(g_variant_get_string(param, NULL), &f, &err) != 0)
        vw_show_error(w, err.msg);
    else
        vw_export_state(w)->formats = f;
}

void vw_export_class_init(GtkWidgetClass *wc)
{
    gtk_widget_class_install_action(wc, "win.export", NULL, act_export);
    gtk_widget_class_install_action(wc, "win.export-folder", "s", act_export_folder);
    gtk_widget_class_install_action(wc, "win.export-all", "s", act_export_folder);
    gtk_widget_class_install_action(wc, "win.group-class", "(is)", act_group_class);
    gtk_widget_class_install_action(wc, "win.class-menu", "i", act_class_menu);
    gtk_widget_class_install_action(wc, "win.export-hidden", "b", act_export_hidden);
    gtk_widget_class_install_action(wc, "win.export-replace", "b", act_export_replace);
    gtk_widget_class_install_action(wc, "win.export-formats", "s", act_export_formats);
}
