/* window-edit: correcting the segmentation before an export (see
 * window-private.h). The corrections live in a LabelEdit (labeledit.h) at the
 * photo's full size, created on the first correction; its base is the model's
 * labels at that size, recomputed on every relabel, and the keep rule drops
 * the corrections (undoably) when a slider changes the grouping. Tools:
 * Move (zoom and pan as usual), Brush, Eraser, Region; Ctrl+Z / Ctrl+Shift+Z;
 * the edit.* actions make all of it scriptable with --action. */
#include "window-private.h"

#include <math.h>
#include <string.h>

#include "image.h"
#include "labeledit.h"
#include "vutil.h"

/* corrections kept for undo: at most this many bytes (the newest step always) */
#define EDIT_UNDO_BYTES ((size_t)256 << 20)

enum { TOOL_MOVE, TOOL_BRUSH, TOOL_ERASER, TOOL_REGION, NTOOLS };
static const char *const tool_names[NTOOLS] = { "move", "brush", "eraser", "region" };

static void edit_refresh(ViewerWindow *w);

/* ---------------------------------------------------------------- the editor */

static void edit_reset(ViewerWindow *w)
{
    le_free(w->edit);
    w->edit = NULL;
    g_free(w->edit_path);
    w->edit_path = NULL;
    if (w->edit_surface)
        cairo_surface_destroy(w->edit_surface);
    w->edit_surface = NULL;
}

void vw_edit_free(ViewerWindow *w)
{
    edit_reset(w);
}

/* The model's labels at the photo's size, as the export computes them. */
static int32_t *full_labels(ViewerWindow *w)
{
    const AsResult *r = &w->result->r;
    const int iw = w->image->img.w, ih = w->image->img.h;
    int32_t *labels = g_try_new(int32_t, (size_t)iw * ih);
    if (!labels)
        return NULL;
    gboolean fg_only = gtk_check_button_get_active(GTK_CHECK_BUTTON(w->fg_check));
    AsError err = { 0 };
    if (as_relabel(r->assign, r->gh, r->gw, r->q, w->group, w->ngroups, fg_only ? w->fg : NULL,
                   ih, iw, NULL, labels, &err) != 0) {
        g_free(labels);
        vw_show_error(w, err.msg);
        return NULL;
    }
    return labels;
}

/* The editor of the current photo, created on demand; NULL without a result
 * or without memory. */
static LabelEdit *edit_get(ViewerWindow *w)
{
    if (!w->result || !w->image || w->ngroups < 1)
        return NULL;
    if (w->edit && (g_strcmp0(w->edit_path, w->image->path) ||
                    le_width(w->edit) != w->image->img.w || le_height(w->edit) != w->image->img.h))
        edit_reset(w);
    if (w->edit)
        return w->edit;
    int32_t *base = full_labels(w);
    if (!base)
        return NULL;
    w->edit = le_new(w->image->img.w, w->image->img.h, AS_LABEL_BACKGROUND, EDIT_UNDO_BYTES);
    if (!w->edit) {
        g_free(base);
        vw_show_error(w, _("Out of memory for the corrections of this image."));
        return NULL;
    }
    le_set_base(w->edit, base);
    g_free(base);
    le_regroup(w->edit, w->group, w->result->r.q);
    w->edit_path = g_strdup(w->image->path);
    w->edit_surface =
        cairo_image_surface_create(CAIRO_FORMAT_ARGB32, w->image->img.w, w->image->img.h);
    return w->edit;
}

/* Whether the corrected map is what the segmentation view shows. */
static gboolean edit_active(ViewerWindow *w)
{
    return w->edit && w->edit_surface && w->image && !g_strcmp0(w->edit_path, w->image->path) &&
           (le_correction_count(w->edit) > 0 || le_can_undo(w->edit) || le_can_redo(w->edit));
}

cairo_surface_t *vw_edit_surface(ViewerWindow *w)
{
    return edit_active(w) ? w->edit_surface : w->label_surface;
}

const int32_t *vw_edit_export_labels(ViewerWindow *w, int width, int height)
{
    if (!w->edit || !w->image || g_strcmp0(w->edit_path, w->image->path) ||
        le_width(w->edit) != width || le_height(w->edit) != height ||
        le_correction_count(w->edit) == 0)
        return NULL;
    return le_labels(w->edit);
}

/* Colourise the corrected map into the overlay. */
static void edit_paint_surface(ViewerWindow *w)
{
    if (!edit_active(w))
        return;
    uint8_t colours[AS_MAX_GROUPS * 3];
    bool gvis[AS_MAX_GROUPS];
    int ng = w->ngroups < AS_MAX_GROUPS ? w->ngroups : AS_MAX_GROUPS;
    for (int g = 0; g < ng; g++) {
        as_label_colour(g, colours + 3 * g);
        gvis[g] = vw_group_visible(w, g);
    }
    cairo_surface_flush(w->edit_surface);
    vu_colourise(le_labels(w->edit), le_width(w->edit), le_height(w->edit), ng, colours, gvis,
                 NULL, 0, 0, gtk_check_button_get_active(GTK_CHECK_BUTTON(w->contours_check)),
                 1.0, cairo_image_surface_get_data(w->edit_surface),
                 cairo_image_surface_get_stride(w->edit_surface));
    cairo_surface_mark_dirty(w->edit_surface);
    imgview_set_overlay(w->seg_view, w->edit_surface, gtk_adjustment_get_value(w->opacity_adj),
                        FALSE);
}

/* After a relabel (window-views.c): the base follows the sliders, the keep
 * rule decides about the corrections, the overlay shows them. */
void vw_edit_relabel(ViewerWindow *w)
{
    if (w->edit && (!w->result || !w->image || g_strcmp0(w->edit_path, w->image->path)))
        edit_reset(w);
    if (w->edit && w->ngroups >= 1) {
        if (le_width(w->edit) != w->image->img.w || le_height(w->edit) != w->image->img.h) {
            edit_reset(w);
        } else {
            int32_t *base = full_labels(w);
            if (base) {
                le_set_base(w->edit, base);
                g_free(base);
            }
            if (le_regroup(w->edit, w->group, w->result->r.q) == LE_DROPPED)
                vw_show_notice(w,
                               _("The grouping changed, so the corrections of this image were "
                                 "dropped. Undo (Ctrl+Z) brings them back."),
                               FALSE);
            edit_paint_surface(w);
        }
    }
    edit_refresh(w);
}

/* ---------------------------------------------------------------- the tools */

static int32_t edit_class(ViewerWindow *w)
{
    guint sel = gtk_drop_down_get_selected(GTK_DROP_DOWN(w->edit_class_dropdown));
    if (sel == GTK_INVALID_LIST_POSITION || (int)sel >= w->ngroups)
        return AS_LABEL_BACKGROUND; /* the last entry */
    return (int32_t)sel;
}

static double brush_radius(ViewerWindow *w)
{
    return gtk_spin_button_get_value(GTK_SPIN_BUTTON(w->edit_size_spin)) / 2.0;
}

/* The corrections changed: overlay, shares and buttons. */
static void edit_changed(ViewerWindow *w)
{
    edit_paint_surface(w);
    edit_refresh(w);
}

static void do_dab(ViewerWindow *w, double x, double y, gboolean erase)
{
    LabelEdit *e = edit_get(w);
    if (!e)
        return;
    le_dab(e, x, y, brush_radius(w), erase ? LE_NONE : edit_class(w));
    edit_changed(w);
}

static void do_fill(ViewerWindow *w, double x, double y)
{
    LabelEdit *e = edit_get(w);
    if (!e)
        return;
    le_fill(e, (int)floor(x), (int)floor(y), edit_class(w));
    edit_changed(w);
}

static void set_tool(ViewerWindow *w, int tool)
{
    w->edit_tool = tool;
    for (int t = 0; t < NTOOLS; t++)
        if (w->edit_tool_buttons[t])
            gtk_toggle_button_set_active(GTK_TOGGLE_BUTTON(w->edit_tool_buttons[t]), t == tool);
    gtk_widget_set_cursor_from_name(w->seg_area, tool == TOOL_MOVE ? NULL : "crosshair");
    gtk_widget_queue_draw(w->seg_area);
}

static void drag_begin(GtkGestureDrag *g, double x, double y, gpointer data)
{
    ViewerWindow *w = data;
    if (w->edit_tool == TOOL_MOVE || !w->result || !w->image) {
        gtk_gesture_set_state(GTK_GESTURE(g), GTK_EVENT_SEQUENCE_DENIED);
        return;
    }
    gtk_gesture_set_state(GTK_GESTURE(g), GTK_EVENT_SEQUENCE_CLAIMED);
    double ix, iy;
    imgview_to_image(w->seg_view, x, y, &ix, &iy);
    LabelEdit *e = edit_get(w);
    if (!e)
        return;
    if (w->edit_tool == TOOL_REGION) {
        do_fill(w, ix, iy);
        return;
    }
    le_stroke_begin(e);
    w->edit_stroke = TRUE;
    w->edit_lx = ix;
    w->edit_ly = iy;
    le_dab(e, ix, iy, brush_radius(w), w->edit_tool == TOOL_ERASER ? LE_NONE : edit_class(w));
    edit_paint_surface(w);
}

static void drag_update(GtkGestureDrag *g, double dx, double dy, gpointer data)
{
    ViewerWindow *w = data;
    if (!w->edit_stroke || !w->edit)
        return;
    double sx, sy, ix, iy;
    gtk_gesture_drag_get_start_point(g, &sx, &sy);
    imgview_to_image(w->seg_view, sx + dx, sy + dy, &ix, &iy);
    w->edit_px = sx + dx;
    w->edit_py = sy + dy;
    le_segment(w->edit, w->edit_lx, w->edit_ly, ix, iy, brush_radius(w),
               w->edit_tool == TOOL_ERASER ? LE_NONE : edit_class(w));
    w->edit_lx = ix;
    w->edit_ly = iy;
    edit_paint_surface(w);
}

static void drag_end(GtkGestureDrag *g, double dx, double dy, gpointer data)
{
    ViewerWindow *w = data;
    (void)g;
    (void)dx;
    (void)dy;
    if (!w->edit_stroke)
        return;
    w->edit_stroke = FALSE;
    if (w->edit)
        le_stroke_end(w->edit);
    edit_changed(w);
}

static void pointer_motion(GtkEventControllerMotion *m, double x, double y, gpointer data)
{
    ViewerWindow *w = data;
    (void)m;
    w->edit_px = x;
    w->edit_py = y;
    w->edit_pointer = TRUE;
    if (w->edit_tool == TOOL_BRUSH || w->edit_tool == TOOL_ERASER)
        gtk_widget_queue_draw(w->seg_area);
}

static void pointer_leave(GtkEventControllerMotion *m, gpointer data)
{
    ViewerWindow *w = data;
    (void)m;
    w->edit_pointer = FALSE;
    gtk_widget_queue_draw(w->seg_area);
}

/* The brush outline under the pointer (image coordinates, imgview's hook). */
void vw_edit_draw(ImgView *v, cairo_t *cr, gpointer data)
{
    ViewerWindow *w = data;
    if (!w->edit_pointer || (w->edit_tool != TOOL_BRUSH && w->edit_tool != TOOL_ERASER))
        return;
    double ix, iy;
    imgview_to_image(v, w->edit_px, w->edit_py, &ix, &iy);
    double s = imgview_scale(v) > 0 ? imgview_scale(v) : 1;
    cairo_set_line_width(cr, 1.5 / s);
    cairo_arc(cr, ix, iy, fmax(brush_radius(w), 0.5), 0, 2 * G_PI);
    cairo_set_source_rgba(cr, 1, 1, 1, 0.9);
    cairo_stroke_preserve(cr);
    cairo_set_dash(cr, (double[]){ 4 / s }, 1, 0);
    cairo_set_source_rgba(cr, 0, 0, 0, 0.9);
    cairo_stroke(cr);
}

/* ---------------------------------------------------------------- side panel */

static void edit_refresh(ViewerWindow *w)
{
    if (!w->edit_label)
        return;
    /* the class chooser lists the legend's groups, then background */
    if (w->edit_class_groups != w->ngroups || w->edit_class_result != w->result) {
        guint sel = gtk_drop_down_get_selected(GTK_DROP_DOWN(w->edit_class_dropdown));
        GtkStringList *l = gtk_string_list_new(NULL);
        for (int g = 0; g < w->ngroups && g < AS_MAX_GROUPS; g++) {
            const char *name = w->legend_name[g] ? gtk_label_get_text(GTK_LABEL(w->legend_name[g]))
                                                 : NULL;
            char *t = name && *name ? g_strdup(name) : g_strdup_printf(_("Group %d"), g);
            gtk_string_list_append(l, t);
            g_free(t);
        }
        gtk_string_list_append(l, _("Background"));
        gtk_drop_down_set_model(GTK_DROP_DOWN(w->edit_class_dropdown), G_LIST_MODEL(l));
        g_object_unref(l);
        if (sel != GTK_INVALID_LIST_POSITION && (int)sel <= w->ngroups)
            gtk_drop_down_set_selected(GTK_DROP_DOWN(w->edit_class_dropdown), sel);
        w->edit_class_groups = w->ngroups;
        w->edit_class_result = w->result;
    }
    gboolean mine = w->edit && w->image && !g_strcmp0(w->edit_path, w->image->path);
    size_t n = mine ? le_correction_count(w->edit) : 0;
    gtk_widget_set_sensitive(w->edit_undo_button, mine && le_can_undo(w->edit));
    gtk_widget_set_sensitive(w->edit_redo_button, mine && le_can_redo(w->edit));
    char *t;
    if (n && w->image) {
        double pc = 100.0 * n / ((double)w->image->img.w * w->image->img.h);
        t = g_strdup_printf(_("%zu pixels corrected (%.1f %%); exported with the image"), n, pc);
    } else {
        t = g_strdup(_("No corrections"));
    }
    gtk_label_set_text(GTK_LABEL(w->edit_label), t);
    g_free(t);
}

static void tool_toggled(GtkToggleButton *b, gpointer data)
{
    ViewerWindow *w = data;
    if (!gtk_toggle_button_get_active(b))
        return;
    int t = GPOINTER_TO_INT(g_object_get_data(G_OBJECT(b), "tool"));
    if (t != w->edit_tool)
        set_tool(w, t);
}

static void undo_clicked(GtkButton *b, gpointer data)
{
    (void)b;
    gtk_widget_activate_action(GTK_WIDGET(data), "edit.undo", NULL);
}

static void redo_clicked(GtkButton *b, gpointer data)
{
    (void)b;
    gtk_widget_activate_action(GTK_WIDGET(data), "edit.redo", NULL);
}

static void build_panel(ViewerWindow *w)
{
    GtkWidget *head = gtk_label_new(_("Correct"));
    gtk_widget_add_css_class(head, "heading");
    gtk_label_set_xalign(GTK_LABEL(head), 0);
    gtk_widget_set_margin_top(head, 8);
    gtk_box_append(GTK_BOX(w->side_panel), head);

    static const char *const labels[NTOOLS] = { N_("Move"), N_("Brush"), N_("Eraser"),
                                                N_("Region") };
    static const char *const tips[NTOOLS] = {
        N_("Zoom and pan the picture"),
        N_("Paint the chosen class (drag); size in photo pixels"),
        N_("Give pixels back the model's label (drag)"),
        N_("Click a connected region to move it to the chosen class"),
    };
    GtkWidget *tools = gtk_box_new(GTK_ORIENTATION_HORIZONTAL, 0);
    gtk_widget_add_css_class(tools, "linked");
    GtkWidget *group = NULL;
    for (int t = 0; t < NTOOLS; t++) {
        GtkWidget *b = gtk_toggle_button_new_with_label(_(labels[t]));
        gtk_widget_set_tooltip_text(b, _(tips[t]));
        gtk_widget_set_hexpand(b, TRUE);
        if (group)
            gtk_toggle_button_set_group(GTK_TOGGLE_BUTTON(b), GTK_TOGGLE_BUTTON(group));
        else
            group = b;
        g_object_set_data(G_OBJECT(b), "tool", GINT_TO_POINTER(t));
        gtk_toggle_button_set_active(GTK_TOGGLE_BUTTON(b), t == TOOL_MOVE);
        g_signal_connect(b, "toggled", G_CALLBACK(tool_toggled), w);
        gtk_box_append(GTK_BOX(tools), b);
        w->edit_tool_buttons[t] = b;
    }
    gtk_box_append(GTK_BOX(w->side_panel), tools);

    GtkWidget *row = gtk_box_new(GTK_ORIENTATION_HORIZONTAL, 6);
    GtkWidget *cl = gtk_label_new(_("Class"));
    gtk_box_append(GTK_BOX(row), cl);
    w->edit_class_dropdown = gtk_drop_down_new(NULL, NULL);
    gtk_widget_set_hexpand(w->edit_class_dropdown, TRUE);
    gtk_widget_set_tooltip_text(w->edit_class_dropdown,
                                _("The class the brush paints and a clicked region becomes"));
    gtk_box_append(GTK_BOX(row), w->edit_class_dropdown);
    gtk_box_append(GTK_BOX(w->side_panel), row);

    row = gtk_box_new(GTK_ORIENTATION_HORIZONTAL, 6);
    gtk_box_append(GTK_BOX(row), gtk_label_new(_("Brush size")));
    w->edit_size_spin = gtk_spin_button_new_with_range(1, 500, 1);
    gtk_spin_button_set_value(GTK_SPIN_BUTTON(w->edit_size_spin), 24);
    gtk_widget_set_tooltip_text(w->edit_size_spin, _("Brush diameter in photo pixels"));
    gtk_widget_set_hexpand(w->edit_size_spin, TRUE);
    gtk_box_append(GTK_BOX(row), w->edit_size_spin);
    gtk_box_append(GTK_BOX(w->side_panel), row);

    row = gtk_box_new(GTK_ORIENTATION_HORIZONTAL, 6);
    w->edit_undo_button = gtk_button_new_with_mnemonic(_("_Undo"));
    gtk_widget_set_tooltip_text(w->edit_undo_button, _("Undo the last correction (Ctrl+Z)"));
    g_signal_connect(w->edit_undo_button, "clicked", G_CALLBACK(undo_clicked), w);
    w->edit_redo_button = gtk_button_new_with_mnemonic(_("_Redo"));
    gtk_widget_set_tooltip_text(w->edit_redo_button, _("Redo (Ctrl+Shift+Z)"));
    g_signal_connect(w->edit_redo_button, "clicked", G_CALLBACK(redo_clicked), w);
    gtk_widget_set_hexpand(w->edit_undo_button, TRUE);
    gtk_widget_set_hexpand(w->edit_redo_button, TRUE);
    gtk_box_append(GTK_BOX(row), w->edit_undo_button);
    gtk_box_append(GTK_BOX(row), w->edit_redo_button);
    gtk_box_append(GTK_BOX(w->side_panel), row);

    w->edit_label = gtk_label_new(NULL);
    gtk_label_set_xalign(GTK_LABEL(w->edit_label), 0);
    gtk_label_set_wrap(GTK_LABEL(w->edit_label), TRUE);
    gtk_widget_add_css_class(w->edit_label, "dim-label");
    gtk_box_append(GTK_BOX(w->side_panel), w->edit_label);
    w->edit_class_groups = -1;
}

/* ---------------------------------------------------------------- actions */

static gboolean edit_ready(ViewerWindow *w, const char *what)
{
    if (w->result && w->image)
        return TRUE;
    g_printerr("alignseg-viewer: %s: no segmentation to correct yet\n", what);
    return FALSE;
}

static void act_tool(GtkWidget *widget, const char *name, GVariant *p)
{
    ViewerWindow *w = VIEWER_WINDOW(widget);
    (void)name;
    const char *t = g_variant_get_string(p, NULL);
    for (int i = 0; i < NTOOLS; i++)
        if (!strcmp(t, tool_names[i])) {
            set_tool(w, i);
            return;
        }
    g_printerr("alignseg-viewer: edit.tool: '%s' is not move, brush, eraser or region\n", t);
    vw_set_exit(w, 2);
}

static void act_class(GtkWidget *widget, const char *name, GVariant *p)
{
    ViewerWindow *w = VIEWER_WINDOW(widget);
    (void)name;
    int c = g_variant_get_int32(p);
    /* a group number, or 255 (or -1) for background: the last entry */
    guint pos = (c >= 0 && c < w->ngroups) ? (guint)c : (guint)w->ngroups;
    gtk_drop_down_set_selected(GTK_DROP_DOWN(w->edit_class_dropdown), pos);
}

static void act_size(GtkWidget *widget, const char *name, GVariant *p)
{
    ViewerWindow *w = VIEWER_WINDOW(widget);
    (void)name;
    gtk_spin_button_set_value(GTK_SPIN_BUTTON(w->edit_size_spin), g_variant_get_double(p));
}

static void act_paint(GtkWidget *widget, const char *name, GVariant *p)
{
    ViewerWindow *w = VIEWER_WINDOW(widget);
    double x, y;
    g_variant_get(p, "(dd)", &x, &y);
    if (edit_ready(w, name))
        do_dab(w, x, y, w->edit_tool == TOOL_ERASER);
}

static void act_fill(GtkWidget *widget, const char *name, GVariant *p)
{
    ViewerWindow *w = VIEWER_WINDOW(widget);
    double x, y;
    g_variant_get(p, "(dd)", &x, &y);
    if (edit_ready(w, name))
        do_fill(w, x, y);
}

static void act_undo(GtkWidget *widget, const char *name, GVariant *p)
{
    ViewerWindow *w = VIEWER_WINDOW(widget);
    (void)p;
    gboolean redo = !strcmp(name, "edit.redo");
    if (!w->edit || !w->image || g_strcmp0(w->edit_path, w->image->path))
        return;
    if (redo ? le_redo(w->edit) : le_undo(w->edit))
        edit_changed(w);
}

static void act_clear(GtkWidget *widget, const char *name, GVariant *p)
{
    ViewerWindow *w = VIEWER_WINDOW(widget);
    (void)name;
    (void)p;
    if (w->edit && le_clear(w->edit))
        edit_changed(w);
}

/* The corrected label map as an 8-bit grey PNG at the photo's size: group
 * numbers 0..253, 255 for background (as the labels of the export). */
static void act_save(GtkWidget *widget, const char *name, GVariant *p)
{
    ViewerWindow *w = VIEWER_WINDOW(widget);
    const char *path = g_variant_get_string(p, NULL);
    if (!edit_ready(w, name) || w->ngroups < 1) {
        vw_set_exit(w, 1);
        return;
    }
    const int iw = w->image->img.w, ih = w->image->img.h;
    const int32_t *labels = vw_edit_export_labels(w, iw, ih);
    int32_t *model = labels ? NULL : full_labels(w);
    uint8_t *gray = g_try_malloc((size_t)iw * ih);
    AsError err = { 0 };
    if (!gray || (!labels && !model)) {
        vw_show_error(w, _("Out of memory while saving the label map."));
        vw_set_exit(w, 1);
    } else {
        const int32_t *src = labels ? labels : model;
        for (size_t i = 0; i < (size_t)iw * ih; i++)
            gray[i] = (uint8_t)(src[i] >= 0 && src[i] <= 255 ? src[i] : 255);
        if (as_png_write_gray(path, gray, iw, ih, &err) != 0) {
            vw_show_error(w, err.msg);
            vw_set_exit(w, 1);
        }
    }
    g_free(gray);
    g_free(model);
}

void vw_edit_class_init(GtkWidgetClass *wc)
{
    gtk_widget_class_install_action(wc, "edit.tool", "s", act_tool);
    gtk_widget_class_install_action(wc, "edit.class", "i", act_class);
    gtk_widget_class_install_action(wc, "edit.size", "d", act_size);
    gtk_widget_class_install_action(wc, "edit.paint", "(dd)", act_paint);
    gtk_widget_class_install_action(wc, "edit.fill", "(dd)", act_fill);
    gtk_widget_class_install_action(wc, "edit.undo", NULL, act_undo);
    gtk_widget_class_install_action(wc, "edit.redo", NULL, act_undo);
    gtk_widget_class_install_action(wc, "edit.clear", NULL, act_clear);
    gtk_widget_class_install_action(wc, "edit.save-labels", "s", act_save);
    gtk_widget_class_add_binding_action(wc, GDK_KEY_z, GDK_CONTROL_MASK, "edit.undo", NULL);
    gtk_widget_class_add_binding_action(wc, GDK_KEY_z, GDK_CONTROL_MASK | GDK_SHIFT_MASK,
                                        "edit.redo", NULL);
    gtk_widget_class_add_binding_action(wc, GDK_KEY_Z, GDK_CONTROL_MASK | GDK_SHIFT_MASK,
                                        "edit.redo", NULL);
}

void vw_edit_init(ViewerWindow *w)
{
    build_panel(w);
    GtkGesture *drag = gtk_gesture_drag_new();
    gtk_event_controller_set_propagation_phase(GTK_EVENT_CONTROLLER(drag), GTK_PHASE_CAPTURE);
    g_signal_connect(drag, "drag-begin", G_CALLBACK(drag_begin), w);
    g_signal_connect(drag, "drag-update", G_CALLBACK(drag_update), w);
    g_signal_connect(drag, "drag-end", G_CALLBACK(drag_end), w);
    gtk_widget_add_controller(w->seg_area, GTK_EVENT_CONTROLLER(drag));
    GtkEventController *m = gtk_event_controller_motion_new();
    g_signal_connect(m, "motion", G_CALLBACK(pointer_motion), w);
    g_signal_connect(m, "leave", G_CALLBACK(pointer_leave), w);
    gtk_widget_add_controller(w->seg_area, m);
    edit_refresh(w);
}
