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
static double brush_radius(ViewerWindow *w);

/* ---------------------------------------------------------------- the editor */

/* Put the current editor away: kept (by photo) when it holds corrections or
 * undo steps, so that going to another photo and back loses nothing. */
static void edit_reset(ViewerWindow *w)
{
    if (w->edit && w->edit_path &&
        (le_correction_count(w->edit) > 0 || le_can_undo(w->edit) || le_can_redo(w->edit))) {
        if (!w->edit_kept)
            w->edit_kept =
                g_hash_table_new_full(g_str_hash, g_str_equal, g_free, (GDestroyNotify)le_free);
        g_hash_table_replace(w->edit_kept, w->edit_path, w->edit);
    } else {
        le_free(w->edit);
        g_free(w->edit_path);
    }
    w->edit = NULL;
    w->edit_path = NULL;
    if (w->edit_surface)
        cairo_surface_destroy(w->edit_surface);
    if (w->edit_mask)
        cairo_surface_destroy(w->edit_mask);
    w->edit_surface = w->edit_mask = NULL;
    if (w->edit_base_key)
        g_bytes_unref(w->edit_base_key);
    w->edit_base_key = NULL;
    g_free(w->edit_look);
    w->edit_look = NULL;
}

void vw_edit_free(ViewerWindow *w)
{
    edit_reset(w);
    if (w->edit_kept)
        g_hash_table_destroy(w->edit_kept);
    w->edit_kept = NULL;
    g_free(w->edit_class_names);
    w->edit_class_names = NULL;
}

/* The model's labels at the photo's size, exactly as the export computes them. */
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

/* What the model's full-size labels depend on: the grouping, and the
 * foreground mask when labels are restricted to it. */
static GBytes *base_key(ViewerWindow *w)
{
    const AsResult *r = &w->result->r;
    gboolean fg_only = gtk_check_button_get_active(GTK_CHECK_BUTTON(w->fg_check));
    GByteArray *k = g_byte_array_new();
    g_byte_array_append(k, (const guint8 *)&w->result, sizeof w->result);
    g_byte_array_append(k, (const guint8 *)w->group, (guint)((size_t)r->q * sizeof *w->group));
    g_byte_array_append(k, (const guint8 *)&fg_only, sizeof fg_only);
    if (fg_only)
        g_byte_array_append(k, w->fg, (guint)r->n);
    return g_byte_array_free_to_bytes(k);
}

/* The editor's base is the model's full-size labels of the current sliders.
 * Computed only when needed (a region click, an export): at a photo's full
 * size it is the slow part, so slider moves do not pay for it. */
static gboolean edit_base(ViewerWindow *w)
{
    GBytes *key = base_key(w);
    if (w->edit_base_key && g_bytes_equal(key, w->edit_base_key)) {
        g_bytes_unref(key);
        return TRUE;
    }
    int32_t *base = full_labels(w);
    if (!base) {
        g_bytes_unref(key);
        return FALSE;
    }
    le_set_base(w->edit, base);
    g_free(base);
    if (w->edit_base_key)
        g_bytes_unref(w->edit_base_key);
    w->edit_base_key = key;
    return TRUE;
}

/* The editor of the current photo, created on demand; NULL without a result
 * or without memory. */
static LabelEdit *edit_get(ViewerWindow *w)
{
    if (!w->result || !w->image || w->ngroups < 1)
        return NULL;
    const int iw = w->image->img.w, ih = w->image->img.h;
    if (w->edit && (g_strcmp0(w->edit_path, w->image->path) || le_width(w->edit) != iw ||
                    le_height(w->edit) != ih))
        edit_reset(w);
    if (w->edit)
        return w->edit;
    /* corrections made to this photo before */
    gpointer kpath = NULL, kept = NULL;
    if (w->edit_kept &&
        g_hash_table_steal_extended(w->edit_kept, w->image->path, &kpath, &kept)) {
        g_free(kpath);
        if (le_width(kept) == iw && le_height(kept) == ih) {
            w->edit = kept;
        } else { /* the file changed size: they no longer apply */
            le_free(kept);
        }
    }
    if (!w->edit)
        w->edit = le_new(iw, ih, AS_LABEL_BACKGROUND, EDIT_UNDO_BYTES);
    w->edit_path = g_strdup(w->image->path); /* before a failure: kept corrections go back */
    w->edit_surface = cairo_image_surface_create(CAIRO_FORMAT_ARGB32, iw, ih);
    w->edit_mask = cairo_image_surface_create(CAIRO_FORMAT_A8, iw, ih);
    if (!w->edit || cairo_surface_status(w->edit_surface) != CAIRO_STATUS_SUCCESS ||
        cairo_surface_status(w->edit_mask) != CAIRO_STATUS_SUCCESS) {
        edit_reset(w);
        vw_show_error(w, _("Out of memory for the corrections of this image."));
        return NULL;
    }
    if (le_regroup(w->edit, w->group, w->result->r.q) == LE_DROPPED)
        vw_show_notice(w,
                       _("The grouping changed, so the corrections of this image were "
                         "dropped. Undo (Ctrl+Z) brings them back."),
                       FALSE);
    le_take_dirty(w->edit, &(int){ 0 }, &(int){ 0 }, &(int){ 0 }, &(int){ 0 });
    return w->edit;
}

/* The editor when it belongs to the photo shown. */
static LabelEdit *edit_mine(ViewerWindow *w)
{
    return w->edit && w->image && !g_strcmp0(w->edit_path, w->image->path) ? w->edit : NULL;
}

const int32_t *vw_edit_export_labels(ViewerWindow *w, int width, int height)
{
    LabelEdit *e = edit_mine(w);
    if (!e || !w->result || le_width(e) != width || le_height(e) != height ||
        le_correction_count(e) == 0 || !edit_base(w))
        return NULL;
    return le_labels(e);
}

int32_t vw_edit_correction_at(ViewerWindow *w, int x, int y)
{
    LabelEdit *e = edit_mine(w);
    if (!e || x < 0 || y < 0 || x >= le_width(e) || y >= le_height(e))
        return LE_NONE;
    return le_corrections(e)[(size_t)y * le_width(e) + x];
}

/* ---------------------------------------------------------------- drawing */

/* What the colours of the corrections depend on: groups shown, contours. */
static char *edit_look(ViewerWindow *w)
{
    GString *s = g_string_new(NULL);
    for (int g = 0; g < w->ngroups && g < AS_MAX_GROUPS; g++)
        g_string_append_c(s, vw_group_visible(w, g) ? '1' : '0');
    g_string_append_c(s, gtk_check_button_get_active(GTK_CHECK_BUTTON(w->contours_check)) ? 'c'
                                                                                        : '-');
    return g_string_free(s, FALSE);
}

/* Paint the corrections of [x0,x1) x [y0,y1) into the colour layer (the
 * class colour, white on the corrections' edges as the contours of the
 * segmentation, transparent where there is none or the class is hidden or
 * background) and the mask (opaque wherever there is a correction: the
 * model's colour is taken off there). */
static void paint_rect(ViewerWindow *w, int x0, int y0, int x1, int y1)
{
    LabelEdit *e = w->edit;
    const int iw = le_width(e), ih = le_height(e);
    x0 = x0 < 0 ? 0 : x0;
    y0 = y0 < 0 ? 0 : y0;
    x1 = x1 > iw ? iw : x1;
    y1 = y1 > ih ? ih : y1;
    if (x0 >= x1 || y0 >= y1)
        return;
    const int32_t *c = le_corrections(e);
    const int ng = w->ngroups < AS_MAX_GROUPS ? w->ngroups : AS_MAX_GROUPS;
    uint32_t colour[AS_MAX_GROUPS];
    for (int g = 0; g < ng; g++) {
        uint8_t rgb[3];
        as_label_colour(g, rgb);
        colour[g] = vw_group_visible(w, g)
                        ? 0xff000000u | (uint32_t)rgb[0] << 16 | (uint32_t)rgb[1] << 8 | rgb[2]
                        : 0;
    }
    const gboolean contours = gtk_check_button_get_active(GTK_CHECK_BUTTON(w->contours_check));
    cairo_surface_flush(w->edit_surface);
    cairo_surface_flush(w->edit_mask);
    uint8_t *cd = cairo_image_surface_get_data(w->edit_surface);
    uint8_t *md = cairo_image_surface_get_data(w->edit_mask);
    const int cs = cairo_image_surface_get_stride(w->edit_surface);
    const int ms = cairo_image_surface_get_stride(w->edit_mask);
    for (int y = y0; y < y1; y++) {
        uint32_t *crow = (uint32_t *)(cd + (size_t)y * cs);
        uint8_t *mrow = md + (size_t)y * ms;
        const int32_t *row = c + (size_t)y * iw;
        for (int x = x0; x < x1; x++) {
            const int32_t v = row[x];
            mrow[x] = v != LE_NONE ? 255 : 0;
            uint32_t px = v >= 0 && v < ng ? colour[v] : 0;
            if (contours && v != LE_NONE &&
                ((x > 0 && row[x - 1] != v) || (x + 1 < iw && row[x + 1] != v) ||
                 (y > 0 && row[x - iw] != v) || (y + 1 < ih && row[x + iw] != v)))
                px = 0xffffffffu;
            crow[x] = px;
        }
    }
    cairo_surface_mark_dirty_rectangle(w->edit_surface, x0, y0, x1 - x0, y1 - y0);
    cairo_surface_mark_dirty_rectangle(w->edit_mask, x0, y0, x1 - x0, y1 - y0);
}

/* Bring the layers up to date with the corrections (only what changed). */
static void edit_repaint(ViewerWindow *w)
{
    LabelEdit *e = edit_mine(w);
    if (!e)
        return;
    char *look = edit_look(w);
    int x0, y0, x1, y1;
    gboolean dirty = le_take_dirty(e, &x0, &y0, &x1, &y1);
    if (g_strcmp0(look, w->edit_look)) {
        g_free(w->edit_look);
        w->edit_look = look;
        paint_rect(w, 0, 0, le_width(e), le_height(e));
    } else {
        g_free(look);
        if (dirty) /* one pixel more on each side: the neighbours' contours */
            paint_rect(w, x0 - 1, y0 - 1, x1 + 1, y1 + 1);
    }
    gtk_widget_queue_draw(w->seg_area);
}

/* The corrections over the segmentation (imgview's drawing hook, in photo
 * pixels): the photo again under corrected pixels (so the model's colour does
 * not show through), their colours at the overlay's opacity; then the brush. */
void vw_edit_draw(ImgView *v, cairo_t *cr, gpointer data)
{
    ViewerWindow *w = data;
    LabelEdit *e = edit_mine(w);
    if (e && le_correction_count(e) > 0 && w->edit_surface && w->image->surface) {
        const double a = gtk_adjustment_get_value(w->opacity_adj);
        cairo_save(cr);
        cairo_set_source_surface(cr, w->image->surface, 0, 0);
        cairo_pattern_set_filter(cairo_get_source(cr), CAIRO_FILTER_NEAREST);
        cairo_mask_surface(cr, w->edit_mask, 0, 0);
        cairo_set_source_surface(cr, w->edit_surface, 0, 0);
        cairo_pattern_set_filter(cairo_get_source(cr), CAIRO_FILTER_NEAREST);
        cairo_paint_with_alpha(cr, a);
        cairo_restore(cr);
    }
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

/* After a relabel (window-views.c): the keep rule decides about the
 * corrections; nothing at the photo's full size is computed here. */
void vw_edit_relabel(ViewerWindow *w)
{
    if (w->edit && (!w->result || !w->image || g_strcmp0(w->edit_path, w->image->path) ||
                    le_width(w->edit) != w->image->img.w ||
                    le_height(w->edit) != w->image->img.h))
        edit_reset(w);
    if (!w->edit && w->edit_kept && w->image && w->result &&
        g_hash_table_contains(w->edit_kept, w->image->path))
        edit_get(w); /* back on a photo with corrections: they show again */
    if (w->edit && w->ngroups >= 1) {
        if (le_regroup(w->edit, w->group, w->result->r.q) == LE_DROPPED)
            vw_show_notice(w,
                           _("The grouping changed, so the corrections of this image were "
                             "dropped. Undo (Ctrl+Z) brings them back."),
                           FALSE);
        edit_repaint(w);
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

/* The corrections changed: layers and buttons. */
static void edit_changed(ViewerWindow *w)
{
    edit_repaint(w);
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
    if (!e || !edit_base(w))
        return;
    le_fill(e, (int)floor(x), (int)floor(y), edit_class(w));
    edit_changed(w);
}

/* Bring the Correct tools into view in the side panel's scroller (a tick
 * callback: two frames after opening them, their size is known). */
static gboolean scroll_to_tools(GtkWidget *panel, GdkFrameClock *clock, gpointer data)
{
    ViewerWindow *w = data;
    (void)clock;
    if (++w->edit_scroll_frames < 2)
        return G_SOURCE_CONTINUE;
    GtkWidget *sc = gtk_widget_get_ancestor(panel, GTK_TYPE_SCROLLED_WINDOW);
    double x, y;
    if (sc && gtk_widget_translate_coordinates(w->edit_expander, panel, 0, 0, &x, &y)) {
        GtkAdjustment *va = gtk_scrolled_window_get_vadjustment(GTK_SCROLLED_WINDOW(sc));
        gtk_adjustment_set_value(va, y - 8);
    }
    w->edit_scroll_tick = 0;
    w->edit_scroll_frames = 0;
    return G_SOURCE_REMOVE;
}

static void set_tool(ViewerWindow *w, int tool)
{
    w->edit_tool = tool;
    if (tool != TOOL_MOVE && w->edit_expander) {
        gtk_expander_set_expanded(GTK_EXPANDER(w->edit_expander), TRUE);
        if (!w->edit_scroll_tick) /* once the opened tools are laid out */
            w->edit_scroll_tick =
                gtk_widget_add_tick_callback(w->side_panel, scroll_to_tools, w, NULL);
    }
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
    edit_repaint(w);
}

static void drag_update(GtkGestureDrag *g, double dx, double dy, gpointer data)
{
    ViewerWindow *w = data;
    if (!w->edit_stroke || !edit_mine(w))
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
    edit_repaint(w);
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

/* ---------------------------------------------------------------- side panel */

static void edit_refresh(ViewerWindow *w)
{
    if (!w->edit_label)
        return;
    /* the class chooser lists the legend's groups by their legend names, then background */
    GString *names = g_string_new(NULL);
    for (int g = 0; w->result && g < w->ngroups && g < AS_MAX_GROUPS; g++) {
        const char *name = w->legend_groups == w->ngroups && w->legend_name[g]
                               ? gtk_label_get_text(GTK_LABEL(w->legend_name[g]))
                               : NULL;
        if (name && *name)
            g_string_append(names, name);
        else
            g_string_append_printf(names, _("Group %d"), g);
        g_string_append_c(names, '\n');
    }
    if (g_strcmp0(names->str, w->edit_class_names)) {
        guint sel = gtk_drop_down_get_selected(GTK_DROP_DOWN(w->edit_class_dropdown));
        char **list = g_strsplit(names->str, "\n", -1);
        GtkStringList *l = gtk_string_list_new(NULL);
        for (int g = 0; list[g] && list[g][0]; g++)
            gtk_string_list_append(l, list[g]);
        gtk_string_list_append(l, _("Background"));
        g_strfreev(list);
        gtk_drop_down_set_model(GTK_DROP_DOWN(w->edit_class_dropdown), G_LIST_MODEL(l));
        g_object_unref(l);
        if (sel != GTK_INVALID_LIST_POSITION && (int)sel <= w->ngroups)
            gtk_drop_down_set_selected(GTK_DROP_DOWN(w->edit_class_dropdown), sel);
        g_free(w->edit_class_names);
        w->edit_class_names = g_string_free(names, FALSE);
    } else {
        g_string_free(names, TRUE);
    }
    gboolean mine = edit_mine(w) != NULL;
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
    /* an expander under the legend, opened by choosing a tool */
    GtkWidget *panel = gtk_box_new(GTK_ORIENTATION_VERTICAL, 6);
    gtk_widget_set_margin_top(panel, 4);
    w->edit_expander = gtk_expander_new(NULL);
    GtkWidget *head = gtk_label_new(_("Correct"));
    gtk_widget_add_css_class(head, "heading");
    gtk_expander_set_label_widget(GTK_EXPANDER(w->edit_expander), head);
    gtk_widget_set_tooltip_text(w->edit_expander,
                                _("Paint over the segmentation before exporting it"));
    gtk_widget_set_margin_top(w->edit_expander, 8);
    gtk_expander_set_child(GTK_EXPANDER(w->edit_expander), panel);
    gtk_box_append(GTK_BOX(w->side_panel), w->edit_expander);

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
    gtk_box_append(GTK_BOX(panel), tools);

    GtkWidget *row = gtk_box_new(GTK_ORIENTATION_HORIZONTAL, 6);
    GtkWidget *cl = gtk_label_new(_("Class"));
    gtk_box_append(GTK_BOX(row), cl);
    w->edit_class_dropdown = gtk_drop_down_new(NULL, NULL);
    gtk_widget_set_hexpand(w->edit_class_dropdown, TRUE);
    gtk_widget_set_tooltip_text(w->edit_class_dropdown,
                                _("The class the brush paints and a clicked region becomes"));
    gtk_box_append(GTK_BOX(row), w->edit_class_dropdown);
    gtk_box_append(GTK_BOX(panel), row);

    row = gtk_box_new(GTK_ORIENTATION_HORIZONTAL, 6);
    gtk_box_append(GTK_BOX(row), gtk_label_new(_("Brush size")));
    w->edit_size_spin = gtk_spin_button_new_with_range(1, 500, 1);
    gtk_spin_button_set_value(GTK_SPIN_BUTTON(w->edit_size_spin), 24);
    gtk_widget_set_tooltip_text(w->edit_size_spin, _("Brush diameter in photo pixels"));
    gtk_widget_set_hexpand(w->edit_size_spin, TRUE);
    gtk_box_append(GTK_BOX(row), w->edit_size_spin);
    gtk_box_append(GTK_BOX(panel), row);

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
    gtk_box_append(GTK_BOX(panel), row);

    w->edit_label = gtk_label_new(NULL);
    gtk_label_set_xalign(GTK_LABEL(w->edit_label), 0);
    gtk_label_set_wrap(GTK_LABEL(w->edit_label), TRUE);
    gtk_widget_add_css_class(w->edit_label, "dim-label");
    gtk_box_append(GTK_BOX(panel), w->edit_label);
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
