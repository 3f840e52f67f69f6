/* window-classes: the named classes of the legend (issue 11): the pencil
 * menu of each legend row (a name typed, or one click on a class the dataset
 * folder already has), the names the legend shows, and the class of group g
 * that the export (window-export.c) writes. State in window-export.h. */
#include "window-export.h"

#include <string.h>

#include "dataset.h"

const char *vw_group_class(ViewerWindow *w, int g)
{
    VwExport *e = vw_export_state(w);
    return g >= 0 && g < AS_MAX_GROUPS ? e->names[g] : NULL;
}

char *vw_group_label(ViewerWindow *w, int g, const char *members)
{
    VwExport *e = vw_export_state(w);
    const char *n = vw_group_class(w, g);
    if (!vw_group_visible(w, g))
        return e->hidden_ignore ? g_strdup_printf(_("ignore (%s, hidden)"), members)
                                : g_strdup_printf(_("not exported (%s, hidden)"), members);
    if (w->share && g < w->ngroups && w->share[g] <= 0)
        return g_strdup_printf(_("not exported (%s, empty)"), members);
    if (n && !strcmp(n, "background"))
        return g_strdup_printf(_("background (%s)"), members);
    if (n)
        return g_strdup_printf("%s (%s)", n, members);
    return g_strdup_printf("prototype_%d (%s)", g, members);
}

void vw_set_group_class(ViewerWindow *w, int g, const char *name)
{
    VwExport *e = vw_export_state(w);
    if (g < 0 || g >= AS_MAX_GROUPS)
        return;
    AsError err = { 0 };
    int id = 0;
    /* a new class asks for g+1, the id prototype_<g> would have had */
    if (name && *name && strcmp(name, "background") &&
        as_class_table_add(e->classes, name, g + 1, NULL, &id, &err) != 0) {
        vw_show_error(w, err.msg);
        return;
    }
    g_free(e->names[g]);
    e->names[g] = name && *name ? g_strdup(name) : NULL;
    vw_schedule_relabel(w); /* the legend shows the name */
}

static void class_chosen(GtkButton *b, gpointer data)
{
    ViewerWindow *w = data;
    int g = GPOINTER_TO_INT(g_object_get_data(G_OBJECT(b), "group"));
    const char *name = g_object_get_data(G_OBJECT(b), "class");
    GtkWidget *pop = gtk_widget_get_ancestor(GTK_WIDGET(b), GTK_TYPE_POPOVER);
    if (pop)
        gtk_popover_popdown(GTK_POPOVER(pop));
    vw_set_group_class(w, g, name);
}

static void class_entered(GtkEntry *en, gpointer data)
{
    ViewerWindow *w = data;
    int g = GPOINTER_TO_INT(g_object_get_data(G_OBJECT(en), "group"));
    char *name = g_strstrip(g_strdup(gtk_editable_get_text(GTK_EDITABLE(en))));
    AsError err = { 0 };
    if (*name && strcmp(name, "background") && as_dataset_check_class_name(name, &err) != 0) {
        gtk_widget_set_tooltip_text(GTK_WIDGET(en), err.msg);
        gtk_widget_add_css_class(GTK_WIDGET(en), "error");
        g_free(name);
        return;
    }
    GtkWidget *pop = gtk_widget_get_ancestor(GTK_WIDGET(en), GTK_TYPE_POPOVER);
    if (pop)
        gtk_popover_popdown(GTK_POPOVER(pop));
    vw_set_group_class(w, g, name);
    g_free(name);
}

static void swatch_draw(GtkDrawingArea *a, cairo_t *cr, int wd, int ht, gpointer data)
{
    (void)a;
    const uint8_t *rgb = data;
    cairo_set_source_rgb(cr, rgb[0] / 255.0, rgb[1] / 255.0, rgb[2] / 255.0);
    cairo_rectangle(cr, 1, 1, wd - 2, ht - 2);
    cairo_fill_preserve(cr);
    cairo_set_source_rgba(cr, 0, 0, 0, 0.4);
    cairo_set_line_width(cr, 1);
    cairo_stroke(cr);
}

static GtkWidget *class_button(ViewerWindow *w, int g, const char *name, const char *text,
                               const uint8_t *rgb)
{
    GtkWidget *box = gtk_box_new(GTK_ORIENTATION_HORIZONTAL, 8);
    if (rgb) {
        GtkWidget *sw = gtk_drawing_area_new();
        gtk_drawing_area_set_content_width(GTK_DRAWING_AREA(sw), 14);
        gtk_drawing_area_set_content_height(GTK_DRAWING_AREA(sw), 14);
        gtk_widget_set_valign(sw, GTK_ALIGN_CENTER);
        gtk_drawing_area_set_draw_func(GTK_DRAWING_AREA(sw), swatch_draw, g_memdup2(rgb, 3),
                                       g_free);
        gtk_box_append(GTK_BOX(box), sw);
    }
    GtkWidget *l = gtk_label_new(text);
    gtk_label_set_xalign(GTK_LABEL(l), 0);
    gtk_box_append(GTK_BOX(box), l);
    GtkWidget *b = gtk_button_new();
    gtk_button_set_child(GTK_BUTTON(b), box);
    gtk_button_set_has_frame(GTK_BUTTON(b), FALSE);
    g_object_set_data(G_OBJECT(b), "group", GINT_TO_POINTER(g));
    g_object_set_data_full(G_OBJECT(b), "class", g_strdup(name), g_free);
    g_signal_connect(b, "clicked", G_CALLBACK(class_chosen), w);
    return b;
}

/* The pencil menu's content, built each time it opens (the table changes). */
static void class_menu_show(GtkPopover *pop, gpointer data)
{
    ViewerWindow *w = data;
    VwExport *e = vw_export_state(w);
    int g = GPOINTER_TO_INT(g_object_get_data(G_OBJECT(pop), "group"));
    vw_export_default_dir(w);
    GtkWidget *box = gtk_box_new(GTK_ORIENTATION_VERTICAL, 2);
    char *title = g_strdup_printf(_("Class of group %d (prototype_%d)"), g, g);
    GtkWidget *t = gtk_label_new(title);
    g_free(title);
    gtk_widget_add_css_class(t, "heading");
    gtk_label_set_xalign(GTK_LABEL(t), 0);
    gtk_box_append(GTK_BOX(box), t);
    GtkWidget *en = gtk_entry_new();
    gtk_entry_set_placeholder_text(GTK_ENTRY(en), _("New class name, Enter"));
    gtk_entry_set_max_length(GTK_ENTRY(en), AS_DATASET_NAME_MAX - 1);
    if (e->names[g])
        gtk_editable_set_text(GTK_EDITABLE(en), e->names[g]);
    g_object_set_data(G_OBJECT(en), "group", GINT_TO_POINTER(g));
    g_signal_connect(en, "activate", G_CALLBACK(class_entered), w);
    gtk_box_append(GTK_BOX(box), en);
    int listed = 0;
    for (int k = 1; k <= AS_DATASET_MAX_CLASS; k++) {
        if (!e->classes[k].name[0])
            continue;
        if (!listed++) {
            GtkWidget *h = gtk_label_new(_("Classes of the dataset"));
            gtk_label_set_xalign(GTK_LABEL(h), 0);
            gtk_widget_add_css_class(h, "dim-label");
            gtk_widget_set_margin_top(h, 6);
            gtk_box_append(GTK_BOX(box), h);
        }
        char *txt = g_strdup_printf("%s  (id %d)", e->classes[k].name, k);
        gtk_box_append(GTK_BOX(box),
                       class_button(w, g, e->classes[k].name, txt, e->classes[k].rgb));
        g_free(txt);
    }
    GtkWidget *sep = gtk_separator_new(GTK_ORIENTATION_HORIZONTAL);
    gtk_widget_set_margin_top(sep, 4);
    gtk_box_append(GTK_BOX(box), sep);
    static const uint8_t black[3] = { 0, 0, 0 };
    gtk_box_append(GTK_BOX(box), class_button(w, g, "background",
                                              _("background (not exported, id 0)"), black));
    char *unnamed = g_strdup_printf(_("No name (exported as prototype_%d)"), g);
    gtk_box_append(GTK_BOX(box), class_button(w, g, "", unnamed, NULL));
    g_free(unnamed);
    gtk_popover_set_child(pop, box);
    gtk_widget_grab_focus(en);
}

GtkWidget *vw_class_button_new(ViewerWindow *w, int g)
{
    GtkWidget *mb = gtk_menu_button_new();
    gtk_menu_button_set_icon_name(GTK_MENU_BUTTON(mb), "document-edit-symbolic");
    gtk_menu_button_set_has_frame(GTK_MENU_BUTTON(mb), FALSE);
    gtk_widget_set_tooltip_text(mb, _("Name this group's class for the export"));
    gtk_widget_set_valign(mb, GTK_ALIGN_CENTER);
    gtk_widget_add_css_class(mb, "legend-class");
    GtkWidget *pop = gtk_popover_new();
    g_object_set_data(G_OBJECT(pop), "group", GINT_TO_POINTER(g));
    g_signal_connect(pop, "show", G_CALLBACK(class_menu_show), w);
    gtk_menu_button_set_popover(GTK_MENU_BUTTON(mb), pop);
    char *n = g_strdup_printf("class-menu-%d", g);
    gtk_widget_set_name(mb, n);
    g_free(n);
    return mb;
}

