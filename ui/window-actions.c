/* window-actions: the window's win.* actions (installed on the class), the
 * file choosers they open, export, the input size and drag and drop (see
 * window-private.h). */
#include "window-private.h"

#include <string.h>

#include "vutil.h"

/* ---------------------------------------------------------------- dialogs */

typedef enum { DLG_IMAGE, DLG_FOLDER, DLG_MODEL, DLG_BACKBONE, DLG_EXPORT } DialogKind;

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
                vw_load_model(w, path, w->backbone_path, FALSE);
                break;
            case DLG_BACKBONE:
                g_free(w->backbone_path);
                w->backbone_path = g_strdup(path);
                if (w->model_path)
                    vw_load_model(w, w->model_path, path, FALSE);
                else
                    vw_load_model(w, path, NULL, FALSE);
                break;
            case DLG_EXPORT:
                vw_export_to(w, path);
                break;
            }
        } else if (f) {
            vw_show_error(w, _("Only local files can be opened."));
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
        char *last = vw_settings_get_path(w, kind == DLG_MODEL ? "last-model" : "last-backbone");
        if (last)
            start = g_path_get_dirname(last);
        g_free(last);
    } else if (kind == DLG_EXPORT) {
        /* the dataset exported to last, not the photos' folder; else home */
        char *last = vw_settings_get_path(w, "last-export-folder");
        start = g_strdup(vu_start_folder(last, g_get_home_dir()));
        g_free(last);
    } else {
        start = vw_settings_get_path(w, "last-folder");
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

/* ---------------------------------------------------------------- input size */

/* Fill the size drop-down with the standard sizes and the current one,
 * selecting the current one (without re-running anything). */
void vw_size_dropdown_fill(ViewerWindow *w)
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

/* Index of size in the drop-down, or -1. */
static int size_choice_index(ViewerWindow *w, int size)
{
    for (int i = 0; i < w->n_size_choices; i++)
        if (w->size_choices[i] == size)
            return i;
    return -1;
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
    /* Refill only for a size the list lacks: replacing the drop-down's model
     * while it reports the user's choice (we are called from its
     * notify::selected) left GLib warnings and criticals behind. */
    if (size_choice_index(w, size) < 0)
        vw_size_dropdown_fill(w);
    if (w->model)
        vw_segment_current(w);
}

static void on_keep_aspect(ViewerWindow *w, GtkCheckButton *b)
{
    const gboolean on = gtk_check_button_get_active(b);
    if (on == w->keep_aspect)
        return;
    w->keep_aspect = on;
    if (w->model)
        vw_segment_current(w);
}

static void on_size(ViewerWindow *w)
{
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

/* Actions that open a file chooser. */
static const struct {
    const char *action;
    DialogKind kind;
} dialog_actions[] = {
    { "win.open-image", DLG_IMAGE },     { "win.open-folder", DLG_FOLDER },
    { "win.open-model-file", DLG_MODEL }, { "win.open-backbone", DLG_BACKBONE },
};

static void act_dialog(GtkWidget *widget, const char *action, GVariant *param)
{
    (void)param;
    for (size_t i = 0; i < G_N_ELEMENTS(dialog_actions); i++)
        if (!strcmp(action, dialog_actions[i].action))
            run_dialog(VIEWER_WINDOW(widget), dialog_actions[i].kind);
}

/* Zoom actions of the visible image view: factor, or 0 = fit, -1 = 1:1. */
static const struct {
    const char *action;
    double factor;
} zoom_actions[] = {
    { "win.zoom-fit", 0 }, { "win.zoom-one", -1 }, { "win.zoom-in", 1.25 }, { "win.zoom-out", 0.8 },
};

static void act_zoom(GtkWidget *widget, const char *action, GVariant *param)
{
    ImgView *v = current_view(VIEWER_WINDOW(widget));
    (void)param;
    for (size_t i = 0; i < G_N_ELEMENTS(zoom_actions); i++) {
        if (strcmp(action, zoom_actions[i].action))
            continue;
        if (zoom_actions[i].factor == 0)
            imgview_zoom_fit(v);
        else if (zoom_actions[i].factor < 0)
            imgview_zoom_one(v);
        else
            imgview_zoom_by(v, zoom_actions[i].factor);
    }
}

static void act_step(GtkWidget *widget, const char *action, GVariant *param)
{
    (void)param;
    vw_step_image(VIEWER_WINDOW(widget), !strcmp(action, "win.next") ? +1 : -1);
}

static void act_model_dialog(GtkWidget *widget, const char *action, GVariant *param)
{
    (void)action;
    (void)param;
    vw_model_dialog_show(VIEWER_WINDOW(widget));
}

static void act_random(GtkWidget *widget, const char *action, GVariant *param)
{
    (void)action;
    (void)param;
    vw_load_model(VIEWER_WINDOW(widget), NULL, NULL, TRUE);
}

static void act_cancel(GtkWidget *widget, const char *action, GVariant *param)
{
    ViewerWindow *w = VIEWER_WINDOW(widget);
    (void)action;
    (void)param;
    const gboolean running = w->last_job > w->done_job;
    worker_cancel_all(w->worker);
    vw_progress_hide(w);
    vw_drop_other_image(w);
    if (running && !w->result) {
        w->cancelled = TRUE;
        vw_update_status(w);
        vw_show_notice(w, _("Cancelled. Segment Again (F5) runs the network on this image."),
                       TRUE);
    } else if (running) { /* a re-run of the photo shown: its previous result stays */
        char *t = g_strdup_printf(_("Cancelled: the views show the previous result (input "
                                    "%d×%d). Segment Again (F5) runs the network with the "
                                    "current settings."),
                                  w->result->r.in_w, w->result->r.in_h);
        vw_show_notice(w, t, TRUE);
        g_free(t);
    }
}

/* Through the drop-down when it lists the size, as a person chooses it. */
static void act_input_size(GtkWidget *widget, const char *action, GVariant *param)
{
    ViewerWindow *w = VIEWER_WINDOW(widget);
    (void)action;
    const int size = g_variant_get_int32(param);
    const int i = size_choice_index(w, size);
    if (i >= 0)
        gtk_drop_down_set_selected(GTK_DROP_DOWN(w->size_dropdown), (guint)i);
    else
        set_input_size(w, size);
}

static void act_keep_aspect(GtkWidget *widget, const char *action, GVariant *param)
{
    (void)action;
    gtk_check_button_set_active(GTK_CHECK_BUTTON(VIEWER_WINDOW(widget)->aspect_check),
                                g_variant_get_boolean(param));
}

static void act_rerun(GtkWidget *widget, const char *action, GVariant *param)
{
    (void)action;
    (void)param;
    vw_segment_current(VIEWER_WINDOW(widget));
}

/* The side panel's sliders as actions taking their value (for scripts and
 * the command line's --action). */
static const struct {
    const char *action;
    size_t offset; /* of the GtkAdjustment in ViewerWindow */
    const char *type;
} slider_actions[] = {
    { "win.prototype-count", G_STRUCT_OFFSET(ViewerWindow, k_adj), "i" },
    { "win.merge-threshold", G_STRUCT_OFFSET(ViewerWindow, merge_adj), "d" },
    { "win.mass-kept", G_STRUCT_OFFSET(ViewerWindow, mass_adj), "d" },
    { "win.opacity", G_STRUCT_OFFSET(ViewerWindow, opacity_adj), "d" },
};

static void act_slider(GtkWidget *widget, const char *action, GVariant *param)
{
    for (size_t i = 0; i < G_N_ELEMENTS(slider_actions); i++) {
        if (strcmp(action, slider_actions[i].action))
            continue;
        GtkAdjustment *adj = G_STRUCT_MEMBER(GtkAdjustment *, widget, slider_actions[i].offset);
        gtk_adjustment_set_value(adj, g_variant_is_of_type(param, G_VARIANT_TYPE_INT32)
                                          ? g_variant_get_int32(param)
                                          : g_variant_get_double(param));
    }
}

/* The side panel's check boxes as actions taking the state (for scripts). */
static const struct {
    const char *action;
    size_t offset; /* of the GtkCheckButton in ViewerWindow */
} check_actions[] = {
    { "win.show-contours", G_STRUCT_OFFSET(ViewerWindow, contours_check) },
    { "win.restrict-foreground", G_STRUCT_OFFSET(ViewerWindow, fg_check) },
    { "win.smooth-heatmaps", G_STRUCT_OFFSET(ViewerWindow, smooth_check) },
};

static void act_check(GtkWidget *widget, const char *action, GVariant *param)
{
    for (size_t i = 0; i < G_N_ELEMENTS(check_actions); i++)
        if (!strcmp(action, check_actions[i].action))
            gtk_check_button_set_active(
                G_STRUCT_MEMBER(GtkCheckButton *, widget, check_actions[i].offset),
                g_variant_get_boolean(param));
}

/* The cross-attention head drop-down: 0 = the mean, h = head h. */
static void act_head(GtkWidget *widget, const char *action, GVariant *param)
{
    ViewerWindow *w = VIEWER_WINDOW(widget);
    (void)action;
    const int h = g_variant_get_int32(param);
    GListModel *m = gtk_drop_down_get_model(GTK_DROP_DOWN(w->head_dropdown));
    if (h >= 0 && m && (guint)h < g_list_model_get_n_items(m))
        gtk_drop_down_set_selected(GTK_DROP_DOWN(w->head_dropdown), (guint)h);
}

/* A legend row's check box: (row from 0, shown). */
static void act_group_visible(GtkWidget *widget, const char *action, GVariant *param)
{
    ViewerWindow *w = VIEWER_WINDOW(widget);
    (void)action;
    gint32 g = 0;
    gboolean on = TRUE;
    g_variant_get(param, "(ib)", &g, &on);
    if (w->result && g >= 0 && g < w->ngroups && g < AS_MAX_GROUPS && w->legend_check[g])
        gtk_check_button_set_active(GTK_CHECK_BUTTON(w->legend_check[g]), on);
}

static void act_view(GtkWidget *widget, const char *action, GVariant *param)
{
    (void)action;
    gtk_stack_set_visible_child_name(GTK_STACK(VIEWER_WINDOW(widget)->views),
                                     g_variant_get_string(param, NULL));
}

void vw_actions_class_init(GtkWidgetClass *wc)
{
    for (size_t i = 0; i < G_N_ELEMENTS(dialog_actions); i++)
        gtk_widget_class_install_action(wc, dialog_actions[i].action, NULL, act_dialog);
    for (size_t i = 0; i < G_N_ELEMENTS(zoom_actions); i++)
        gtk_widget_class_install_action(wc, zoom_actions[i].action, NULL, act_zoom);
    gtk_widget_class_install_action(wc, "win.next", NULL, act_step);
    gtk_widget_class_install_action(wc, "win.previous", NULL, act_step);
    gtk_widget_class_install_action(wc, "win.random-model", NULL, act_random);
    gtk_widget_class_install_action(wc, "win.open-model", NULL, act_model_dialog);
    gtk_widget_class_install_action(wc, "win.cancel", NULL, act_cancel);
    gtk_widget_class_install_action(wc, "win.view", "s", act_view);
    gtk_widget_class_install_action(wc, "win.input-size", "i", act_input_size);
    gtk_widget_class_install_action(wc, "win.keep-aspect", "b", act_keep_aspect);
    gtk_widget_class_install_action(wc, "win.rerun", NULL, act_rerun);
    vw_export_class_init(wc); /* win.export, win.export-folder, ... (window-export.c) */
    for (size_t i = 0; i < G_N_ELEMENTS(slider_actions); i++)
        gtk_widget_class_install_action(wc, slider_actions[i].action, slider_actions[i].type,
                                        act_slider);
    for (size_t i = 0; i < G_N_ELEMENTS(check_actions); i++)
        gtk_widget_class_install_action(wc, check_actions[i].action, "b", act_check);
    gtk_widget_class_install_action(wc, "win.cross-attention-head", "i", act_head);
    gtk_widget_class_install_action(wc, "win.group-visible", "(ib)", act_group_visible);
    /* Bare keys in the widget's own (bubble-phase) shortcuts, not application
     * accelerators: a focused entry gets +/- first. (Left/Right: on_key.) */
    static const struct {
        guint key;
        const char *action;
    } keys[] = {
        { GDK_KEY_f, "win.zoom-fit" },      { GDK_KEY_0, "win.zoom-fit" },
        { GDK_KEY_1, "win.zoom-one" },      { GDK_KEY_plus, "win.zoom-in" },
        { GDK_KEY_equal, "win.zoom-in" },   { GDK_KEY_minus, "win.zoom-out" },
        { GDK_KEY_F5, "win.rerun" },
    };
    for (size_t i = 0; i < G_N_ELEMENTS(keys); i++)
        gtk_widget_class_add_binding_action(wc, keys[i].key, 0, keys[i].action, NULL);
    gtk_widget_class_bind_template_callback(wc, on_size);
    gtk_widget_class_bind_template_callback(wc, on_keep_aspect);
}

/* ---------------------------------------------------------------- drag and drop */

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


/* Left/Right and Page Up/Down step through the folder unless a widget that
 * uses them has the focus (a slider, a drop-down, a text field); GtkWindow's
 * own arrow-key focus moves would take them in the bubble phase. */
static gboolean on_key(GtkEventControllerKey *k, guint keyval, guint keycode, GdkModifierType mods,
                       gpointer data)
{
    ViewerWindow *w = data;
    (void)k;
    (void)keycode;
    int step = 0;
    if (keyval == GDK_KEY_Right || keyval == GDK_KEY_Page_Down)
        step = +1;
    else if (keyval == GDK_KEY_Left || keyval == GDK_KEY_Page_Up)
        step = -1;
    if (!step || (mods & (GDK_CONTROL_MASK | GDK_ALT_MASK | GDK_SHIFT_MASK)))
        return FALSE;
    for (GtkWidget *f = gtk_root_get_focus(GTK_ROOT(w)); f; f = gtk_widget_get_parent(f))
        if (GTK_IS_RANGE(f) || GTK_IS_EDITABLE(f) || GTK_IS_DROP_DOWN(f) || GTK_IS_POPOVER(f))
            return FALSE;
    vw_step_image(w, step);
    return TRUE;
}

void vw_actions_init(ViewerWindow *w)
{
    GtkEventController *keys = gtk_event_controller_key_new();
    gtk_event_controller_set_propagation_phase(keys, GTK_PHASE_CAPTURE);
    g_signal_connect(keys, "key-pressed", G_CALLBACK(on_key), w);
    gtk_widget_add_controller(GTK_WIDGET(w), keys);

    GtkDropTarget *drop = gtk_drop_target_new(GDK_TYPE_FILE_LIST, GDK_ACTION_COPY);
    g_signal_connect(drop, "drop", G_CALLBACK(on_drop), w);
    gtk_widget_add_controller(GTK_WIDGET(w), GTK_EVENT_CONTROLLER(drop));
}
