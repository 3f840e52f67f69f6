/* window: the main window of alignseg-viewer (see window.h; how the window's
 * files divide the work: window-private.h). This file: the class and its
 * lifecycle, settings, the error banner and progress strip, the status and
 * model lines, and the jobs (worker events, loading models and images, the
 * list of files). */
#include "window-private.h"

#include <math.h>
#include <string.h>

#include "vutil.h"

G_DEFINE_FINAL_TYPE(ViewerWindow, viewer_window, GTK_TYPE_APPLICATION_WINDOW)

/* ---------------------------------------------------------------- settings */

#ifndef VIEWER_SCHEMA_BUILDDIR
#define VIEWER_SCHEMA_BUILDDIR ""
#endif

/* The build tree's schema (data/gschemas.compiled) when this is the
 * uninstalled binary, ahead of any installed one of an older version; the
 * installed schema otherwise. NULL when there is none. */
static GSettings *settings_new(void)
{
    GSettingsSchemaSource *src = g_settings_schema_source_get_default();
    GSettingsSchemaSource *build = NULL;
    if (VIEWER_SCHEMA_BUILDDIR[0] && viewer_running_uninstalled())
        build = g_settings_schema_source_new_from_directory(VIEWER_SCHEMA_BUILDDIR, src, FALSE,
                                                            NULL);
    GSettingsSchema *schema =
        build ? g_settings_schema_source_lookup(build, APP_ID, TRUE)
              : src ? g_settings_schema_source_lookup(src, APP_ID, TRUE) : NULL;
    if (build)
        g_settings_schema_source_unref(build);
    if (!schema)
        return NULL;
    GSettings *s = g_settings_new_full(schema, NULL, NULL);
    g_settings_schema_unref(schema);
    return s;
}

char *vw_settings_get_path(ViewerWindow *w, const char *key)
{
    if (!w->settings)
        return NULL;
    char *v = g_settings_get_string(w->settings, key);
    if (!v || !v[0]) {
        g_free(v);
        return NULL;
    }
    return v;
}

/* K is stored as 0 ("all prototypes") when the slider is at its upper end, so
 * a new model with more prototypes starts with all of them again. */
static gboolean k_from_setting(GValue *value, GVariant *variant, gpointer data)
{
    (void)data;
    const int k = g_variant_get_int32(variant);
    g_value_set_double(value, k > 0 ? k : 1e6); /* the adjustment clamps 1e6 to its upper */
    return TRUE;
}

static GVariant *k_to_setting(const GValue *value, const GVariantType *type, gpointer data)
{
    GtkAdjustment *adj = data;
    (void)type;
    const double k = g_value_get_double(value);
    return g_variant_new_int32(k >= gtk_adjustment_get_upper(adj) ? 0 : (int)lround(k));
}

/* Sliders, check boxes and the window's size follow their keys both ways. */
static void settings_bind(ViewerWindow *w)
{
    if (!w->settings)
        return;
    static const struct {
        const char *key;
        size_t offset; /* of the object in ViewerWindow */
        const char *property;
    } binds[] = {
        { "merge-threshold", G_STRUCT_OFFSET(ViewerWindow, merge_adj), "value" },
        { "mass-threshold", G_STRUCT_OFFSET(ViewerWindow, mass_adj), "value" },
        { "opacity", G_STRUCT_OFFSET(ViewerWindow, opacity_adj), "value" },
        { "show-contours", G_STRUCT_OFFSET(ViewerWindow, contours_check), "active" },
        { "restrict-foreground", G_STRUCT_OFFSET(ViewerWindow, fg_check), "active" },
        { "smooth-heatmaps", G_STRUCT_OFFSET(ViewerWindow, smooth_check), "active" },
        { "keep-aspect", G_STRUCT_OFFSET(ViewerWindow, aspect_check), "active" },
    };
    for (size_t i = 0; i < G_N_ELEMENTS(binds); i++)
        g_settings_bind(w->settings, binds[i].key,
                        G_STRUCT_MEMBER(gpointer, w, binds[i].offset), binds[i].property,
                        G_SETTINGS_BIND_DEFAULT);
    g_settings_bind_with_mapping(w->settings, "prototype-count", w->k_adj, "value",
                                 G_SETTINGS_BIND_DEFAULT, k_from_setting, k_to_setting, w->k_adj,
                                 NULL);
    g_settings_bind(w->settings, "window-width", w, "default-width", G_SETTINGS_BIND_DEFAULT);
    g_settings_bind(w->settings, "window-height", w, "default-height", G_SETTINGS_BIND_DEFAULT);
    g_settings_bind(w->settings, "window-maximized", w, "maximized", G_SETTINGS_BIND_DEFAULT);
}

/* ---------------------------------------------------------------- messages */

/* Exit status of --screenshot runs, kept on the application (the window may be gone). */
void vw_set_exit(ViewerWindow *w, int status)
{
    w->exit_status = status;
    GtkApplication *app = gtk_window_get_application(GTK_WINDOW(w));
    if (app)
        g_object_set_data(G_OBJECT(app), "exit-status", GINT_TO_POINTER(status));
}

void vw_show_error(ViewerWindow *w, const char *msg)
{
    gtk_label_set_text(GTK_LABEL(w->banner_label), msg);
    gtk_revealer_set_reveal_child(GTK_REVEALER(w->banner_revealer), TRUE);
    if (w->opt_screenshot)
        g_printerr("alignseg-viewer: %s\n", msg);
    vw_set_exit(w, 1);
}

void vw_hide_error(ViewerWindow *w)
{
    gtk_revealer_set_reveal_child(GTK_REVEALER(w->banner_revealer), FALSE);
}

static void on_banner_dismiss(ViewerWindow *w)
{
    vw_hide_error(w);
}

void vw_show_notice(ViewerWindow *w, const char *msg, gboolean offer_rerun)
{
    gtk_label_set_text(GTK_LABEL(w->notice_label), msg);
    gtk_widget_set_visible(w->notice_rerun, offer_rerun);
    gtk_revealer_set_reveal_child(GTK_REVEALER(w->notice_revealer), msg && msg[0]);
}

static void on_notice_dismiss(ViewerWindow *w)
{
    gtk_revealer_set_reveal_child(GTK_REVEALER(w->notice_revealer), FALSE);
}

const char *vw_stage_name(const char *stage)
{
    static const struct { const char *id, *text; } names[] = {
        { "load", N_("Loading the model") },
        { "image", N_("Reading the image") },
        { "resize", N_("Resizing the image") },
        { "encoder", N_("Encoder (ViT)") },
        { "decoder", N_("Decoder (prototypes)") },
        { "prototypes", N_("Prototypes (k-means)") },
        { "similarity", N_("Similarity") },
        { "labels", N_("Labels") },
        { "foreground", N_("Foreground mask") },
        { "done", N_("Done") },
    };
    for (size_t i = 0; i < G_N_ELEMENTS(names); i++)
        if (!strcmp(stage, names[i].id))
            return _(names[i].text);
    return stage;
}

void vw_progress_show(ViewerWindow *w, const char *text, double fraction)
{
    gtk_label_set_text(GTK_LABEL(w->progress_label), text);
    if (fraction >= 0)
        gtk_progress_bar_set_fraction(GTK_PROGRESS_BAR(w->progress_bar), fraction);
    else
        gtk_progress_bar_pulse(GTK_PROGRESS_BAR(w->progress_bar));
    gtk_spinner_set_spinning(GTK_SPINNER(w->spinner), TRUE);
    gtk_revealer_set_reveal_child(GTK_REVEALER(w->progress_revealer), TRUE);
}

void vw_progress_hide(ViewerWindow *w)
{
    gtk_spinner_set_spinning(GTK_SPINNER(w->spinner), FALSE);
    gtk_revealer_set_reveal_child(GTK_REVEALER(w->progress_revealer), FALSE);
}

void vw_update_status(ViewerWindow *w)
{
    GString *s = g_string_new(NULL);
    if (w->image) {
        char *base = g_path_get_basename(w->image->path);
        g_string_append_printf(s, "%s — %d×%d", base, w->image->img.w, w->image->img.h);
        g_free(base);
        if (w->files && w->files->len > 1)
            g_string_append_printf(s, _(" — %d of %u"), w->file_index + 1, w->files->len);
    } else if (w->files && w->file_index >= 0 && w->file_index < (int)w->files->len) {
        /* the file being read, or the one that could not be read */
        char *base = g_path_get_basename(g_ptr_array_index(w->files, w->file_index));
        g_string_append(s, base);
        g_free(base);
        if (w->files->len > 1)
            g_string_append_printf(s, _(" — %d of %u"), w->file_index + 1, w->files->len);
        if (w->failed)
            g_string_append(s, _(" — could not be read"));
    } else {
        g_string_append(s, _("No image — open one with Ctrl+O or drop it here"));
    }
    if (!w->result && w->cancelled)
        g_string_append(s, _(" — cancelled (F5 segments it again)"));
    if (w->result) {
        const AsResult *r = &w->result->r;
        g_string_append_printf(s, _(" — input %d×%d, %d×%d patches, %d prototypes"), r->in_w,
                               r->in_h, r->gw, r->gh, r->q);
        if (w->result->seconds > 0)
            g_string_append_printf(s, _(" — %.2f s"), w->result->seconds);
        g_string_append_printf(s, _(" — relabel %.1f ms"), w->relabel_us / 1000.0);
        if (w->result->untrained)
            g_string_append(s, _(" — UNTRAINED"));
    }
    gtk_label_set_text(GTK_LABEL(w->status_label), s->str);
    g_string_free(s, TRUE);
}

void vw_update_model_ui(ViewerWindow *w)
{
    gboolean have = w->model != NULL;
    gboolean images = w->files && w->files->len > 0;
    /* the photo shows without a model; the introduction only when there is neither */
    gtk_stack_set_visible_child_name(GTK_STACK(w->content), have || images ? "views" : "empty");
    const gboolean loading = w->model_job > w->done_job; /* a model is on its way */
    gtk_revealer_set_reveal_child(GTK_REVEALER(w->nomodel_revealer), !have && images && !loading);
    gtk_widget_set_visible(w->untrained_label, have && w->model->untrained);
    if (have) {
        const AsModel *m = w->model->model;
        char *t;
        if (m->has_decoder)
            t = g_strdup_printf(_("Model: %s\nViT patch %d, width %d, %d heads; decoder %d "
                                  "prototypes, %d heads"),
                                w->model->name, m->enc.cfg.patch, m->enc.cfg.dim,
                                m->enc.cfg.heads, m->dec.cfg.queries, m->dec.cfg.heads);
        else
            t = g_strdup_printf(_("Model: %s\nViT patch %d, width %d, %d heads; backbone only "
                                  "(k-means)"),
                                w->model->name, m->enc.cfg.patch, m->enc.cfg.dim,
                                m->enc.cfg.heads);
        gtk_label_set_text(GTK_LABEL(w->model_label), t);
        g_free(t);
    } else {
        gtk_label_set_text(GTK_LABEL(w->model_label), _("No model loaded"));
    }
    gtk_widget_action_set_enabled(GTK_WIDGET(w), "win.export", w->result != NULL);
    /* sliders only mean something once there is a result; the model line stays readable */
    for (GtkWidget *c = gtk_widget_get_first_child(w->side_panel); c; c = gtk_widget_get_next_sibling(c))
        if (c != w->model_label && c != w->size_row && c != w->aspect_check)
            gtk_widget_set_sensitive(c, w->result != NULL);
}

/* ---------------------------------------------------------------- jobs */

void vw_segment_current(ViewerWindow *w)
{
    if (!w->files || w->file_index < 0 || w->file_index >= (int)w->files->len)
        return;
    const char *path = g_ptr_array_index(w->files, w->file_index);
    w->cancelled = w->failed = FALSE;
    gtk_revealer_set_reveal_child(GTK_REVEALER(w->notice_revealer), FALSE);
    w->image_job = worker_segment(w->worker, path, w->model, w->input_size, w->keep_aspect);
    w->last_job = w->image_job;
    vw_progress_show(w, vw_stage_name("image"), 0.0);
}

void vw_load_model(ViewerWindow *w, const char *path, const char *backbone, gboolean random)
{
    g_free(w->model_path);
    g_free(w->backbone_path);
    w->model_path = g_strdup(path);
    w->backbone_path = g_strdup(backbone);
    w->model_job = worker_load_model(w->worker, path, backbone, &w->opt.mopt, random);
    w->last_job = w->model_job;
    vw_progress_show(w, vw_stage_name("load"), -1);
}

static void clear_result(ViewerWindow *w)
{
    viewer_result_unref(w->result);
    w->result = NULL;
    imgview_set_overlay(w->seg_view, NULL, 0, FALSE);
    imgview_set_overlay(w->sim_view, NULL, 0, FALSE);
    vw_rebuild_tiles(w);
    vw_relabel(w);
    /* the attention view's sentence described the result that is gone */
    gtk_label_set_text(GTK_LABEL(w->mass_label), "");
    gtk_widget_queue_draw(w->mass_curve);
    vw_update_model_ui(w);
}

static void set_image(ViewerWindow *w, ViewerImage *im)
{
    if (w->image == im)
        return;
    viewer_image_unref(w->image);
    w->image = viewer_image_ref(im);
    gtk_label_set_text(GTK_LABEL(w->hover_label), "");
    imgview_set_image_levels(w->seg_view, im ? im->level : NULL, im ? im->nlevels : 0);
    imgview_set_image_levels(w->sim_view, im ? im->level : NULL, im ? im->nlevels : 0);
}

void vw_drop_other_image(ViewerWindow *w)
{
    const char *path = w->files && w->file_index >= 0 && w->file_index < (int)w->files->len
                           ? g_ptr_array_index(w->files, w->file_index)
                           : NULL;
    if (!w->image || !g_strcmp0(w->image->path, path))
        return;
    set_image(w, NULL);
    if (w->result)
        clear_result(w);
    vw_update_status(w);
}

static void on_worker_event(const WorkerEvent *ev, gpointer user)
{
    ViewerWindow *w = VIEWER_WINDOW(user);
    gboolean current = ev->job == w->model_job || ev->job == w->image_job;
    if (ev->kind == WORKER_EV_PROGRESS && ev->job <= w->done_job)
        return; /* late progress of a finished job */
    if (ev->kind == WORKER_EV_IDLE && ev->job > w->done_job)
        w->done_job = ev->job;
    if (g_getenv("ALIGNSEG_VIEWER_DEBUG"))
        g_printerr("event %d job %u (model %u image %u last %u) %s\n", ev->kind, ev->job,
                   w->model_job, w->image_job, w->last_job, ev->message ? ev->message : "");
    switch (ev->kind) {
    case WORKER_EV_PROGRESS:
        if (current)
            vw_progress_show(w, vw_stage_name(ev->stage), ev->fraction);
        break;
    case WORKER_EV_MODEL:
        if (ev->job != w->model_job)
            break;
        viewer_model_unref(w->model);
        w->model = viewer_model_ref(ev->model);
        if (w->settings && !ev->model->untrained && w->model_path) {
            g_settings_set_string(w->settings, "last-model", w->model_path);
            g_settings_set_string(w->settings, "last-backbone",
                                  w->backbone_path ? w->backbone_path : "");
            vw_recent_models_add(w, w->model_path);
        }
        vw_hide_error(w);
        if (w->result)
            clear_result(w);
        vw_update_model_ui(w);
        vw_segment_current(w);
        break;
    case WORKER_EV_IMAGE:
        if (ev->job != w->image_job)
            break;
    {
        /* the same photo again (another input size, keep aspect, Segment
         * Again): its previous result stays in the views until the new one
         * replaces it, or after a Cancel; another photo: nothing of the
         * previous one stays */
        const gboolean same = w->image && ev->image && !g_strcmp0(w->image->path, ev->image->path);
        set_image(w, ev->image);
        if (w->result && !same)
            clear_result(w);
        vw_update_status(w);
        break;
    }
    case WORKER_EV_RESULT:
        if (ev->job != w->image_job)
            break;
        set_image(w, ev->image);
        vw_hide_error(w);
        vw_views_set_result(w, ev->result);
        vw_update_model_ui(w);
        vw_update_status(w);
        break;
    case WORKER_EV_ERROR:
        if (!current)
            break;
        vw_show_error(w, ev->message);
        if (ev->is_model) {
            g_free(w->model_path);
            w->model_path = NULL;
        } else {
            /* nothing of the previous image may stay: not its picture, its
             * labels or its export */
            const char *path = w->files && w->file_index >= 0 && w->file_index < (int)w->files->len
                                   ? g_ptr_array_index(w->files, w->file_index)
                                   : NULL;
            if (w->image && g_strcmp0(w->image->path, path))
                set_image(w, NULL);
            w->failed = TRUE;
            if (w->result)
                clear_result(w);
            vw_update_model_ui(w);
            vw_update_status(w);
        }
        break;
    case WORKER_EV_IDLE:
        if (ev->job == w->model_job)
            vw_update_model_ui(w);
        if (ev->job == w->last_job) {
            vw_progress_hide(w);
            vw_maybe_finish_startup(w);
        }
        break;
    }
}


/* ---------------------------------------------------------------- files */

static gint cmp_str(gconstpointer a, gconstpointer b)
{
    return g_strcmp0(*(char *const *)a, *(char *const *)b);
}

static void add_folder(GPtrArray *out, const char *dir)
{
    GDir *d = g_dir_open(dir, 0, NULL);
    if (!d)
        return;
    GPtrArray *tmp = g_ptr_array_new();
    const char *name;
    while ((name = g_dir_read_name(d)))
        if (vu_is_image_name(name))
            g_ptr_array_add(tmp, g_build_filename(dir, name, NULL));
    g_dir_close(d);
    g_ptr_array_sort(tmp, cmp_str);
    for (guint i = 0; i < tmp->len; i++)
        g_ptr_array_add(out, tmp->pdata[i]);
    g_ptr_array_free(tmp, TRUE);
}

void viewer_window_open_paths(ViewerWindow *w, char **paths, int n)
{
    if (n <= 0)
        return;
    GPtrArray *files = g_ptr_array_new_with_free_func(g_free);
    int index = 0;
    char *folder = NULL;
    if (n == 1 && !g_file_test(paths[0], G_FILE_TEST_IS_DIR)) {
        /* one file: browse its folder */
        char *abs = g_canonicalize_filename(paths[0], NULL);
        folder = g_path_get_dirname(abs);
        if (vu_is_image_name(abs))
            add_folder(files, folder);
        index = -1;
        for (guint i = 0; i < files->len; i++)
            if (!strcmp(files->pdata[i], abs))
                index = (int)i;
        if (index < 0) {
            g_ptr_array_add(files, g_strdup(abs));
            index = (int)files->len - 1;
        }
        g_free(abs);
    } else {
        for (int i = 0; i < n; i++) {
            char *abs = g_canonicalize_filename(paths[i], NULL);
            if (g_file_test(abs, G_FILE_TEST_IS_DIR)) {
                add_folder(files, abs);
                if (!folder)
                    folder = g_strdup(abs);
                g_free(abs);
            } else {
                if (!folder)
                    folder = g_path_get_dirname(abs);
                g_ptr_array_add(files, abs);
            }
        }
    }
    if (files->len == 0) {
        vw_show_error(w, _("No PNG or JPEG images found there."));
        g_ptr_array_free(files, TRUE);
        g_free(folder);
        return;
    }
    if (w->files)
        g_ptr_array_free(w->files, TRUE);
    w->files = files;
    w->file_index = index;
    if (w->settings && folder)
        g_settings_set_string(w->settings, "last-folder", folder);
    g_free(folder);
    vw_segment_current(w);
    vw_update_model_ui(w);
    vw_update_status(w);
}

void vw_step_image(ViewerWindow *w, int step)
{
    if (!w->files || w->files->len == 0)
        return;
    int i = vu_step_index(w->file_index, (int)w->files->len, step);
    if (i == w->file_index)
        return;
    w->file_index = i;
    vw_segment_current(w);
    vw_update_status(w);
}


/* ---------------------------------------------------------------- lifecycle */

static void viewer_window_dispose(GObject *o)
{
    ViewerWindow *w = VIEWER_WINDOW(o);
    if (w->worker) {
        worker_free(w->worker);
        w->worker = NULL;
    }
    if (w->relabel_idle) {
        g_source_remove(w->relabel_idle);
        w->relabel_idle = 0;
    }
    if (w->narrow_idle) {
        g_source_remove(w->narrow_idle);
        w->narrow_idle = 0;
    }
    g_clear_object(&w->settings);
    gtk_widget_dispose_template(GTK_WIDGET(w), VIEWER_TYPE_WINDOW);
    G_OBJECT_CLASS(viewer_window_parent_class)->dispose(o);
}

static void viewer_window_finalize(GObject *o)
{
    ViewerWindow *w = VIEWER_WINDOW(o);
    viewer_model_unref(w->model);
    viewer_image_unref(w->image);
    viewer_result_unref(w->result);
    if (w->files)
        g_ptr_array_free(w->files, TRUE);
    vw_free_result_arrays(w);
    vw_edit_free(w);
    vw_tiles_free(w);
    if (w->label_surface)
        cairo_surface_destroy(w->label_surface);
    g_free(w->model_path);
    g_free(w->backbone_path);
    g_free(w->opt_model);
    g_free(w->opt_backbone);
    g_free(w->opt_screenshot);
    g_free(w->opt_view);
    g_free(w->opt_export);
    g_free(w->opt_hold);
    g_strfreev(w->opt_actions);
    G_OBJECT_CLASS(viewer_window_parent_class)->finalize(o);
}

/* Narrow windows (e.g. half of a 1920 px screen) get the view switcher below
 * the views instead of in the header bar, which then fits. */
static gboolean narrow_idle(gpointer data)
{
    ViewerWindow *w = data;
    w->narrow_idle = 0;
    int nat = 0;
    gtk_widget_measure(w->switcher, GTK_ORIENTATION_HORIZONTAL, -1, NULL, &nat, NULL, NULL);
    GtkWidget *tb = gtk_window_get_titlebar(GTK_WINDOW(w));
    int tb_min = 0;
    gtk_widget_measure(tb, GTK_ORIENTATION_HORIZONTAL, -1, &tb_min, NULL, NULL, NULL);
    /* tb_min: the header's other items (the scroller's minimum is ~0) */
    const gboolean narrow = gtk_widget_get_width(GTK_WIDGET(w)) < tb_min + nat + 24;
    if (narrow != gtk_widget_get_visible(w->bottom_switcher)) {
        gtk_widget_set_visible(w->switcher_scroller, !narrow);
        gtk_widget_set_visible(w->bottom_switcher, narrow);
    }
    return G_SOURCE_REMOVE;
}

static void viewer_window_size_allocate(GtkWidget *widget, int width, int height, int baseline)
{
    ViewerWindow *w = VIEWER_WINDOW(widget);
    GTK_WIDGET_CLASS(viewer_window_parent_class)->size_allocate(widget, width, height, baseline);
    if (!w->narrow_idle)
        w->narrow_idle = g_idle_add(narrow_idle, w);
}

static void viewer_window_class_init(ViewerWindowClass *klass)
{
    GObjectClass *oc = G_OBJECT_CLASS(klass);
    GtkWidgetClass *wc = GTK_WIDGET_CLASS(klass);
    oc->dispose = viewer_window_dispose;
    oc->finalize = viewer_window_finalize;
    wc->size_allocate = viewer_window_size_allocate;
    gtk_widget_class_set_template_from_resource(wc, "/io/github/alignseg/Viewer/ui/window.ui");
#define BIND(name) gtk_widget_class_bind_template_child(wc, ViewerWindow, name)
    BIND(banner_revealer);
    BIND(banner_label);
    BIND(progress_revealer);
    BIND(progress_label);
    BIND(progress_bar);
    BIND(spinner);
    BIND(content);
    BIND(views);
    BIND(untrained_label);
    BIND(empty_text);
    BIND(model_label);
    BIND(seg_area);
    BIND(attn_grid);
    BIND(attn_scale);
    BIND(proto_grid);
    BIND(proto_scale);
    BIND(sim_area);
    BIND(sim_label);
    BIND(sim_scale);
    BIND(k_scale);
    BIND(merge_scale);
    BIND(mass_scale);
    BIND(opacity_scale);
    BIND(contours_check);
    BIND(fg_check);
    BIND(smooth_check);
    BIND(head_dropdown);
    BIND(size_row);
    BIND(size_dropdown);
    BIND(aspect_check);
    BIND(switcher);
    BIND(mass_curve);
    BIND(mass_label);
    BIND(switcher_scroller);
    BIND(bottom_switcher);
    BIND(notice_revealer);
    BIND(notice_label);
    BIND(notice_rerun);
    BIND(nomodel_revealer);
    BIND(legend);
    BIND(status_label);
    BIND(hover_label);
    BIND(side_panel);
    BIND(k_adj);
    BIND(merge_adj);
    BIND(mass_adj);
    BIND(opacity_adj);
#undef BIND
    gtk_widget_class_bind_template_callback(wc, on_banner_dismiss);
    gtk_widget_class_bind_template_callback(wc, on_notice_dismiss);
    vw_views_class_init(wc);
    vw_actions_class_init(wc);
}

static void viewer_window_init(ViewerWindow *w)
{
    gtk_widget_init_template(GTK_WIDGET(w));
    /* the strips' texts can be selected with the mouse but do not take the
     * keyboard focus, which selected the whole text whenever one appeared */
    gtk_widget_set_focusable(w->notice_label, FALSE);
    gtk_widget_set_focusable(w->banner_label, FALSE);
    w->file_index = -1;
    w->isolate = -1;
    w->sim_patch = -1;
    vw_views_init(w);

    char *empty = g_strdup_printf(
        "%s\n\n• %s\n• %s\n\n%s",
        _("AlignSeg segments an image with a frozen, self-supervised DINO Vision Transformer "
          "and a small decoder that adapts a few learned prototypes to the image."),
        _("DINO backbones (ViT-S/16, ViT-S/8, ViT-B/16, ViT-B/8): the “backbone only” .pth "
          "files of the facebookresearch/dino release on GitHub. A backbone alone segments "
          "with k-means prototypes."),
        _("AlignSeg checkpoints (encoder and trained prototypes): the release of the AlignSeg "
          "authors (Liu et al., TPAMI 2024); a decoder-only file needs a backbone as well "
          "(menu: Open Backbone…, or -b on the command line)."),
        _("Open a checkpoint with Open Model… (Ctrl+M) or start the viewer with "
          "“alignseg-viewer -m MODEL.pth IMAGE”. To look around first, try a randomly "
          "initialised ViT-S/16: its output is meaningless and is labelled “untrained”."));
    char *esc = g_markup_escape_text(empty, -1);
    gtk_label_set_markup(GTK_LABEL(w->empty_text), esc);
    g_free(esc);
    g_free(empty);

    VuSettings vs;
    vu_settings_default(&vs);
    gtk_window_set_default_size(GTK_WINDOW(w), vs.width, vs.height);
    w->input_size = vs.input_size;
    w->settings = settings_new();
    if (w->settings) {
        w->input_size = g_settings_get_int(w->settings, "input-size");
        settings_bind(w);
    }
    vw_actions_init(w);

    w->worker = worker_new(on_worker_event, w);
    vw_update_model_ui(w);
    vw_update_status(w);
}

ViewerWindow *viewer_window_new(GtkApplication *app, const ViewerOptions *opt)
{
    ViewerWindow *w = g_object_new(VIEWER_TYPE_WINDOW, "application", app, NULL);
    w->opt = *opt;
    w->opt_model = g_strdup(opt->model);
    w->opt_backbone = g_strdup(opt->backbone);
    w->opt_screenshot = g_strdup(opt->screenshot);
    w->opt_view = g_strdup(opt->view);
    w->opt_export = g_strdup(opt->export_dir);
    w->opt_hold = g_strdup(opt->hold);
    w->opt_actions = g_strdupv((char **)opt->actions);
    if (opt->input_size > 0)
        w->input_size = opt->input_size;
    vw_size_dropdown_fill(w);
    vw_testhooks_start(w);
    if (opt->random_model) {
        vw_load_model(w, NULL, NULL, TRUE);
    } else if (w->opt_model) {
        vw_load_model(w, w->opt_model, w->opt_backbone, FALSE);
    } else {
        char *last = vw_settings_get_path(w, "last-model");
        char *lastb = vw_settings_get_path(w, "last-backbone");
        if (last && g_file_test(last, G_FILE_TEST_EXISTS))
            vw_load_model(w, last, lastb, FALSE);
        g_free(last);
        g_free(lastb);
    }
    return w;
}

int viewer_window_exit_status(ViewerWindow *w) { return w->exit_status; }
