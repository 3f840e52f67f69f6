/* window: the main window of alignseg-viewer (see window.h). */
#include "window.h"

#ifndef ALIGNSEG_VERSION
#define ALIGNSEG_VERSION "unknown"
#endif

#include <glib/gi18n.h>
#include <math.h>
#include <string.h>

#include "image.h"
#include "imgview.h"
#include "merge.h"
#include "segment.h"
#include "vutil.h"
#include "worker.h"
#if defined(__has_include)
#if __has_include("export.h")
#include "export.h"
#define VIEWER_HAVE_EXPORT 1
#endif
#endif

#define APP_ID "io.github.alignseg.Viewer"
#define TIMING_STEPS 24

struct _ViewerWindow {
    GtkApplicationWindow parent;

    /* template children */
    GtkWidget *banner_revealer, *banner_label;
    GtkWidget *progress_revealer, *progress_label, *progress_bar, *spinner;
    GtkWidget *content, *views, *untrained_label, *empty_text, *model_label;
    GtkWidget *seg_area, *attn_grid, *attn_scale, *proto_grid, *proto_scale;
    GtkWidget *sim_area, *sim_label, *sim_scale;
    GtkWidget *k_scale, *merge_scale, *mass_scale, *opacity_scale;
    GtkWidget *contours_check, *fg_check, *smooth_check, *head_dropdown, *legend;
    GtkWidget *size_row, *size_dropdown;
    int size_choices[8], n_size_choices;
    GtkWidget *status_label, *hover_label, *side_panel;
    GtkAdjustment *k_adj, *merge_adj, *mass_adj, *opacity_adj;

    GSettings *settings; /* NULL when the schema is not installed */
    ViewerOptions opt;
    char *opt_model, *opt_backbone, *opt_screenshot, *opt_view, *opt_export, *opt_actions;
    gboolean exported;
    gboolean filling_sizes; /* the size drop-down is being refilled: not a user choice */
    int input_size;

    Worker *worker;
    ViewerModel *model;
    guint model_job, image_job, last_job, done_job;
    char *model_path, *backbone_path; /* of the model being loaded or loaded */
    ViewerImage *image;
    ViewerResult *result;

    GPtrArray *files; /* char* */
    int file_index;

    /* derived from result + sliders */
    int ngroups;
    int32_t *group;   /* (q) */
    bool *visible;    /* (q) per prototype */
    int isolate;      /* prototype, or -1 */
    uint8_t *fg;      /* (n) */
    int32_t *labels;  /* (in_h * in_w) */
    double *share;    /* (q) */
    cairo_surface_t *label_surface;
    guint relabel_idle;
    gint64 relabel_us;
    gboolean legend_building;
    int legend_groups;          /* groups shown in the legend (-1: rebuild) */
    int32_t *legend_sig;        /* group of each prototype when the legend was built */
    GtkWidget *legend_share[AS_MAX_GROUPS], *legend_check[AS_MAX_GROUPS];

    /* similarity view */
    int sim_patch;
    gboolean sim_pinned;
    float *sim_values;
    float sim_lo, sim_hi;

    ImgView *seg_view, *sim_view;

    /* screenshot / timing */
    gboolean shot_started;
    int shot_frames;
    int exit_status;
    int timing_step;
    gint64 timing_t0;
    double timing_frame_ms[TIMING_STEPS], timing_relabel_ms[TIMING_STEPS];
    gulong after_paint_id;
};

G_DEFINE_FINAL_TYPE(ViewerWindow, viewer_window, GTK_TYPE_APPLICATION_WINDOW)

static void relabel(ViewerWindow *w);
static void update_model_ui(ViewerWindow *w);
static void rebuild_tiles(ViewerWindow *w);
static void update_similarity(ViewerWindow *w);
static void maybe_finish_startup(ViewerWindow *w);

/* ---------------------------------------------------------------- settings */

#ifndef VIEWER_SCHEMA_BUILDDIR
#define VIEWER_SCHEMA_BUILDDIR ""
#endif

static GSettings *settings_new(void)
{
    GSettingsSchemaSource *src = g_settings_schema_source_get_default();
    GSettingsSchema *schema = src ? g_settings_schema_source_lookup(src, APP_ID, TRUE) : NULL;
    if (!schema && VIEWER_SCHEMA_BUILDDIR[0]) {
        GSettingsSchemaSource *b =
            g_settings_schema_source_new_from_directory(VIEWER_SCHEMA_BUILDDIR, src, FALSE, NULL);
        if (b) {
            schema = g_settings_schema_source_lookup(b, APP_ID, FALSE);
            g_settings_schema_source_unref(b);
        }
    }
    if (!schema)
        return NULL;
    GSettings *s = g_settings_new_full(schema, NULL, NULL);
    g_settings_schema_unref(schema);
    return s;
}

static char *settings_get_path(ViewerWindow *w, const char *key)
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

static void settings_load(ViewerWindow *w, VuSettings *vs)
{
    vu_settings_default(vs);
    if (w->settings) {
        vs->k = g_settings_get_int(w->settings, "prototype-count");
        vs->merge_threshold = g_settings_get_double(w->settings, "merge-threshold");
        vs->mass_threshold = g_settings_get_double(w->settings, "mass-threshold");
        vs->opacity = g_settings_get_double(w->settings, "opacity");
        vs->width = g_settings_get_int(w->settings, "window-width");
        vs->height = g_settings_get_int(w->settings, "window-height");
        vs->input_size = g_settings_get_int(w->settings, "input-size");
    }
    vu_settings_clamp(vs, 0);
}

static void settings_save(ViewerWindow *w)
{
    if (!w->settings)
        return;
    int width = 0, height = 0;
    gtk_window_get_default_size(GTK_WINDOW(w), &width, &height);
    g_settings_delay(w->settings);
    if (width > 0 && height > 0 && !gtk_window_is_maximized(GTK_WINDOW(w))) {
        g_settings_set_int(w->settings, "window-width", width);
        g_settings_set_int(w->settings, "window-height", height);
    }
    g_settings_set_boolean(w->settings, "window-maximized", gtk_window_is_maximized(GTK_WINDOW(w)));
    g_settings_set_int(w->settings, "prototype-count", (int)gtk_adjustment_get_value(w->k_adj));
    g_settings_set_double(w->settings, "merge-threshold", gtk_adjustment_get_value(w->merge_adj));
    g_settings_set_double(w->settings, "mass-threshold", gtk_adjustment_get_value(w->mass_adj));
    g_settings_set_double(w->settings, "opacity", gtk_adjustment_get_value(w->opacity_adj));
    g_settings_set_boolean(w->settings, "show-contours",
                           gtk_check_button_get_active(GTK_CHECK_BUTTON(w->contours_check)));
    g_settings_set_boolean(w->settings, "restrict-foreground",
                           gtk_check_button_get_active(GTK_CHECK_BUTTON(w->fg_check)));
    g_settings_set_boolean(w->settings, "smooth-heatmaps",
                           gtk_check_button_get_active(GTK_CHECK_BUTTON(w->smooth_check)));
    g_settings_apply(w->settings);
}

/* ---------------------------------------------------------------- messages */

/* Exit status of --screenshot runs, kept on the application (the window may be gone). */
static void set_exit(ViewerWindow *w, int status)
{
    w->exit_status = status;
    GtkApplication *app = gtk_window_get_application(GTK_WINDOW(w));
    if (app)
        g_object_set_data(G_OBJECT(app), "exit-status", GINT_TO_POINTER(status));
}

static void show_error(ViewerWindow *w, const char *msg)
{
    gtk_label_set_text(GTK_LABEL(w->banner_label), msg);
    gtk_revealer_set_reveal_child(GTK_REVEALER(w->banner_revealer), TRUE);
    if (w->opt_screenshot)
        g_printerr("alignseg-viewer: %s\n", msg);
    set_exit(w, 1);
}

static void on_banner_dismiss(ViewerWindow *w)
{
    gtk_revealer_set_reveal_child(GTK_REVEALER(w->banner_revealer), FALSE);
}

static const char *stage_name(const char *stage)
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

static void progress_show(ViewerWindow *w, const char *text, double fraction)
{
    gtk_label_set_text(GTK_LABEL(w->progress_label), text);
    if (fraction >= 0)
        gtk_progress_bar_set_fraction(GTK_PROGRESS_BAR(w->progress_bar), fraction);
    else
        gtk_progress_bar_pulse(GTK_PROGRESS_BAR(w->progress_bar));
    gtk_spinner_set_spinning(GTK_SPINNER(w->spinner), TRUE);
    gtk_revealer_set_reveal_child(GTK_REVEALER(w->progress_revealer), TRUE);
}

static void progress_hide(ViewerWindow *w)
{
    gtk_spinner_set_spinning(GTK_SPINNER(w->spinner), FALSE);
    gtk_revealer_set_reveal_child(GTK_REVEALER(w->progress_revealer), FALSE);
}

static void update_status(ViewerWindow *w)
{
    GString *s = g_string_new(NULL);
    if (w->image) {
        char *base = g_path_get_basename(w->image->path);
        g_string_append_printf(s, "%s — %d×%d", base, w->image->img.w, w->image->img.h);
        g_free(base);
        if (w->files && w->files->len > 1)
            g_string_append_printf(s, _(" — %d of %u"), w->file_index + 1, w->files->len);
    } else {
        g_string_append(s, _("No image — open one with Ctrl+O or drop it here"));
    }
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

static void update_model_ui(ViewerWindow *w)
{
    gboolean have = w->model != NULL;
    gtk_stack_set_visible_child_name(GTK_STACK(w->content), have ? "views" : "empty");
    gtk_widget_set_visible(w->untrained_label, have && w->model->untrained);
    if (have) {
        const AsModel *m = w->model->model;
        char *t;
        if (m->has_decoder)
            t = g_strdup_printf(_("Model: %s\nViT patch %d, width %d, %d prototypes"),
                                w->model->name, m->enc.cfg.patch, m->enc.cfg.dim,
                                m->dec.cfg.queries);
        else
            t = g_strdup_printf(_("Model: %s\nViT patch %d, width %d, backbone only (k-means)"),
                                w->model->name, m->enc.cfg.patch, m->enc.cfg.dim);
        gtk_label_set_text(GTK_LABEL(w->model_label), t);
        g_free(t);
    } else {
        gtk_label_set_text(GTK_LABEL(w->model_label), _("No model loaded"));
    }
    GAction *a = g_action_map_lookup_action(G_ACTION_MAP(w), "export");
    g_simple_action_set_enabled(G_SIMPLE_ACTION(a), w->result != NULL);
    /* sliders only mean something once there is a result; the model line stays readable */
    for (GtkWidget *c = gtk_widget_get_first_child(w->side_panel); c; c = gtk_widget_get_next_sibling(c))
        if (c != w->model_label && c != w->size_row)
            gtk_widget_set_sensitive(c, w->result != NULL);
}

/* ---------------------------------------------------------------- jobs */

static void segment_current(ViewerWindow *w)
{
    if (!w->files || w->file_index < 0 || w->file_index >= (int)w->files->len)
        return;
    const char *path = g_ptr_array_index(w->files, w->file_index);
    w->image_job = worker_segment(w->worker, path, w->model, w->input_size);
    w->last_job = w->image_job;
    progress_show(w, stage_name("image"), 0.0);
}

static void load_model(ViewerWindow *w, const char *path, const char *backbone, gboolean random)
{
    g_free(w->model_path);
    g_free(w->backbone_path);
    w->model_path = g_strdup(path);
    w->backbone_path = g_strdup(backbone);
    w->model_job = worker_load_model(w->worker, path, backbone, &w->opt.mopt, random);
    w->last_job = w->model_job;
    progress_show(w, stage_name("load"), -1);
}

static void clear_result(ViewerWindow *w)
{
    viewer_result_unref(w->result);
    w->result = NULL;
    imgview_set_overlay(w->seg_view, NULL, 0, FALSE);
    imgview_set_overlay(w->sim_view, NULL, 0, FALSE);
    rebuild_tiles(w);
    relabel(w);
    update_model_ui(w);
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

/* Free the per-result arrays (labels, groups, legend state) of the window. */
static void free_result_arrays(ViewerWindow *w)
{
    g_free(w->group);
    g_free(w->visible);
    g_free(w->fg);
    g_free(w->labels);
    g_free(w->share);
    g_free(w->sim_values);
    g_free(w->legend_sig);
}

static void set_result(ViewerWindow *w, ViewerResult *r)
{
    viewer_result_unref(w->result);
    w->result = viewer_result_ref(r);
    const AsResult *ar = &r->r;
    free_result_arrays(w);
    w->legend_sig = NULL;
    w->legend_groups = -1;
    w->group = g_new0(int32_t, ar->q);
    w->visible = g_new(bool, ar->q);
    for (int i = 0; i < ar->q; i++)
        w->visible[i] = true;
    w->isolate = -1;
    w->fg = g_new0(uint8_t, ar->n);
    w->labels = g_new0(int32_t, (size_t)ar->in_w * ar->in_h);
    w->share = g_new0(double, ar->q);
    w->sim_values = g_new0(float, ar->n);
    w->sim_patch = (ar->gh / 2) * ar->gw + ar->gw / 2;
    w->sim_pinned = FALSE;
    if (w->label_surface)
        cairo_surface_destroy(w->label_surface);
    w->label_surface = cairo_image_surface_create(CAIRO_FORMAT_ARGB32, ar->in_w, ar->in_h);
    /* K slider: 1..Q */
    double k = gtk_adjustment_get_value(w->k_adj);
    gboolean was_max = k >= gtk_adjustment_get_upper(w->k_adj);
    gtk_adjustment_set_upper(w->k_adj, ar->q);
    if (was_max || k > ar->q)
        gtk_adjustment_set_value(w->k_adj, ar->q);
    /* decoder head chooser */
    GtkStringList *heads = gtk_string_list_new(NULL);
    gtk_string_list_append(heads, _("Mean"));
    for (int h = 0; h < ar->dec_heads; h++) {
        char *t = g_strdup_printf(_("Head %d"), h + 1);
        gtk_string_list_append(heads, t);
        g_free(t);
    }
    gtk_drop_down_set_model(GTK_DROP_DOWN(w->head_dropdown), G_LIST_MODEL(heads));
    g_object_unref(heads);
    gtk_widget_set_sensitive(w->head_dropdown, ar->cross_attn != NULL);
    relabel(w);
    rebuild_tiles(w);
    update_similarity(w);
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
            progress_show(w, stage_name(ev->stage), ev->fraction);
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
        }
        if (w->result)
            clear_result(w);
        update_model_ui(w);
        segment_current(w);
        break;
    case WORKER_EV_IMAGE:
        if (ev->job != w->image_job)
            break;
        set_image(w, ev->image);
        if (w->result)
            clear_result(w);
        update_status(w);
        break;
    case WORKER_EV_RESULT:
        if (ev->job != w->image_job)
            break;
        set_image(w, ev->image);
        set_result(w, ev->result);
        update_model_ui(w);
        update_status(w);
        break;
    case WORKER_EV_ERROR:
        if (!current)
            break;
        show_error(w, ev->message);
        if (ev->is_model) {
            g_free(w->model_path);
            w->model_path = NULL;
        }
        break;
    case WORKER_EV_IDLE:
        if (ev->job == w->last_job) {
            progress_hide(w);
            maybe_finish_startup(w);
        }
        break;
    }
}

/* ---------------------------------------------------------------- relabel */

static void group_colour(int g, double rgb[3])
{
    uint8_t c[3];
    as_label_colour(g, c);
    for (int i = 0; i < 3; i++)
        rgb[i] = c[i] / 255.0;
}

static void legend_toggled(GtkCheckButton *b, gpointer data);

static void swatch_draw(GtkDrawingArea *a, cairo_t *cr, int wd, int ht, gpointer data)
{
    (void)data;
    int g = GPOINTER_TO_INT(g_object_get_data(G_OBJECT(a), "group"));
    double c[3];
    group_colour(g, c);
    cairo_set_source_rgb(cr, c[0], c[1], c[2]);
    cairo_rectangle(cr, 1, 1, wd - 2, ht - 2);
    cairo_fill_preserve(cr);
    cairo_set_source_rgba(cr, 0, 0, 0, 0.4);
    cairo_set_line_width(cr, 1);
    cairo_stroke(cr);
}

static GtkWidget *swatch_new(int g, int size)
{
    GtkWidget *a = gtk_drawing_area_new();
    gtk_drawing_area_set_content_width(GTK_DRAWING_AREA(a), size);
    gtk_drawing_area_set_content_height(GTK_DRAWING_AREA(a), size);
    gtk_widget_set_valign(a, GTK_ALIGN_CENTER);
    g_object_set_data(G_OBJECT(a), "group", GINT_TO_POINTER(g));
    gtk_drawing_area_set_draw_func(GTK_DRAWING_AREA(a), swatch_draw, NULL, NULL);
    return a;
}

static char *group_name(ViewerWindow *w, int g)
{
    const AsResult *r = &w->result->r;
    GString *s = g_string_new(NULL);
    int members = 0;
    for (int k = 0; k < r->q; k++)
        if (w->group[k] == g) {
            g_string_append_printf(s, members ? "+%d" : "%d", k + 1);
            members++;
        }
    char *t = members > 1 ? g_strdup_printf(_("Prototypes %s"), s->str)
                          : g_strdup_printf(_("Prototype %s"), s->str);
    g_string_free(s, TRUE);
    return t;
}

static bool group_visible(ViewerWindow *w, int g)
{
    const AsResult *r = &w->result->r;
    if (w->isolate >= 0 && w->isolate < r->q)
        return w->group[w->isolate] == g;
    for (int k = 0; k < r->q; k++)
        if (w->group[k] == g)
            return w->visible[k];
    return true;
}

static void rebuild_legend(ViewerWindow *w)
{
    GtkWidget *child;
    int q = w->result ? w->result->r.q : 0;
    /* same grouping as last time: only update shares and toggles (cheap, no relayout) */
    if (w->result && w->legend_sig && w->legend_groups == w->ngroups &&
        !memcmp(w->legend_sig, w->group, (size_t)q * sizeof *w->group)) {
        w->legend_building = TRUE;
        for (int g = 0; g < w->ngroups; g++) {
            char pc[32];
            g_snprintf(pc, sizeof pc, "%.1f %%", 100.0 * w->share[g]);
            gtk_label_set_text(GTK_LABEL(w->legend_share[g]), pc);
            gtk_check_button_set_active(GTK_CHECK_BUTTON(w->legend_check[g]), group_visible(w, g));
        }
        w->legend_building = FALSE;
        return;
    }
    w->legend_building = TRUE;
    while ((child = gtk_widget_get_first_child(w->legend)))
        gtk_list_box_remove(GTK_LIST_BOX(w->legend), child);
    g_free(w->legend_sig);
    w->legend_sig = NULL;
    w->legend_groups = -1;
    if (!w->result) {
        w->legend_building = FALSE;
        return;
    }
    for (int g = 0; g < w->ngroups && g < AS_MAX_GROUPS; g++) {
        GtkWidget *row = gtk_box_new(GTK_ORIENTATION_HORIZONTAL, 8);
        gtk_widget_set_margin_start(row, 6);
        gtk_widget_set_margin_end(row, 6);
        gtk_widget_set_margin_top(row, 4);
        gtk_widget_set_margin_bottom(row, 4);
        gtk_box_append(GTK_BOX(row), swatch_new(g, 18));
        char *name = group_name(w, g);
        GtkWidget *l = gtk_label_new(name);
        g_free(name);
        gtk_label_set_xalign(GTK_LABEL(l), 0);
        gtk_widget_set_hexpand(l, TRUE);
        gtk_label_set_ellipsize(GTK_LABEL(l), PANGO_ELLIPSIZE_END);
        gtk_box_append(GTK_BOX(row), l);
        char *pc = g_strdup_printf("%.1f %%", 100.0 * w->share[g]);
        GtkWidget *sl = gtk_label_new(pc);
        g_free(pc);
        gtk_label_set_width_chars(GTK_LABEL(sl), 7);
        gtk_label_set_xalign(GTK_LABEL(sl), 1);
        gtk_widget_add_css_class(sl, "legend-share");
        gtk_widget_add_css_class(sl, "dim-label");
        gtk_box_append(GTK_BOX(row), sl);
        GtkWidget *cb = gtk_check_button_new();
        gtk_widget_set_tooltip_text(cb, _("Show this prototype"));
        gtk_check_button_set_active(GTK_CHECK_BUTTON(cb), group_visible(w, g));
        g_object_set_data(G_OBJECT(cb), "group", GINT_TO_POINTER(g));
        g_signal_connect(cb, "toggled", G_CALLBACK(legend_toggled), w);
        gtk_box_append(GTK_BOX(row), cb);
        gtk_list_box_append(GTK_LIST_BOX(w->legend), row);
        w->legend_share[g] = sl;
        w->legend_check[g] = cb;
    }
    w->legend_sig = g_memdup2(w->group, (gsize)q * sizeof *w->group);
    w->legend_groups = w->ngroups;
    w->legend_building = FALSE;
}

static gboolean relabel_idle_cb(gpointer data)
{
    ViewerWindow *w = data;
    w->relabel_idle = 0;
    relabel(w);
    update_status(w);
    return G_SOURCE_REMOVE;
}

static void schedule_relabel(ViewerWindow *w)
{
    if (!w->relabel_idle)
        w->relabel_idle = g_idle_add_full(G_PRIORITY_HIGH_IDLE, relabel_idle_cb, w, NULL);
}

static void legend_toggled(GtkCheckButton *b, gpointer data)
{
    ViewerWindow *w = data;
    if (w->legend_building || !w->result)
        return;
    int g = GPOINTER_TO_INT(g_object_get_data(G_OBJECT(b), "group"));
    gboolean on = gtk_check_button_get_active(b);
    if (w->isolate >= 0) {
        /* leaving isolation: start from "only the isolated group visible" */
        for (int k = 0; k < w->result->r.q; k++)
            w->visible[k] = w->group[k] == w->group[w->isolate];
        w->isolate = -1;
    }
    for (int k = 0; k < w->result->r.q; k++)
        if (w->group[k] == g)
            w->visible[k] = on;
    schedule_relabel(w);
}

static void on_show_all(ViewerWindow *w)
{
    if (!w->result)
        return;
    w->isolate = -1;
    for (int k = 0; k < w->result->r.q; k++)
        w->visible[k] = true;
    schedule_relabel(w);
}

static void relabel(ViewerWindow *w)
{
    gint64 t0 = g_get_monotonic_time();
    if (!w->result) {
        w->ngroups = 0;
        rebuild_legend(w);
        return;
    }
    const AsResult *r = &w->result->r;
    AsError err = { 0 };
    AsMergeOptions mo;
    as_merge_options_default(&mo);
    int k = (int)lround(gtk_adjustment_get_value(w->k_adj));
    mo.merge_to = k >= r->q ? 0 : k;
    double thr = gtk_adjustment_get_value(w->merge_adj);
    mo.threshold = thr > 1.0 ? 2.0f : (float)thr;
    if (as_foreground_mask(r->cls_attn_mean, r->gh, r->gw,
                           (float)gtk_adjustment_get_value(w->mass_adj), w->fg) != 0) {
        show_error(w, _("Out of memory while computing the foreground mask."));
        return;
    }
    int ng = 0;
    gboolean fg_only = gtk_check_button_get_active(GTK_CHECK_BUTTON(w->fg_check));
    if (as_merge_groups(r->queries, r->q, r->dim, &mo, w->group, &ng, &err) != 0 ||
        as_relabel(r->assign, r->gh, r->gw, r->q, w->group, ng, fg_only ? w->fg : NULL, r->in_h,
                   r->in_w, NULL, w->labels, &err) != 0) {
        show_error(w, err.msg);
        w->ngroups = 0;
        return;
    }
    w->ngroups = ng;
    uint8_t colours[AS_MAX_GROUPS * 3];
    bool gvis[AS_MAX_GROUPS];
    for (int g = 0; g < ng && g < AS_MAX_GROUPS; g++) {
        as_label_colour(g, colours + 3 * g);
        gvis[g] = group_visible(w, g);
    }
    cairo_surface_flush(w->label_surface);
    vu_colourise(w->labels, r->in_w, r->in_h, ng, colours, gvis, NULL, 0, 0,
                 gtk_check_button_get_active(GTK_CHECK_BUTTON(w->contours_check)), 1.0,
                 cairo_image_surface_get_data(w->label_surface),
                 cairo_image_surface_get_stride(w->label_surface));
    cairo_surface_mark_dirty(w->label_surface);
    vu_label_shares(w->labels, (size_t)r->in_w * r->in_h, NULL, ng, w->share);
    imgview_set_overlay(w->seg_view, w->label_surface, gtk_adjustment_get_value(w->opacity_adj),
                        FALSE);
    w->relabel_us = g_get_monotonic_time() - t0;
    rebuild_legend(w);
    gtk_widget_queue_draw(w->attn_grid);
    for (GtkWidget *c = gtk_widget_get_first_child(w->attn_grid); c;
         c = gtk_widget_get_next_sibling(c))
        gtk_widget_queue_draw(c);
    /* prototype swatches follow the groups */
    GtkWidget *pg = w->proto_grid;
    for (GtkWidget *c = gtk_widget_get_first_child(pg); c; c = gtk_widget_get_next_sibling(c)) {
        GtkWidget *tile = gtk_flow_box_child_get_child(GTK_FLOW_BOX_CHILD(c));
        GtkWidget *sw = tile ? g_object_get_data(G_OBJECT(tile), "swatch") : NULL;
        int pk = tile ? GPOINTER_TO_INT(g_object_get_data(G_OBJECT(tile), "proto")) : 0;
        if (sw) {
            g_object_set_data(G_OBJECT(sw), "group", GINT_TO_POINTER(w->group[pk]));
            gtk_widget_queue_draw(sw);
        }
    }
}

/* ---------------------------------------------------------------- tiles */

static cairo_surface_t *heat_surface(const float *v, int gw, int gh, float *lo, float *hi)
{
    cairo_surface_t *s = cairo_image_surface_create(CAIRO_FORMAT_ARGB32, gw, gh);
    float a, b;
    vu_range(v, (size_t)gw * gh, &a, &b);
    cairo_surface_flush(s);
    vu_heatmap_argb(v, gw, gh, a, b, 255, cairo_image_surface_get_data(s),
                    cairo_image_surface_get_stride(s));
    cairo_surface_mark_dirty(s);
    if (lo)
        *lo = a;
    if (hi)
        *hi = b;
    return s;
}

static gboolean smooth(ViewerWindow *w)
{
    return gtk_check_button_get_active(GTK_CHECK_BUTTON(w->smooth_check));
}

/* rectangle that fits an aw x ah picture into wd x ht */
static void fit_rect(int aw, int ah, int wd, int ht, double *x, double *y, double *sw, double *sh)
{
    double s = vu_fit_scale(aw, ah, wd, ht);
    *sw = aw * s;
    *sh = ah * s;
    *x = (wd - *sw) / 2;
    *y = (ht - *sh) / 2;
}

static void heat_tile_draw(GtkDrawingArea *a, cairo_t *cr, int wd, int ht, gpointer data)
{
    ViewerWindow *w = data;
    cairo_surface_t *s = g_object_get_data(G_OBJECT(a), "surface");
    if (!s || !w->result)
        return;
    const AsResult *r = &w->result->r;
    double x, y, sw, sh;
    fit_rect(r->in_w, r->in_h, wd, ht, &x, &y, &sw, &sh);
    cairo_save(cr);
    cairo_rectangle(cr, x, y, sw, sh);
    cairo_clip(cr);
    cairo_translate(cr, x, y);
    cairo_scale(cr, sw / cairo_image_surface_get_width(s), sh / cairo_image_surface_get_height(s));
    cairo_set_source_surface(cr, s, 0, 0);
    cairo_pattern_set_filter(cairo_get_source(cr),
                             smooth(w) ? CAIRO_FILTER_BILINEAR : CAIRO_FILTER_NEAREST);
    cairo_pattern_set_extend(cairo_get_source(cr), CAIRO_EXTEND_PAD);
    cairo_paint(cr);
    cairo_restore(cr);
}

static void fg_tile_draw(GtkDrawingArea *a, cairo_t *cr, int wd, int ht, gpointer data)
{
    ViewerWindow *w = data;
    (void)a;
    if (!w->result || !w->image)
        return;
    const AsResult *r = &w->result->r;
    double x, y, sw, sh;
    fit_rect(r->in_w, r->in_h, wd, ht, &x, &y, &sw, &sh);
    cairo_save(cr);
    cairo_translate(cr, x, y);
    cairo_save(cr);
    {
        /* the smallest pyramid level still at least the tile's size */
        double scale = fmin(sw / w->image->img.w, sh / w->image->img.h);
        cairo_surface_t *ls = w->image->level[vu_pyramid_level(scale, w->image->nlevels)];
        cairo_scale(cr, sw / cairo_image_surface_get_width(ls),
                    sh / cairo_image_surface_get_height(ls));
        cairo_set_source_surface(cr, ls, 0, 0);
        cairo_pattern_set_filter(cairo_get_source(cr), CAIRO_FILTER_BILINEAR);
        cairo_paint(cr);
    }
    cairo_restore(cr);
    double pw = sw / r->gw, ph = sh / r->gh;
    cairo_set_source_rgba(cr, 0, 0, 0, 0.72);
    for (int i = 0; i < r->gh; i++)
        for (int j = 0; j < r->gw; j++)
            if (!w->fg[i * r->gw + j])
                cairo_rectangle(cr, j * pw, i * ph, pw, ph);
    cairo_fill(cr);
    cairo_restore(cr);
}

static GtkWidget *tile_new(const char *title, GtkWidget *area, int size)
{
    GtkWidget *box = gtk_box_new(GTK_ORIENTATION_VERTICAL, 4);
    GtkWidget *l = gtk_label_new(title);
    gtk_widget_add_css_class(l, "tile-title");
    gtk_label_set_ellipsize(GTK_LABEL(l), PANGO_ELLIPSIZE_END);
    gtk_box_append(GTK_BOX(box), l);
    gtk_drawing_area_set_content_width(GTK_DRAWING_AREA(area), size);
    gtk_drawing_area_set_content_height(GTK_DRAWING_AREA(area), size);
    gtk_box_append(GTK_BOX(box), area);
    return box;
}

static GtkWidget *heat_area(ViewerWindow *w, const float *v, int gw, int gh)
{
    GtkWidget *a = gtk_drawing_area_new();
    g_object_set_data_full(G_OBJECT(a), "surface", heat_surface(v, gw, gh, NULL, NULL),
                           (GDestroyNotify)cairo_surface_destroy);
    gtk_drawing_area_set_draw_func(GTK_DRAWING_AREA(a), heat_tile_draw, w, NULL);
    return a;
}

static void clear_container(GtkWidget *flow)
{
    GtkWidget *c;
    while ((c = gtk_widget_get_first_child(flow)))
        gtk_flow_box_remove(GTK_FLOW_BOX(flow), c);
}

static void proto_clicked(GtkGestureClick *g, int n, double x, double y, gpointer data)
{
    ViewerWindow *w = data;
    (void)n;
    (void)x;
    (void)y;
    GtkWidget *tile = gtk_event_controller_get_widget(GTK_EVENT_CONTROLLER(g));
    if (!w->result)
        return;
    int k = GPOINTER_TO_INT(g_object_get_data(G_OBJECT(tile), "proto"));
    w->isolate = (w->isolate == k) ? -1 : k;
    schedule_relabel(w);
    if (w->isolate >= 0)
        gtk_stack_set_visible_child_name(GTK_STACK(w->views), "segmentation");
}

static void build_proto_grid(ViewerWindow *w)
{
    clear_container(w->proto_grid);
    if (!w->result)
        return;
    const AsResult *r = &w->result->r;
    int head = (int)gtk_drop_down_get_selected(GTK_DROP_DOWN(w->head_dropdown)) - 1;
    float *col = g_new(float, r->n), *ca = g_new(float, r->n);
    for (int k = 0; k < r->q; k++) {
        GtkWidget *tile = gtk_box_new(GTK_ORIENTATION_VERTICAL, 4);
        gtk_widget_set_tooltip_text(tile, _("Click to isolate this prototype in the segmentation"));
        GtkWidget *hdr = gtk_box_new(GTK_ORIENTATION_HORIZONTAL, 6);
        gtk_widget_set_halign(hdr, GTK_ALIGN_CENTER);
        GtkWidget *sw = swatch_new(w->group ? w->group[k] : k, 14);
        gtk_box_append(GTK_BOX(hdr), sw);
        char *t = g_strdup_printf(_("Prototype %d"), k + 1);
        GtkWidget *l = gtk_label_new(t);
        g_free(t);
        gtk_widget_add_css_class(l, "tile-title");
        gtk_box_append(GTK_BOX(hdr), l);
        gtk_box_append(GTK_BOX(tile), hdr);
        GtkWidget *maps = gtk_box_new(GTK_ORIENTATION_HORIZONTAL, 6);
        for (int i = 0; i < r->n; i++)
            col[i] = r->similarity[(size_t)i * r->q + k];
        gtk_box_append(GTK_BOX(maps), tile_new(_("similarity"), heat_area(w, col, r->gw, r->gh), 120));
        if (r->cross_attn) {
            vu_cross_attn_map(r->cross_attn, r->dec_heads, r->q, r->n, k, head, ca);
            gtk_box_append(GTK_BOX(maps),
                           tile_new(_("cross-attention"), heat_area(w, ca, r->gw, r->gh), 120));
        }
        gtk_box_append(GTK_BOX(tile), maps);
        g_object_set_data(G_OBJECT(tile), "proto", GINT_TO_POINTER(k));
        g_object_set_data(G_OBJECT(tile), "swatch", sw);
        GtkGesture *click = gtk_gesture_click_new();
        g_signal_connect(click, "released", G_CALLBACK(proto_clicked), w);
        gtk_widget_add_controller(tile, GTK_EVENT_CONTROLLER(click));
        gtk_flow_box_append(GTK_FLOW_BOX(w->proto_grid), tile);
    }
    g_free(col);
    g_free(ca);
}

static void rebuild_tiles(ViewerWindow *w)
{
    clear_container(w->attn_grid);
    build_proto_grid(w);
    if (!w->result)
        return;
    const AsResult *r = &w->result->r;
    gtk_flow_box_append(GTK_FLOW_BOX(w->attn_grid),
                        tile_new(_("Mean of heads"), heat_area(w, r->cls_attn_mean, r->gw, r->gh), 200));
    for (int h = 0; h < r->heads; h++) {
        char *t = g_strdup_printf(_("Head %d"), h + 1);
        gtk_flow_box_append(GTK_FLOW_BOX(w->attn_grid),
                            tile_new(t, heat_area(w, r->cls_attn + (size_t)h * r->n, r->gw, r->gh),
                                     200));
        g_free(t);
    }
    GtkWidget *fa = gtk_drawing_area_new();
    gtk_drawing_area_set_draw_func(GTK_DRAWING_AREA(fa), fg_tile_draw, w, NULL);
    gtk_flow_box_append(GTK_FLOW_BOX(w->attn_grid), tile_new(_("Foreground mask"), fa, 200));
}

/* ---------------------------------------------------------------- colour scale */

static void scale_draw(GtkDrawingArea *a, cairo_t *cr, int wd, int ht, gpointer data)
{
    (void)data;
    const char *lo = g_object_get_data(G_OBJECT(a), "lo");
    const char *hi = g_object_get_data(G_OBJECT(a), "hi");
    const char *cap = g_object_get_data(G_OBJECT(a), "caption");
    int bar_h = 14, x0 = 4, x1 = wd - 4;
    if (x1 <= x0)
        return;
    for (int x = x0; x < x1; x++) {
        uint8_t c[3];
        vu_viridis((double)(x - x0) / (x1 - x0 - 1), c);
        cairo_set_source_rgb(cr, c[0] / 255.0, c[1] / 255.0, c[2] / 255.0);
        cairo_rectangle(cr, x, 4, 1, bar_h);
        cairo_fill(cr);
    }
    GtkStyleContext *sc = gtk_widget_get_style_context(GTK_WIDGET(a));
    GdkRGBA fgc;
    gtk_style_context_get_color(sc, &fgc);
    gdk_cairo_set_source_rgba(cr, &fgc);
    const char *texts[3] = { lo, cap, hi };
    for (int i = 0; i < 3; i++) {
        if (!texts[i])
            continue;
        PangoLayout *lay = gtk_widget_create_pango_layout(GTK_WIDGET(a), texts[i]);
        int tw, th;
        pango_layout_get_pixel_size(lay, &tw, &th);
        double tx = i == 0 ? x0 : i == 1 ? (wd - tw) / 2.0 : x1 - tw;
        cairo_move_to(cr, tx, 4 + bar_h + 2);
        pango_cairo_show_layout(cr, lay);
        g_object_unref(lay);
    }
    (void)ht;
}

static void scale_set(GtkWidget *a, const char *lo, const char *hi, const char *caption)
{
    g_object_set_data_full(G_OBJECT(a), "lo", g_strdup(lo), g_free);
    g_object_set_data_full(G_OBJECT(a), "hi", g_strdup(hi), g_free);
    g_object_set_data_full(G_OBJECT(a), "caption", g_strdup(caption), g_free);
    gtk_widget_queue_draw(a);
}

/* ---------------------------------------------------------------- similarity */

static void update_similarity(ViewerWindow *w)
{
    if (!w->result) {
        imgview_set_overlay(w->sim_view, NULL, 0, FALSE);
        gtk_label_set_text(GTK_LABEL(w->sim_label), "");
        return;
    }
    const AsResult *r = &w->result->r;
    vu_patch_similarity(r->tokens, r->n, r->dim, w->sim_patch, w->sim_values);
    cairo_surface_t *s = heat_surface(w->sim_values, r->gw, r->gh, &w->sim_lo, &w->sim_hi);
    imgview_set_overlay(w->sim_view, s, 0.8, smooth(w));
    cairo_surface_destroy(s);
    char lo[32], hi[32];
    g_snprintf(lo, sizeof lo, "%.3f", w->sim_lo);
    g_snprintf(hi, sizeof hi, "%.3f", w->sim_hi);
    scale_set(w->sim_scale, lo, hi, _("cosine similarity to the selected patch"));
    char *t = w->sim_pinned
                  ? g_strdup_printf(_("Patch (%d, %d), pinned — click it again to follow the pointer"),
                                    w->sim_patch % r->gw, w->sim_patch / r->gw)
                  : g_strdup_printf(_("Patch (%d, %d) — hover to explore, click to pin"),
                                    w->sim_patch % r->gw, w->sim_patch / r->gw);
    gtk_label_set_text(GTK_LABEL(w->sim_label), t);
    g_free(t);
}

static int patch_at(ViewerWindow *w, double ix, double iy)
{
    if (!w->result || !w->image)
        return -1;
    const AsResult *r = &w->result->r;
    int px = (int)(ix * r->gw / w->image->img.w), py = (int)(iy * r->gh / w->image->img.h);
    if (px < 0 || py < 0 || px >= r->gw || py >= r->gh)
        return -1;
    return py * r->gw + px;
}

static void sim_hover(ImgView *v, double ix, double iy, gboolean in, gpointer data)
{
    ViewerWindow *w = data;
    (void)v;
    if (!in || w->sim_pinned)
        return;
    int p = patch_at(w, ix, iy);
    if (p >= 0 && p != w->sim_patch) {
        w->sim_patch = p;
        update_similarity(w);
    }
}

static void sim_click(ImgView *v, double ix, double iy, gboolean in, gpointer data)
{
    ViewerWindow *w = data;
    (void)v;
    if (!in)
        return;
    int p = patch_at(w, ix, iy);
    if (p < 0)
        return;
    w->sim_pinned = !(w->sim_pinned && p == w->sim_patch);
    w->sim_patch = p;
    update_similarity(w);
}

static void sim_draw(ImgView *v, cairo_t *cr, gpointer data)
{
    ViewerWindow *w = data;
    (void)v;
    if (!w->result || !w->image || w->sim_patch < 0)
        return;
    const AsResult *r = &w->result->r;
    double pw = (double)w->image->img.w / r->gw, ph = (double)w->image->img.h / r->gh;
    int px = w->sim_patch % r->gw, py = w->sim_patch / r->gw;
    double lw = pw / 12.0 > 1.5 ? pw / 12.0 : 1.5;
    cairo_set_line_width(cr, lw);
    cairo_set_source_rgb(cr, 1, 0.2, 0.2);
    cairo_rectangle(cr, px * pw + lw / 2, py * ph + lw / 2, pw - lw, ph - lw);
    cairo_stroke(cr);
}

/* ---------------------------------------------------------------- seg hover */

static void seg_hover(ImgView *v, double ix, double iy, gboolean in, gpointer data)
{
    ViewerWindow *w = data;
    (void)v;
    if (!in || !w->result || !w->image) {
        gtk_label_set_text(GTK_LABEL(w->hover_label), "");
        return;
    }
    const AsResult *r = &w->result->r;
    int lx = (int)(ix * r->in_w / w->image->img.w), ly = (int)(iy * r->in_h / w->image->img.h);
    int p = patch_at(w, ix, iy);
    if (lx < 0 || ly < 0 || lx >= r->in_w || ly >= r->in_h || p < 0)
        return;
    int32_t g = w->labels[(size_t)ly * r->in_w + lx];
    char *t;
    if (g == AS_LABEL_BACKGROUND || g < 0 || g >= w->ngroups) {
        t = g_strdup_printf(_("(%d, %d): background (outside the foreground mask)"), (int)ix,
                            (int)iy);
    } else {
        int best = -1;
        for (int k = 0; k < r->q; k++)
            if (w->group[k] == g && (best < 0 || r->similarity[(size_t)p * r->q + k] >
                                                      r->similarity[(size_t)p * r->q + best]))
                best = k;
        char *name = group_name(w, g);
        double prob = 0;
        for (int k = 0; k < r->q; k++)
            if (w->group[k] == g)
                prob += r->assign[(size_t)p * r->q + k];
        t = g_strdup_printf(_("(%d, %d): %s — cosine %.3f, probability %.2f%s"), (int)ix, (int)iy,
                            name, best >= 0 ? r->similarity[(size_t)p * r->q + best] : 0.0,
                            prob, w->result->untrained ? _(" (untrained)") : "");
        g_free(name);
    }
    gtk_label_set_text(GTK_LABEL(w->hover_label), t);
    g_free(t);
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
        show_error(w, _("No PNG or JPEG images found there."));
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
    segment_current(w);
    update_status(w);
}

static void step_image(ViewerWindow *w, int step)
{
    if (!w->files || w->files->len == 0)
        return;
    int i = vu_step_index(w->file_index, (int)w->files->len, step);
    if (i == w->file_index)
        return;
    w->file_index = i;
    segment_current(w);
    update_status(w);
}

/* ---------------------------------------------------------------- dialogs */

typedef enum { DLG_IMAGE, DLG_FOLDER, DLG_MODEL, DLG_BACKBONE, DLG_EXPORT } DialogKind;

static void export_to(ViewerWindow *w, const char *dir);

static void dialog_response(GtkNativeDialog *d, int response, gpointer data)
{
    ViewerWindow *w = data;
    DialogKind kind = GPOINTER_TO_INT(g_object_get_data(G_OBJECT(d), "kind"));
    if (response == GTK_RESPONSE_ACCEPT) {
        GFile *f = gtk_file_chooser_get_file(GTK_FILE_CHOOSER(d));
        char *path = f ? g_file_get_path(f) : NULL;
        if (path) {
            switch (kind) {
            case DLG_IMAGE:
            case DLG_FOLDER:
                viewer_window_open_paths(w, &path, 1);
                break;
            case DLG_MODEL:
                load_model(w, path, w->backbone_path, FALSE);
                break;
            case DLG_BACKBONE:
                g_free(w->backbone_path);
                w->backbone_path = g_strdup(path);
                if (w->model_path)
                    load_model(w, w->model_path, path, FALSE);
                else
                    load_model(w, path, NULL, FALSE);
                break;
            case DLG_EXPORT:
                export_to(w, path);
                break;
            }
        } else if (f) {
            show_error(w, _("Only local files can be opened."));
        }
        g_free(path);
        if (f)
            g_object_unref(f);
    }
    g_object_unref(d);
}

static void add_filter(GtkFileChooser *fc, const char *name, const char *const *patterns,
                       const char *const *mimes)
{
    GtkFileFilter *f = gtk_file_filter_new();
    gtk_file_filter_set_name(f, name);
    for (int i = 0; patterns && patterns[i]; i++)
        gtk_file_filter_add_pattern(f, patterns[i]);
    for (int i = 0; mimes && mimes[i]; i++)
        gtk_file_filter_add_mime_type(f, mimes[i]);
    gtk_file_chooser_add_filter(fc, f);
    g_object_unref(f);
}

static void run_dialog(ViewerWindow *w, DialogKind kind)
{
    static const char *titles[] = { N_("Open Image"), N_("Open Folder"), N_("Open Model"),
                                    N_("Open DINO Backbone"), N_("Export To Folder") };
    GtkFileChooserAction act = (kind == DLG_FOLDER || kind == DLG_EXPORT)
                                   ? GTK_FILE_CHOOSER_ACTION_SELECT_FOLDER
                                   : GTK_FILE_CHOOSER_ACTION_OPEN;
    GtkFileChooserNative *d = gtk_file_chooser_native_new(
        _(titles[kind]), GTK_WINDOW(w), act, kind == DLG_EXPORT ? _("_Export") : _("_Open"),
        _("_Cancel"));
    g_object_set_data(G_OBJECT(d), "kind", GINT_TO_POINTER(kind));
    GtkFileChooser *fc = GTK_FILE_CHOOSER(d);
    if (kind == DLG_IMAGE) {
        static const char *const pat[] = { "*.png", "*.PNG", "*.jpg", "*.JPG", "*.jpeg", "*.JPEG", NULL };
        static const char *const mime[] = { "image/png", "image/jpeg", NULL };
        add_filter(fc, _("PNG and JPEG images"), pat, mime);
    } else if (kind == DLG_MODEL || kind == DLG_BACKBONE) {
        static const char *const pat[] = { "*.pth", "*.pt", "*.pth.tar", "*.ckpt", "*.safetensors", NULL };
        add_filter(fc, _("Checkpoints (.pth, .pt, .safetensors)"), pat, NULL);
        static const char *const all[] = { "*", NULL };
        add_filter(fc, _("All files"), all, NULL);
    }
    char *start = NULL;
    if (kind == DLG_MODEL || kind == DLG_BACKBONE) {
        char *last = settings_get_path(w, kind == DLG_MODEL ? "last-model" : "last-backbone");
        if (last)
            start = g_path_get_dirname(last);
        g_free(last);
    } else {
        start = settings_get_path(w, "last-folder");
    }
    if (start && g_file_test(start, G_FILE_TEST_IS_DIR)) {
        GFile *gf = g_file_new_for_path(start);
        gtk_file_chooser_set_current_folder(fc, gf, NULL);
        g_object_unref(gf);
    }
    g_free(start);
    gtk_native_dialog_set_modal(GTK_NATIVE_DIALOG(d), TRUE);
    g_signal_connect(d, "response", G_CALLBACK(dialog_response), w);
    gtk_native_dialog_show(GTK_NATIVE_DIALOG(d));
}

/* ---------------------------------------------------------------- export */

#ifdef VIEWER_HAVE_EXPORT
/* Labels at the original image size with the current merge and foreground
 * settings, written in all four formats. */
static int viewer_export_all(ViewerWindow *w, const char *dir, AsError *err)
{
    const AsResult *r = &w->result->r;
    int iw = w->image->img.w, ih = w->image->img.h;
    int32_t *labels = g_try_new(int32_t, (size_t)iw * ih);
    if (!labels)
        return as_error_set(err, AS_ERR_NOMEM, "%s: image too large to export", w->image->path);
    gboolean fg_only = gtk_check_button_get_active(GTK_CHECK_BUTTON(w->fg_check));
    AsExporter *x = NULL;
    AsExportOptions eo;
    as_export_options_default(&eo);
    eo.formats = AS_EXPORT_ALL;
    eo.generator = "alignseg-viewer " ALIGNSEG_VERSION;
    eo.model = w->model ? w->model->name : NULL;
    eo.untrained = w->result->untrained;
    char *base = g_path_get_basename(w->image->path);
    char *dot = strrchr(base, '.');
    if (dot && dot != base)
        *dot = 0;
    int rc = as_relabel(r->assign, r->gh, r->gw, r->q, w->group, w->ngroups, fg_only ? w->fg : NULL,
                        ih, iw, NULL, labels, err);
    if (rc == 0)
        rc = as_exporter_open(dir, &eo, &x, err);
    if (rc == 0)
        rc = as_exporter_add(x, base, w->image->path, labels, iw, ih, w->ngroups, err);
    if (rc == 0)
        as_exporter_set_input_size(x, r->in_w, r->in_h);
    if (rc == 0)
        rc = as_exporter_finish(x, err);
    as_exporter_free(x);
    g_free(base);
    g_free(labels);
    return rc;
}
#endif

static void export_to(ViewerWindow *w, const char *dir)
{
    if (!w->result || !w->image) {
        show_error(w, _("Nothing to export yet: open an image and a model first."));
        return;
    }
#ifdef VIEWER_HAVE_EXPORT
    AsError err = { 0 };
    if (viewer_export_all(w, dir, &err) != 0) {
        show_error(w, err.msg);
        return;
    }
    char *t = g_strdup_printf(_("Exported VOC, masks, COCO and labelme files to %s"), dir);
    gtk_label_set_text(GTK_LABEL(w->hover_label), t);
    g_free(t);
#else
    (void)dir;
    show_error(w, _("Export is not available in this build (core/output/export.h is missing)."));
#endif
}

/* ---------------------------------------------------------------- input size */

/* Fill the size drop-down with the standard sizes and the current one,
 * selecting the current one (without re-running anything). */
static void size_dropdown_fill(ViewerWindow *w)
{
    w->n_size_choices = vu_size_choices(w->input_size, w->size_choices,
                                        (int)G_N_ELEMENTS(w->size_choices));
    GtkStringList *list = gtk_string_list_new(NULL);
    guint sel = 0;
    for (int i = 0; i < w->n_size_choices; i++) {
        char *t = g_strdup_printf(_("%d px"), w->size_choices[i]);
        gtk_string_list_append(list, t);
        g_free(t);
        if (w->size_choices[i] == w->input_size)
            sel = (guint)i;
    }
    w->filling_sizes = TRUE;
    gtk_drop_down_set_model(GTK_DROP_DOWN(w->size_dropdown), G_LIST_MODEL(list));
    gtk_drop_down_set_selected(GTK_DROP_DOWN(w->size_dropdown), sel);
    w->filling_sizes = FALSE;
    g_object_unref(list);
}

/* A new input size: remembered, and the current image segmented again (a
 * result computed at that size before comes from the cache). */
static void set_input_size(ViewerWindow *w, int size)
{
    if (size < 32 || size > 2048 || size == w->input_size)
        return;
    w->input_size = size;
    if (w->settings)
        g_settings_set_int(w->settings, "input-size", size);
    size_dropdown_fill(w);
    if (w->model)
        segment_current(w);
}

static void on_size(GObject *o, GParamSpec *ps, gpointer data)
{
    ViewerWindow *w = data;
    (void)o;
    (void)ps;
    if (w->filling_sizes)
        return;
    const guint i = gtk_drop_down_get_selected(GTK_DROP_DOWN(w->size_dropdown));
    if (i < (guint)w->n_size_choices)
        set_input_size(w, w->size_choices[i]);
}

/* ---------------------------------------------------------------- actions */

static ImgView *current_view(ViewerWindow *w)
{
    const char *name = gtk_stack_get_visible_child_name(GTK_STACK(w->views));
    return name && !strcmp(name, "similarity") ? w->sim_view : w->seg_view;
}

static void act_open_image(GSimpleAction *a, GVariant *p, gpointer d) { (void)a; (void)p; run_dialog(d, DLG_IMAGE); }
static void act_open_folder(GSimpleAction *a, GVariant *p, gpointer d) { (void)a; (void)p; run_dialog(d, DLG_FOLDER); }
static void act_open_model(GSimpleAction *a, GVariant *p, gpointer d) { (void)a; (void)p; run_dialog(d, DLG_MODEL); }
static void act_open_backbone(GSimpleAction *a, GVariant *p, gpointer d) { (void)a; (void)p; run_dialog(d, DLG_BACKBONE); }
static void act_export(GSimpleAction *a, GVariant *p, gpointer d) { (void)a; (void)p; run_dialog(d, DLG_EXPORT); }
static void act_random(GSimpleAction *a, GVariant *p, gpointer d)
{
    (void)a;
    (void)p;
    load_model(d, NULL, NULL, TRUE);
}
static void act_next(GSimpleAction *a, GVariant *p, gpointer d) { (void)a; (void)p; step_image(d, +1); }
static void act_prev(GSimpleAction *a, GVariant *p, gpointer d) { (void)a; (void)p; step_image(d, -1); }
static void act_zoom_fit(GSimpleAction *a, GVariant *p, gpointer d) { (void)a; (void)p; imgview_zoom_fit(current_view(d)); }
static void act_zoom_one(GSimpleAction *a, GVariant *p, gpointer d) { (void)a; (void)p; imgview_zoom_one(current_view(d)); }
static void act_zoom_in(GSimpleAction *a, GVariant *p, gpointer d) { (void)a; (void)p; imgview_zoom_by(current_view(d), 1.25); }
static void act_zoom_out(GSimpleAction *a, GVariant *p, gpointer d) { (void)a; (void)p; imgview_zoom_by(current_view(d), 0.8); }
static void act_cancel(GSimpleAction *a, GVariant *p, gpointer d)
{
    ViewerWindow *w = d;
    (void)a;
    (void)p;
    worker_cancel_all(w->worker);
    progress_hide(w);
}
static void act_input_size(GSimpleAction *a, GVariant *p, gpointer d)
{
    (void)a;
    set_input_size(d, g_variant_get_int32(p));
}
static void act_view(GSimpleAction *a, GVariant *p, gpointer d)
{
    ViewerWindow *w = d;
    (void)a;
    gtk_stack_set_visible_child_name(GTK_STACK(w->views), g_variant_get_string(p, NULL));
}

static const GActionEntry win_actions[] = {
    { "open-image", act_open_image, NULL, NULL, NULL, { 0 } },
    { "open-folder", act_open_folder, NULL, NULL, NULL, { 0 } },
    { "open-model", act_open_model, NULL, NULL, NULL, { 0 } },
    { "open-backbone", act_open_backbone, NULL, NULL, NULL, { 0 } },
    { "random-model", act_random, NULL, NULL, NULL, { 0 } },
    { "export", act_export, NULL, NULL, NULL, { 0 } },
    { "next", act_next, NULL, NULL, NULL, { 0 } },
    { "previous", act_prev, NULL, NULL, NULL, { 0 } },
    { "zoom-fit", act_zoom_fit, NULL, NULL, NULL, { 0 } },
    { "zoom-one", act_zoom_one, NULL, NULL, NULL, { 0 } },
    { "zoom-in", act_zoom_in, NULL, NULL, NULL, { 0 } },
    { "zoom-out", act_zoom_out, NULL, NULL, NULL, { 0 } },
    { "cancel", act_cancel, NULL, NULL, NULL, { 0 } },
    { "view", act_view, "s", NULL, NULL, { 0 } },
    { "input-size", act_input_size, "i", NULL, NULL, { 0 } },
};

/* ---------------------------------------------------------------- signals */

static void on_slider(GtkAdjustment *adj, gpointer data)
{
    ViewerWindow *w = data;
    (void)adj;
    schedule_relabel(w);
}

static void on_opacity(GtkAdjustment *adj, gpointer data)
{
    ViewerWindow *w = data;
    if (w->result)
        imgview_set_overlay(w->seg_view, w->label_surface, gtk_adjustment_get_value(adj), FALSE);
}

static void on_smooth(GtkCheckButton *b, gpointer data)
{
    ViewerWindow *w = data;
    (void)b;
    update_similarity(w);
    gtk_widget_queue_draw(w->attn_grid);
    for (GtkWidget *c = gtk_widget_get_first_child(w->attn_grid); c; c = gtk_widget_get_next_sibling(c))
        gtk_widget_queue_draw(gtk_flow_box_child_get_child(GTK_FLOW_BOX_CHILD(c)));
    build_proto_grid(w);
}

static void on_head(GObject *o, GParamSpec *ps, gpointer data)
{
    (void)o;
    (void)ps;
    build_proto_grid(data);
}

static void on_check(GtkCheckButton *b, gpointer data)
{
    (void)b;
    schedule_relabel(data);
}

static char *format_merge(GtkScale *s, double v, gpointer data)
{
    (void)s;
    (void)data;
    return v > 1.0 ? g_strdup(_("off")) : g_strdup_printf("%.2f", v);
}

static gboolean on_drop(GtkDropTarget *t, const GValue *value, double x, double y, gpointer data)
{
    ViewerWindow *w = data;
    (void)t;
    (void)x;
    (void)y;
    if (!G_VALUE_HOLDS(value, GDK_TYPE_FILE_LIST))
        return FALSE;
    GSList *list = g_value_get_boxed(value);
    GPtrArray *paths = g_ptr_array_new_with_free_func(g_free);
    for (GSList *l = list; l; l = l->next) {
        char *p = g_file_get_path(l->data);
        if (p)
            g_ptr_array_add(paths, p);
    }
    if (paths->len)
        viewer_window_open_paths(w, (char **)paths->pdata, (int)paths->len);
    g_ptr_array_free(paths, TRUE);
    return TRUE;
}

static gboolean on_close(GtkWindow *win, gpointer data)
{
    (void)data;
    settings_save(VIEWER_WINDOW(win));
    return FALSE;
}

/* ---------------------------------------------------------------- screenshot + timing */

static gboolean shot_tick(GtkWidget *widget, GdkFrameClock *clock, gpointer data)
{
    ViewerWindow *w = VIEWER_WINDOW(widget);
    (void)clock;
    (void)data;
    /* let revealers finish their animations (at most ~2 s) */
    gboolean settling =
        gtk_revealer_get_child_revealed(GTK_REVEALER(w->progress_revealer)) !=
            gtk_revealer_get_reveal_child(GTK_REVEALER(w->progress_revealer)) ||
        gtk_revealer_get_child_revealed(GTK_REVEALER(w->banner_revealer)) !=
            gtk_revealer_get_reveal_child(GTK_REVEALER(w->banner_revealer));
    if (++w->shot_frames < 4 || (settling && w->shot_frames < 120)) {
        gtk_widget_queue_draw(widget);
        return G_SOURCE_CONTINUE;
    }
    int wd = gtk_widget_get_width(widget), ht = gtk_widget_get_height(widget);
    GdkPaintable *p = gtk_widget_paintable_new(widget);
    GtkSnapshot *snap = gtk_snapshot_new();
    gdk_paintable_snapshot(p, GDK_SNAPSHOT(snap), wd, ht);
    GskRenderNode *node = gtk_snapshot_free_to_node(snap);
    if (!node && w->shot_frames < 240) { /* nothing drawn yet in this frame: try the next */
        g_object_unref(p);
        gtk_widget_queue_draw(widget);
        return G_SOURCE_CONTINUE;
    }
    gboolean ok = FALSE;
    if (node) {
        GskRenderer *r = gtk_native_get_renderer(GTK_NATIVE(widget));
        graphene_rect_t bounds;
        gsk_render_node_get_bounds(node, &bounds);
        GdkTexture *tex = gsk_renderer_render_texture(r, node, &bounds);
        if (tex) {
            ok = gdk_texture_save_to_png(tex, w->opt_screenshot);
            g_object_unref(tex);
        }
        gsk_render_node_unref(node);
    }
    g_object_unref(p);
    if (!ok && g_getenv("ALIGNSEG_VIEWER_DEBUG"))
        g_printerr("screenshot: %dx%d node=%p\n", wd, ht, (void *)node);
    if (!ok) {
        g_printerr("alignseg-viewer: could not write %s\n", w->opt_screenshot);
        set_exit(w, 1);
    }
    settings_save(w);
    GApplication *app = G_APPLICATION(gtk_window_get_application(GTK_WINDOW(w)));
    if (app)
        g_application_quit(app);
    return G_SOURCE_REMOVE;
}

static void start_screenshot(ViewerWindow *w)
{
    if (!w->opt_screenshot || w->shot_started)
        return;
    w->shot_started = TRUE;
    w->shot_frames = 0;
    gtk_widget_add_tick_callback(GTK_WIDGET(w), shot_tick, NULL, NULL);
}

static void timing_after_paint(GdkFrameClock *clock, gpointer data)
{
    ViewerWindow *w = data;
    (void)clock;
    if (w->timing_step <= 0 || w->timing_t0 == 0)
        return;
    if (!w->result) { /* the image changed under us: stop measuring */
        g_signal_handler_disconnect(clock, w->after_paint_id);
        w->after_paint_id = 0;
        w->timing_step = -1;
        start_screenshot(w);
        return;
    }
    int i = w->timing_step - 1;
    w->timing_frame_ms[i] = (g_get_monotonic_time() - w->timing_t0) / 1000.0;
    w->timing_relabel_ms[i] = w->relabel_us / 1000.0;
    w->timing_t0 = 0;
    if (w->timing_step < TIMING_STEPS) {
        w->timing_step++;
        w->timing_t0 = g_get_monotonic_time();
        /* alternate K and the mass threshold like a user dragging sliders */
        const AsResult *r = &w->result->r;
        int k = 1 + (w->timing_step % (r->q > 0 ? r->q : 1));
        if (w->timing_step % 2)
            gtk_adjustment_set_value(w->k_adj, k);
        else
            gtk_adjustment_set_value(w->mass_adj, 0.3 + 0.05 * (w->timing_step % 8));
        gtk_widget_queue_draw(w->seg_area);
        return;
    }
    double sf = 0, mf = 0, sr = 0, mr = 0;
    for (int j = 0; j < TIMING_STEPS; j++) {
        sf += w->timing_frame_ms[j];
        sr += w->timing_relabel_ms[j];
        if (w->timing_frame_ms[j] > mf)
            mf = w->timing_frame_ms[j];
        if (w->timing_relabel_ms[j] > mr)
            mr = w->timing_relabel_ms[j];
    }
    const AsResult *r = &w->result->r;
    printf("timing: input %dx%d grid %dx%d q %d: relabel mean %.2f ms max %.2f ms; "
           "slider-to-painted-frame mean %.2f ms max %.2f ms (%d moves); inference %.2f s\n",
           r->in_w, r->in_h, r->gw, r->gh, r->q, sr / TIMING_STEPS, mr, sf / TIMING_STEPS, mf,
           TIMING_STEPS, w->result->seconds);
    fflush(stdout);
    g_signal_handler_disconnect(clock, w->after_paint_id);
    w->after_paint_id = 0;
    w->timing_step = -1;
    gtk_adjustment_set_value(w->k_adj, r->q);
    gtk_adjustment_set_value(w->mass_adj, 0.6);
    start_screenshot(w);
}

static void start_timing(ViewerWindow *w)
{
    GdkFrameClock *clock = gtk_widget_get_frame_clock(GTK_WIDGET(w));
    if (!clock) {
        w->timing_step = -1;
        start_screenshot(w);
        return;
    }
    w->after_paint_id = g_signal_connect(clock, "after-paint", G_CALLBACK(timing_after_paint), w);
    w->timing_step = 1;
    w->timing_t0 = g_get_monotonic_time();
    gtk_adjustment_set_value(w->k_adj, 1);
    gtk_widget_queue_draw(w->seg_area);
}

static void maybe_finish_startup(ViewerWindow *w)
{
    if (!w->opt_screenshot && !w->opt.timing && !w->opt_export && !w->opt_actions)
        return;
    if (w->opt_actions) {
        /* e.g. "win.next,win.input-size(224),app.about": exercise actions like a
         * user would, before the view, export and screenshot options apply */
        const guint job_before = w->last_job;
        char **names = g_strsplit(w->opt_actions, ",", -1);
        g_free(w->opt_actions);
        w->opt_actions = NULL;
        for (int i = 0; names[i]; i++) {
            char *name = NULL;
            GVariant *param = NULL;
            GError *e = NULL;
            if (!names[i][0])
                continue;
            /* detailed names carry a parameter: win.input-size(224), win.view('prototypes') */
            if (!g_action_parse_detailed_name(names[i], &name, &param, &e)) {
                g_printerr("alignseg-viewer: %s: %s\n", names[i], e->message);
                g_error_free(e);
                continue;
            }
            if (!gtk_widget_activate_action_variant(GTK_WIDGET(w), name, param))
                g_printerr("alignseg-viewer: no action %s\n", names[i]);
            if (param)
                g_variant_unref(param);
            g_free(name);
        }
        g_strfreev(names);
        if (w->last_job != job_before)
            return; /* an action started a job: finish when it is done */
    }
    if (w->opt_view)
        gtk_stack_set_visible_child_name(GTK_STACK(w->views), w->opt_view);
    if (w->opt_export && w->result && !w->exported) {
        w->exported = TRUE;
        export_to(w, w->opt_export);
    }
    if (w->opt.timing && w->result && w->timing_step == 0) {
        start_timing(w);
        return;
    }
    if (w->timing_step > 0)
        return;
    start_screenshot(w);
}

static gboolean shot_timeout(gpointer data)
{
    ViewerWindow *w = data;
    if (!w->shot_started) {
        g_printerr("alignseg-viewer: no result within the time limit\n");
        set_exit(w, 1);
        GApplication *app = G_APPLICATION(gtk_window_get_application(GTK_WINDOW(w)));
        if (app)
            g_application_quit(app);
    }
    return G_SOURCE_REMOVE;
}

static gboolean startup_idle(gpointer data)
{
    ViewerWindow *w = data;
    if (w->last_job == 0)
        maybe_finish_startup(w);
    return G_SOURCE_REMOVE;
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
    free_result_arrays(w);
    if (w->label_surface)
        cairo_surface_destroy(w->label_surface);
    g_free(w->model_path);
    g_free(w->backbone_path);
    g_free(w->opt_model);
    g_free(w->opt_backbone);
    g_free(w->opt_screenshot);
    g_free(w->opt_view);
    g_free(w->opt_export);
    g_free(w->opt_actions);
    G_OBJECT_CLASS(viewer_window_parent_class)->finalize(o);
}

static void viewer_window_class_init(ViewerWindowClass *klass)
{
    GObjectClass *oc = G_OBJECT_CLASS(klass);
    GtkWidgetClass *wc = GTK_WIDGET_CLASS(klass);
    oc->dispose = viewer_window_dispose;
    oc->finalize = viewer_window_finalize;
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
    gtk_widget_class_bind_template_callback(wc, on_show_all);
}

static void viewer_window_init(ViewerWindow *w)
{
    gtk_widget_init_template(GTK_WIDGET(w));
    w->file_index = -1;
    w->isolate = -1;
    w->sim_patch = -1;
    g_action_map_add_action_entries(G_ACTION_MAP(w), win_actions, G_N_ELEMENTS(win_actions), w);

    w->seg_view = imgview_attach(w->seg_area);
    imgview_set_callbacks(w->seg_view, seg_hover, NULL, NULL, w);
    imgview_set_placeholder(w->seg_view, _("Open an image (Ctrl+O) or drop one here"));
    w->sim_view = imgview_attach(w->sim_area);
    imgview_set_callbacks(w->sim_view, sim_hover, sim_click, sim_draw, w);
    imgview_set_placeholder(w->sim_view, _("Open an image (Ctrl+O) or drop one here"));
    gtk_drawing_area_set_draw_func(GTK_DRAWING_AREA(w->attn_scale), scale_draw, NULL, NULL);
    gtk_drawing_area_set_draw_func(GTK_DRAWING_AREA(w->proto_scale), scale_draw, NULL, NULL);
    gtk_drawing_area_set_draw_func(GTK_DRAWING_AREA(w->sim_scale), scale_draw, NULL, NULL);
    scale_set(w->attn_scale, _("low"), _("high"),
              _("CLS attention (viridis, each map scaled to its own range)"));
    scale_set(w->proto_scale, _("low"), _("high"),
              _("similarity and decoder cross-attention (each map scaled to its own range)"));

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

    gtk_scale_set_format_value_func(GTK_SCALE(w->merge_scale), format_merge, NULL, NULL);
    w->settings = settings_new();
    VuSettings vs;
    settings_load(w, &vs);
    gtk_adjustment_set_value(w->merge_adj, vs.merge_threshold);
    gtk_adjustment_set_value(w->mass_adj, vs.mass_threshold);
    gtk_adjustment_set_value(w->opacity_adj, vs.opacity);
    if (vs.k > 0)
        gtk_adjustment_set_value(w->k_adj, vs.k);
    w->input_size = vs.input_size;
    gtk_window_set_default_size(GTK_WINDOW(w), vs.width, vs.height);
    if (w->settings) {
        gtk_check_button_set_active(GTK_CHECK_BUTTON(w->contours_check),
                                    g_settings_get_boolean(w->settings, "show-contours"));
        gtk_check_button_set_active(GTK_CHECK_BUTTON(w->fg_check),
                                    g_settings_get_boolean(w->settings, "restrict-foreground"));
        gtk_check_button_set_active(GTK_CHECK_BUTTON(w->smooth_check),
                                    g_settings_get_boolean(w->settings, "smooth-heatmaps"));
        if (g_settings_get_boolean(w->settings, "window-maximized"))
            gtk_window_maximize(GTK_WINDOW(w));
    }
    g_signal_connect(w->k_adj, "value-changed", G_CALLBACK(on_slider), w);
    g_signal_connect(w->merge_adj, "value-changed", G_CALLBACK(on_slider), w);
    g_signal_connect(w->mass_adj, "value-changed", G_CALLBACK(on_slider), w);
    g_signal_connect(w->opacity_adj, "value-changed", G_CALLBACK(on_opacity), w);
    g_signal_connect(w->contours_check, "toggled", G_CALLBACK(on_check), w);
    g_signal_connect(w->fg_check, "toggled", G_CALLBACK(on_check), w);
    g_signal_connect(w->smooth_check, "toggled", G_CALLBACK(on_smooth), w);
    g_signal_connect(w->head_dropdown, "notify::selected", G_CALLBACK(on_head), w);
    g_signal_connect(w->size_dropdown, "notify::selected", G_CALLBACK(on_size), w);
    g_signal_connect(w, "close-request", G_CALLBACK(on_close), NULL);

    GtkDropTarget *drop = gtk_drop_target_new(GDK_TYPE_FILE_LIST, GDK_ACTION_COPY);
    g_signal_connect(drop, "drop", G_CALLBACK(on_drop), w);
    gtk_widget_add_controller(GTK_WIDGET(w), GTK_EVENT_CONTROLLER(drop));

    w->worker = worker_new(on_worker_event, w);
    update_model_ui(w);
    update_status(w);
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
    w->opt_actions = g_strdup(opt->actions);
    if (opt->input_size > 0)
        w->input_size = opt->input_size;
    size_dropdown_fill(w);
    if (w->opt_screenshot) {
        g_timeout_add_seconds(600, shot_timeout, w);
        if (!opt->random_model && !w->opt_model)
            g_idle_add(startup_idle, w); /* nothing to wait for unless images follow */
    }
    if (opt->random_model) {
        load_model(w, NULL, NULL, TRUE);
    } else if (w->opt_model) {
        load_model(w, w->opt_model, w->opt_backbone, FALSE);
    } else {
        char *last = settings_get_path(w, "last-model");
        char *lastb = settings_get_path(w, "last-backbone");
        if (last && g_file_test(last, G_FILE_TEST_EXISTS))
            load_model(w, last, lastb, FALSE);
        g_free(last);
        g_free(lastb);
    }
    return w;
}

int viewer_window_exit_status(ViewerWindow *w) { return w->exit_status; }
