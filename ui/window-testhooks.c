/* window-testhooks: the scripted run of the window (see window-private.h):
 * --action activates actions once the result shows, --view picks a view,
 * --export writes the result, --timing measures slider moves to painted
 * frames, and --screenshot renders the window to a PNG and quits. */
#include "window-private.h"

#include <stdio.h>
#include <string.h>

/* ---------------------------------------------------------------- screenshot + timing */

static const char *revealed_text(GtkWidget *revealer, GtkWidget *label)
{
    return gtk_revealer_get_reveal_child(GTK_REVEALER(revealer))
               ? gtk_label_get_text(GTK_LABEL(label))
               : "";
}

/* One line on stdout that a test can check without reading pixels: what the
 * window shows, whether Export is possible, the banner and notice texts and
 * the narrowest the window can be. */
static void print_state(ViewerWindow *w)
{
    int min_w = 0;
    gtk_widget_measure(GTK_WIDGET(w), GTK_ORIENTATION_HORIZONTAL, -1, &min_w, NULL, NULL, NULL);
    char *model = g_strdelimit(g_strdup(gtk_label_get_text(GTK_LABEL(w->model_label))), "\n", ' ');
    GString *legend = g_string_new(NULL); /* the legend's names, ";"-separated */
    for (int g = 0; w->result && g < w->ngroups && g < AS_MAX_GROUPS; g++)
        if (w->legend_name[g])
            g_string_append_printf(legend, "%s%s", g ? ";" : "",
                                   gtk_label_get_text(GTK_LABEL(w->legend_name[g])));
    char *img = w->image ? g_path_get_basename(w->image->path) : g_strdup("");
    /* where the attention view's foreground-mask tile is drawn, in window
     * (= screenshot) pixels, so a test can compare exactly that tile */
    graphene_rect_t fb = GRAPHENE_RECT_INIT(0, 0, 0, 0);
    if (!w->fg_area || !gtk_widget_get_mapped(w->fg_area) ||
        !gtk_widget_compute_bounds(w->fg_area, GTK_WIDGET(w), &fb))
        fb = GRAPHENE_RECT_INIT(0, 0, 0, 0);
    printf("state: page=%s view=%s image=%s input=%dx%d groups=%d export=%s k=%g merge=%g "
           "mass=%g opacity=%g min-width=%d status=\"%s\" error=\"%s\" notice=\"%s\" "
           "nomodel=%d model=\"%s\" mass-label=\"%s\" legend=\"%s\" fg-tile=%d,%d,%d,%d settings=%d\n",
           gtk_stack_get_visible_child_name(GTK_STACK(w->content)),
           gtk_stack_get_visible_child_name(GTK_STACK(w->views)), img,
           w->result ? w->result->r.in_w : 0, w->result ? w->result->r.in_h : 0, w->ngroups,
           gtk_widget_is_sensitive(GTK_WIDGET(w)) && w->result ? "enabled" : "disabled",
           gtk_adjustment_get_value(w->k_adj), gtk_adjustment_get_value(w->merge_adj),
           gtk_adjustment_get_value(w->mass_adj), gtk_adjustment_get_value(w->opacity_adj), min_w,
           gtk_label_get_text(GTK_LABEL(w->status_label)),
           revealed_text(w->banner_revealer, w->banner_label),
           revealed_text(w->notice_revealer, w->notice_label),
           gtk_revealer_get_reveal_child(GTK_REVEALER(w->nomodel_revealer)),
           model, gtk_label_get_text(GTK_LABEL(w->mass_label)), legend->str, (int)fb.origin.x,
           (int)fb.origin.y, (int)fb.size.width, (int)fb.size.height, w->settings != NULL);
    g_string_free(legend, TRUE);
    /* the actions a script can use, so a test can hold --help to them */
    GtkWidgetClass *wc = GTK_WIDGET_GET_CLASS(w);
    GType owner;
    const char *name, *property;
    const GVariantType *type;
    printf("actions:");
    for (guint i = 0; gtk_widget_class_query_action(wc, i, &owner, &name, &type, &property); i++)
        if (g_str_has_prefix(name, "win.")) /* not GtkWindow's own window.* */
            printf(" %s", name);
    printf("\n");
    fflush(stdout);
    g_free(img);
    g_free(model);
}

/* Revealers still animating or a view transition running (the screenshot waits, at most ~2 s). */
static gboolean settling(ViewerWindow *w)
{
    return gtk_revealer_get_child_revealed(GTK_REVEALER(w->progress_revealer)) !=
               gtk_revealer_get_reveal_child(GTK_REVEALER(w->progress_revealer)) ||
           gtk_revealer_get_child_revealed(GTK_REVEALER(w->banner_revealer)) !=
               gtk_revealer_get_reveal_child(GTK_REVEALER(w->banner_revealer)) ||
           gtk_revealer_get_child_revealed(GTK_REVEALER(w->notice_revealer)) !=
               gtk_revealer_get_reveal_child(GTK_REVEALER(w->notice_revealer)) ||
           gtk_revealer_get_child_revealed(GTK_REVEALER(w->nomodel_revealer)) !=
               gtk_revealer_get_reveal_child(GTK_REVEALER(w->nomodel_revealer)) ||
           gtk_stack_get_transition_running(GTK_STACK(w->views));
}

/* Where a widget is on the window's X surface ("x,y,w,h"), for a test's clicks. */
static void print_bounds(ViewerWindow *w, const char *name, GtkWidget *widget)
{
    graphene_rect_t b;
    double sx = 0, sy = 0;
    gtk_native_get_surface_transform(GTK_NATIVE(w), &sx, &sy);
    if (!gtk_widget_compute_bounds(widget, GTK_WIDGET(w), &b))
        b = GRAPHENE_RECT_INIT(0, 0, 0, 0);
    printf(" %s=%d,%d,%d,%d", name, (int)(b.origin.x + sx), (int)(b.origin.y + sy),
           (int)b.size.width, (int)b.size.height);
}

static void start_screenshot(ViewerWindow *w);

static gboolean hold_poll(gpointer data)
{
    ViewerWindow *w = data;
    if (!g_file_test(w->opt_hold, G_FILE_TEST_EXISTS))
        return G_SOURCE_CONTINUE;
    w->holding = FALSE;
    g_clear_pointer(&w->opt_hold, g_free);
    start_screenshot(w);
    return G_SOURCE_REMOVE;
}

/* --hold: once the window is laid out and drawn, say where its controls are,
 * then wait for the file. */
static gboolean hold_tick(GtkWidget *widget, GdkFrameClock *clock, gpointer data)
{
    ViewerWindow *w = VIEWER_WINDOW(widget);
    (void)clock;
    (void)data;
    if (++w->shot_frames < 4 || ((settling(w) || gtk_widget_get_width(w->mass_scale) < 30) &&
                                 w->shot_frames < 120)) {
        gtk_widget_queue_draw(widget);
        return G_SOURCE_CONTINUE;
    }
    printf("ready:");
    print_bounds(w, "mass-scale", w->mass_scale);
    print_bounds(w, "seg-area", w->seg_area);
    printf("\n");
    fflush(stdout);
    g_timeout_add(100, hold_poll, w);
    return G_SOURCE_REMOVE;
}

static gboolean shot_tick(GtkWidget *widget, GdkFrameClock *clock, gpointer data)
{
    ViewerWindow *w = VIEWER_WINDOW(widget);
    (void)clock;
    (void)data;
    if (++w->shot_frames < 4 || (settling(w) && w->shot_frames < 120)) {
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
    print_state(w); /* once, as the picture is taken */
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
        vw_set_exit(w, 1);
    }
    GApplication *app = G_APPLICATION(gtk_window_get_application(GTK_WINDOW(w)));
    if (app)
        g_application_quit(app);
    return G_SOURCE_REMOVE;
}

static void start_screenshot(ViewerWindow *w)
{
    if (!w->opt_screenshot || w->shot_started || w->holding)
        return;
    if (w->opt_hold) { /* a test sends keys and clicks now (--hold) */
        w->holding = TRUE;
        w->shot_frames = 0;
        gtk_widget_add_tick_callback(GTK_WIDGET(w), hold_tick, NULL, NULL);
        return;
    }
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

/* The parameter type of an installed action, NULL if it takes none or is unknown. */
static const GVariantType *action_param_type(ViewerWindow *w, const char *name, gboolean *found)
{
    GtkWidgetClass *wc = GTK_WIDGET_GET_CLASS(w);
    GType owner;
    const char *n, *property;
    const GVariantType *t;
    *found = FALSE;
    for (guint i = 0; gtk_widget_class_query_action(wc, i, &owner, &n, &t, &property); i++)
        if (!strcmp(n, name)) {
            *found = TRUE;
            return t;
        }
    return NULL;
}

/* Activate one --action: NAME or NAME(ARG) in GVariant text, e.g.
 * win.mass-kept(0.23), win.export-folder('out'). An integer is accepted
 * where the action takes a double. */
static void run_action(ViewerWindow *w, const char *detailed)
{
    char *name = NULL;
    GVariant *param = NULL;
    GError *e = NULL;
    if (!g_action_parse_detailed_name(detailed, &name, &param, &e)) {
        g_printerr("alignseg-viewer: --action %s: %s\n", detailed, e->message);
        g_error_free(e);
        vw_set_exit(w, 2);
        return;
    }
    gboolean installed = FALSE;
    const GVariantType *want = action_param_type(w, name, &installed);
    if (installed && want && param && g_variant_type_equal(want, G_VARIANT_TYPE_DOUBLE) &&
        g_variant_is_of_type(param, G_VARIANT_TYPE_INT32)) {
        GVariant *d = g_variant_ref_sink(g_variant_new_double(g_variant_get_int32(param)));
        g_variant_unref(param);
        param = d;
    }
    if (installed && ((want == NULL) != (param == NULL) ||
                      (want && !g_variant_is_of_type(param, want)))) {
        g_printerr("alignseg-viewer: --action %s: %s takes %s\n", detailed, name,
                   want ? g_variant_type_peek_string(want) : "no argument");
        vw_set_exit(w, 2);
    } else if (!gtk_widget_activate_action_variant(GTK_WIDGET(w), name, param)) {
        g_printerr("alignseg-viewer: no action %s\n", detailed);
        vw_set_exit(w, 2);
    }
    if (param)
        g_variant_unref(param);
    g_free(name);
}

static gboolean action_tick(GtkWidget *widget, GdkFrameClock *clock, gpointer data);

/* Run the remaining --action entries, one per frame (so each shows before the
 * next, as for a person). An action that starts a job (a new input size, the
 * next image) is waited for, unless the next action is win.cancel. Then
 * --export, --timing and --screenshot. */
void vw_maybe_finish_startup(ViewerWindow *w)
{
    if (!w->opt_screenshot && !w->opt.timing && !w->opt_export && !w->opt_actions)
        return;
    if (w->opt_view && !w->view_applied) {
        w->view_applied = TRUE;
        gtk_widget_activate_action(GTK_WIDGET(w), "win.view", "s", w->opt_view);
    }
    if (w->opt_actions && w->opt_actions[w->next_action]) {
        if (!w->action_tick_id)
            w->action_tick_id =
                gtk_widget_add_tick_callback(GTK_WIDGET(w), action_tick, NULL, NULL);
        return;
    }
    if (w->opt_export && w->result && !w->exported) {
        w->exported = TRUE;
        vw_export_to(w, w->opt_export);
        if (w->last_job > w->done_job)
            return; /* the export runs on the worker: resumes when it ends */
    }
    if (w->opt.timing && w->result && w->timing_step == 0) {
        start_timing(w);
        return;
    }
    if (w->timing_step > 0)
        return;
    start_screenshot(w);
}

static gboolean action_tick(GtkWidget *widget, GdkFrameClock *clock, gpointer data)
{
    ViewerWindow *w = VIEWER_WINDOW(widget);
    (void)clock;
    (void)data;
    const char *a = w->opt_actions[w->next_action];
    if (!a) {
        w->action_tick_id = 0;
        return G_SOURCE_REMOVE;
    }
    const guint job_before = w->last_job;
    w->next_action++;
    run_action(w, a);
    const char *next = w->opt_actions[w->next_action];
    if (w->last_job != job_before && w->last_job > w->done_job &&
        !(next && g_str_has_prefix(next, "win.cancel"))) {
        w->action_tick_id = 0;
        return G_SOURCE_REMOVE; /* resumes when the job ends (on_worker_event) */
    }
    if (next)
        return G_SOURCE_CONTINUE;
    w->action_tick_id = 0;
    vw_maybe_finish_startup(w);
    return G_SOURCE_REMOVE;
}

static gboolean shot_timeout(gpointer data)
{
    ViewerWindow *w = data;
    if (!w->shot_started) {
        g_printerr("alignseg-viewer: no result within the time limit\n");
        vw_set_exit(w, 1);
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
        vw_maybe_finish_startup(w);
    return G_SOURCE_REMOVE;
}


void vw_testhooks_start(ViewerWindow *w)
{
    if (!w->opt_screenshot)
        return;
    g_timeout_add_seconds(600, shot_timeout, w);
    if (!w->opt.random_model && !w->opt_model)
        g_idle_add(startup_idle, w); /* nothing to wait for unless images follow */
}
