/* window-model: the Model… dialog (see window-private.h): the checkpoint, an
 * optional DINO backbone for a decoder-only file, the encoder and decoder
 * head counts (checkpoints do not store them), keep-aspect input, and the
 * models opened recently. */
#include "window-private.h"

#include <string.h>

#define RECENT_MAX 6

typedef struct {
    ViewerWindow *w;
    GtkWidget *win, *model_label, *backbone_label, *enc_spin, *dec_spin, *recent;
    char *model, *backbone;
    char **recent_paths;
} ModelDialog;

static void dialog_free(gpointer p)
{
    ModelDialog *d = p;
    g_free(d->model);
    g_free(d->backbone);
    g_strfreev(d->recent_paths);
    g_free(d);
}

static void show_path(GtkWidget *label, const char *path, const char *none)
{
    char *base = path ? g_path_get_basename(path) : NULL;
    gtk_label_set_text(GTK_LABEL(label), base ? base : none);
    gtk_widget_set_tooltip_text(label, path);
    g_free(base);
}

static void chosen(GtkNativeDialog *fc, int response, gpointer data)
{
    ModelDialog *d = data;
    const gboolean backbone = GPOINTER_TO_INT(g_object_get_data(G_OBJECT(fc), "backbone"));
    if (response == GTK_RESPONSE_ACCEPT) {
        GFile *f = gtk_file_chooser_get_file(GTK_FILE_CHOOSER(fc));
        char *path = f ? g_file_get_path(f) : NULL;
        if (path && backbone) {
            g_free(d->backbone);
            d->backbone = path;
            show_path(d->backbone_label, path, _("none"));
        } else if (path) {
            g_free(d->model);
            d->model = path;
            show_path(d->model_label, path, _("none"));
        }
        if (f)
            g_object_unref(f);
    }
    g_object_unref(fc);
}

static void choose(ModelDialog *d, gboolean backbone)
{
    GtkFileChooserNative *fc = gtk_file_chooser_native_new(
        backbone ? _("Open DINO Backbone") : _("Open Model"), GTK_WINDOW(d->win),
        GTK_FILE_CHOOSER_ACTION_OPEN, _("_Open"), _("_Cancel"));
    GtkFileFilter *f = gtk_file_filter_new();
    gtk_file_filter_set_name(f, _("Checkpoints (.pth, .pt, .safetensors)"));
    static const char *const pat[] = { "*.pth", "*.pt", "*.pth.tar", "*.ckpt", "*.safetensors" };
    for (size_t i = 0; i < G_N_ELEMENTS(pat); i++)
        gtk_file_filter_add_pattern(f, pat[i]);
    gtk_file_chooser_add_filter(GTK_FILE_CHOOSER(fc), f);
    g_object_unref(f);
    const char *cur = backbone ? d->backbone : d->model;
    if (cur) {
        char *dir = g_path_get_dirname(cur);
        GFile *gf = g_file_new_for_path(dir);
        gtk_file_chooser_set_current_folder(GTK_FILE_CHOOSER(fc), gf, NULL);
        g_object_unref(gf);
        g_free(dir);
    }
    g_object_set_data(G_OBJECT(fc), "backbone", GINT_TO_POINTER(backbone));
    gtk_native_dialog_set_modal(GTK_NATIVE_DIALOG(fc), TRUE);
    g_signal_connect(fc, "response", G_CALLBACK(chosen), d);
    gtk_native_dialog_show(GTK_NATIVE_DIALOG(fc));
}

static void on_choose_model(GtkButton *b, gpointer data)
{
    (void)b;
    choose(data, FALSE);
}

static void on_choose_backbone(GtkButton *b, gpointer data)
{
    (void)b;
    choose(data, TRUE);
}

static void on_clear_backbone(GtkButton *b, gpointer data)
{
    ModelDialog *d = data;
    (void)b;
    g_free(d->backbone);
    d->backbone = NULL;
    show_path(d->backbone_label, NULL, _("none"));
}

static void on_recent(GObject *o, GParamSpec *ps, gpointer data)
{
    ModelDialog *d = data;
    (void)o;
    (void)ps;
    const guint i = gtk_drop_down_get_selected(GTK_DROP_DOWN(d->recent));
    if (!d->recent_paths || i == GTK_INVALID_LIST_POSITION || i == 0 ||
        i > g_strv_length(d->recent_paths))
        return;
    g_free(d->model);
    d->model = g_strdup(d->recent_paths[i - 1]);
    show_path(d->model_label, d->model, _("none"));
}

static void on_load(GtkButton *b, gpointer data)
{
    ModelDialog *d = data;
    (void)b;
    if (!d->model) {
        choose(d, FALSE);
        return;
    }
    ViewerWindow *w = d->w;
    w->opt.mopt.encoder_heads = gtk_spin_button_get_value_as_int(GTK_SPIN_BUTTON(d->enc_spin));
    w->opt.mopt.decoder_heads = gtk_spin_button_get_value_as_int(GTK_SPIN_BUTTON(d->dec_spin));
    vw_load_model(w, d->model, d->backbone, FALSE);
    gtk_window_destroy(GTK_WINDOW(d->win));
}

static GtkWidget *row_label(const char *text)
{
    GtkWidget *l = gtk_label_new_with_mnemonic(text);
    gtk_label_set_xalign(GTK_LABEL(l), 0);
    return l;
}

void vw_model_dialog_show(ViewerWindow *w)
{
    ModelDialog *d = g_new0(ModelDialog, 1);
    d->w = w;
    d->model = g_strdup(w->model_path);
    d->backbone = g_strdup(w->backbone_path);
    d->win = gtk_window_new();
    gtk_window_set_title(GTK_WINDOW(d->win), _("Open Model"));
    gtk_window_set_transient_for(GTK_WINDOW(d->win), GTK_WINDOW(w));
    gtk_window_set_modal(GTK_WINDOW(d->win), TRUE);
    gtk_window_set_destroy_with_parent(GTK_WINDOW(d->win), TRUE);
    g_object_set_data_full(G_OBJECT(d->win), "dialog", d, dialog_free);

    GtkWidget *grid = gtk_grid_new();
    gtk_grid_set_row_spacing(GTK_GRID(grid), 8);
    gtk_grid_set_column_spacing(GTK_GRID(grid), 12);
    gtk_widget_set_margin_start(grid, 18);
    gtk_widget_set_margin_end(grid, 18);
    gtk_widget_set_margin_top(grid, 18);
    gtk_widget_set_margin_bottom(grid, 18);
    int row = 0;

    /* recent models */
    d->recent_paths = w->settings ? g_settings_get_strv(w->settings, "recent-models") : NULL;
    GtkStringList *names = gtk_string_list_new(NULL);
    gtk_string_list_append(names, _("Recent models…"));
    for (int i = 0; d->recent_paths && d->recent_paths[i]; i++) {
        char *base = g_path_get_basename(d->recent_paths[i]);
        gtk_string_list_append(names, base);
        g_free(base);
    }
    d->recent = gtk_drop_down_new(G_LIST_MODEL(names), NULL);
    gtk_widget_set_sensitive(d->recent, d->recent_paths && d->recent_paths[0]);
    g_signal_connect(d->recent, "notify::selected", G_CALLBACK(on_recent), d);
    gtk_grid_attach(GTK_GRID(grid), row_label(_("Recent")), 0, row, 1, 1);
    gtk_grid_attach(GTK_GRID(grid), d->recent, 1, row++, 2, 1);

    d->model_label = gtk_label_new(NULL);
    gtk_label_set_xalign(GTK_LABEL(d->model_label), 0);
    gtk_label_set_ellipsize(GTK_LABEL(d->model_label), PANGO_ELLIPSIZE_MIDDLE);
    gtk_widget_set_hexpand(d->model_label, TRUE);
    show_path(d->model_label, d->model, _("none"));
    GtkWidget *mb = gtk_button_new_with_mnemonic(_("_Choose…"));
    g_signal_connect(mb, "clicked", G_CALLBACK(on_choose_model), d);
    gtk_grid_attach(GTK_GRID(grid), row_label(_("Checkpoint")), 0, row, 1, 1);
    gtk_grid_attach(GTK_GRID(grid), d->model_label, 1, row, 1, 1);
    gtk_grid_attach(GTK_GRID(grid), mb, 2, row++, 1, 1);

    d->backbone_label = gtk_label_new(NULL);
    gtk_label_set_xalign(GTK_LABEL(d->backbone_label), 0);
    gtk_label_set_ellipsize(GTK_LABEL(d->backbone_label), PANGO_ELLIPSIZE_MIDDLE);
    show_path(d->backbone_label, d->backbone, _("none"));
    GtkWidget *bbox = gtk_box_new(GTK_ORIENTATION_HORIZONTAL, 6);
    GtkWidget *bb = gtk_button_new_with_mnemonic(_("C_hoose…"));
    g_signal_connect(bb, "clicked", G_CALLBACK(on_choose_backbone), d);
    GtkWidget *bc = gtk_button_new_from_icon_name("edit-clear-symbolic");
    gtk_widget_set_tooltip_text(bc, _("No backbone (the checkpoint holds the encoder)"));
    g_signal_connect(bc, "clicked", G_CALLBACK(on_clear_backbone), d);
    gtk_box_append(GTK_BOX(bbox), bb);
    gtk_box_append(GTK_BOX(bbox), bc);
    gtk_grid_attach(GTK_GRID(grid), row_label(_("Backbone (optional)")), 0, row, 1, 1);
    gtk_grid_attach(GTK_GRID(grid), d->backbone_label, 1, row, 1, 1);
    gtk_grid_attach(GTK_GRID(grid), bbox, 2, row++, 1, 1);

    d->enc_spin = gtk_spin_button_new_with_range(0, 64, 1);
    gtk_spin_button_set_value(GTK_SPIN_BUTTON(d->enc_spin), w->opt.mopt.encoder_heads);
    GtkWidget *el = row_label(_("_Encoder heads"));
    gtk_label_set_mnemonic_widget(GTK_LABEL(el), d->enc_spin);
    gtk_grid_attach(GTK_GRID(grid), el, 0, row, 1, 1);
    gtk_grid_attach(GTK_GRID(grid), d->enc_spin, 1, row, 1, 1);
    GtkWidget *eh = row_label(_("0: width / 64 (ViT-S 6, ViT-B 12)"));
    gtk_widget_add_css_class(eh, "dim-label");
    gtk_grid_attach(GTK_GRID(grid), eh, 2, row++, 1, 1);

    d->dec_spin = gtk_spin_button_new_with_range(0, 64, 1);
    gtk_spin_button_set_value(GTK_SPIN_BUTTON(d->dec_spin), w->opt.mopt.decoder_heads);
    GtkWidget *dl = row_label(_("_Decoder heads"));
    gtk_label_set_mnemonic_widget(GTK_LABEL(dl), d->dec_spin);
    gtk_grid_attach(GTK_GRID(grid), dl, 0, row, 1, 1);
    gtk_grid_attach(GTK_GRID(grid), d->dec_spin, 1, row, 1, 1);
    GtkWidget *dh = row_label(_("0: 3, as AlignSeg trains"));
    gtk_widget_add_css_class(dh, "dim-label");
    gtk_grid_attach(GTK_GRID(grid), dh, 2, row++, 1, 1);

    GtkWidget *aspect = gtk_check_button_new_with_mnemonic(_("_Keep aspect ratio (longer side)"));
    g_object_bind_property(w->aspect_check, "active", aspect, "active",
                           G_BINDING_BIDIRECTIONAL | G_BINDING_SYNC_CREATE);
    gtk_grid_attach(GTK_GRID(grid), aspect, 1, row++, 2, 1);

    GtkWidget *buttons = gtk_box_new(GTK_ORIENTATION_HORIZONTAL, 8);
    gtk_widget_set_halign(buttons, GTK_ALIGN_END);
    gtk_widget_set_margin_top(buttons, 8);
    GtkWidget *cancel = gtk_button_new_with_mnemonic(_("_Cancel"));
    g_signal_connect_swapped(cancel, "clicked", G_CALLBACK(gtk_window_destroy), d->win);
    GtkWidget *load = gtk_button_new_with_mnemonic(_("_Load"));
    gtk_widget_add_css_class(load, "suggested-action");
    g_signal_connect(load, "clicked", G_CALLBACK(on_load), d);
    gtk_box_append(GTK_BOX(buttons), cancel);
    gtk_box_append(GTK_BOX(buttons), load);
    gtk_grid_attach(GTK_GRID(grid), buttons, 0, row++, 3, 1);

    gtk_window_set_child(GTK_WINDOW(d->win), grid);
    gtk_window_set_default_widget(GTK_WINDOW(d->win), load);
    gtk_window_present(GTK_WINDOW(d->win));
}

void vw_recent_models_add(ViewerWindow *w, const char *path)
{
    if (!w->settings || !path)
        return;
    char **old = g_settings_get_strv(w->settings, "recent-models");
    GPtrArray *a = g_ptr_array_new();
    g_ptr_array_add(a, (gpointer)path);
    for (int i = 0; old[i] && a->len < RECENT_MAX; i++)
        if (strcmp(old[i], path))
            g_ptr_array_add(a, old[i]);
    g_ptr_array_add(a, NULL);
    g_settings_set_strv(w->settings, "recent-models", (const char *const *)a->pdata);
    g_ptr_array_free(a, TRUE);
    g_strfreev(old);
}
