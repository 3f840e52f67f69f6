/* main: alignseg-viewer, the GTK4 application (io.github.alignseg.Viewer):
 * command-line options, gettext, resources, application actions and accels,
 * the About window. The window itself is in window.c. */
#include <glib/gi18n.h>
#include <gtk/gtk.h>
#include <locale.h>
#include <stdlib.h>
#include <string.h>

#include "cpu.h"
#include "pool.h"
#include "vutil.h"
#include "window.h"

#ifndef ALIGNSEG_VERSION
#define ALIGNSEG_VERSION "unknown"
#endif
#ifndef VIEWER_LOCALEDIR
#define VIEWER_LOCALEDIR "/usr/share/locale"
#endif

#define APP_ID "io.github.alignseg.Viewer"

static int g_exit_status = 0;

static void act_about(GSimpleAction *a, GVariant *p, gpointer data)
{
    GtkApplication *app = data;
    (void)a;
    (void)p;
    static const char *authors[] = { "alignseg contributors", NULL };
    gtk_show_about_dialog(
        gtk_application_get_active_window(app), "program-name", _("AlignSeg Viewer"),
        "logo-icon-name", APP_ID, "version", ALIGNSEG_VERSION, "comments",
        _("Self-supervised semantic segmentation (AlignSeg, Liu et al., TPAMI 2024) "
          "with a DINO Vision Transformer, on the CPU."),
        "license-type", GTK_LICENSE_MIT_X11, "authors", authors, "translator-credits",
        _("translator-credits"), "website", "https://github.com/alignseg/alignseg", NULL);
}

static void act_quit(GSimpleAction *a, GVariant *p, gpointer data)
{
    (void)a;
    (void)p;
    GtkApplication *app = data;
    GList *wins = gtk_application_get_windows(app);
    for (GList *l = wins; l; l = l->next)
        gtk_window_close(GTK_WINDOW(l->data));
    g_application_quit(G_APPLICATION(app));
}

static const GActionEntry app_actions[] = {
    { "about", act_about, NULL, NULL, NULL, { 0 } },
    { "quit", act_quit, NULL, NULL, NULL, { 0 } },
};

static void startup(GApplication *app, gpointer data)
{
    (void)data;
    g_action_map_add_action_entries(G_ACTION_MAP(app), app_actions, G_N_ELEMENTS(app_actions), app);
    static const struct { const char *action; const char *accels[4]; } accels[] = {
        { "app.quit", { "<Ctrl>q", NULL } },
        { "win.open-image", { "<Ctrl>o", NULL } },
        { "win.open-folder", { "<Ctrl><Shift>o", NULL } },
        { "win.open-model", { "<Ctrl>m", NULL } },
        { "win.export", { "<Ctrl>e", NULL } },
        /* bare keys (Left, Right, f, 1, +, -, F5) are the window's own
         * shortcuts (window-actions.c), so a focused slider keeps its keys */
        { "win.zoom-fit", { "<Ctrl>0", NULL } },
        { "win.zoom-in", { "<Ctrl>plus", NULL } },
        { "win.zoom-out", { "<Ctrl>minus", NULL } },
        { "win.cancel", { "Escape", NULL } },
        { "win.view::segmentation", { "<Alt>1", NULL } },
        { "win.view::attention", { "<Alt>2", NULL } },
        { "win.view::prototypes", { "<Alt>3", NULL } },
        { "win.view::similarity", { "<Alt>4", NULL } },
    };
    for (size_t i = 0; i < G_N_ELEMENTS(accels); i++)
        gtk_application_set_accels_for_action(GTK_APPLICATION(app), accels[i].action,
                                              accels[i].accels);
    GtkCssProvider *css = gtk_css_provider_new();
    gtk_css_provider_load_from_resource(css, "/io/github/alignseg/Viewer/ui/style.css");
    gtk_style_context_add_provider_for_display(gdk_display_get_default(), GTK_STYLE_PROVIDER(css),
                                               GTK_STYLE_PROVIDER_PRIORITY_APPLICATION);
    g_object_unref(css);
    gtk_window_set_default_icon_name(APP_ID);
}

static ViewerWindow *window_for(GtkApplication *app, const ViewerOptions *opt)
{
    GtkWindow *active = gtk_application_get_active_window(app);
    if (active && !opt->model && !opt->random_model && !opt->screenshot)
        return VIEWER_WINDOW(active);
    ViewerWindow *w = viewer_window_new(app, opt);
    return w;
}

static int command_line(GApplication *gapp, GApplicationCommandLine *cl, gpointer data)
{
    (void)data;
    GtkApplication *app = GTK_APPLICATION(gapp);
    GVariantDict *d = g_application_command_line_get_options_dict(cl);
    ViewerOptions opt = { 0 };
    const char *model = NULL, *backbone = NULL, *shot = NULL, *view = NULL, *exp = NULL;
    const char *hold = NULL;
    const char **acts = NULL;
    const char **rest = NULL;
    int eh = 0, dh = 0, size = 0, threads = 0;
    gboolean untrained = FALSE, timing = FALSE;
    g_variant_dict_lookup(d, "model", "^&ay", &model);
    g_variant_dict_lookup(d, "backbone", "^&ay", &backbone);
    g_variant_dict_lookup(d, "screenshot", "^&ay", &shot);
    g_variant_dict_lookup(d, "view", "&s", &view);
    g_variant_dict_lookup(d, "export", "^&ay", &exp);
    g_variant_dict_lookup(d, "hold", "^&ay", &hold);
    g_variant_dict_lookup(d, "action", "^a&s", &acts);
    g_variant_dict_lookup(d, "encoder-heads", "i", &eh);
    g_variant_dict_lookup(d, "decoder-heads", "i", &dh);
    g_variant_dict_lookup(d, "size", "i", &size);
    g_variant_dict_lookup(d, "threads", "i", &threads);
    g_variant_dict_lookup(d, "untrained", "b", &untrained);
    g_variant_dict_lookup(d, "timing", "b", &timing);
    g_variant_dict_lookup(d, G_OPTION_REMAINING, "^a&ay", &rest);
    if (eh < 0 || dh < 0 || size < 0 || size > 4096 || threads < 0 || threads > 64) {
        g_application_command_line_printerr(cl, "%s\n", _("alignseg-viewer: bad option value"));
        g_free(rest);
        return 2;
    }
    if (view && strcmp(view, "segmentation") && strcmp(view, "attention") &&
        strcmp(view, "prototypes") && strcmp(view, "similarity")) {
        g_application_command_line_printerr(
            cl, "%s\n", _("alignseg-viewer: --view takes segmentation, attention, prototypes or similarity"));
        g_free(rest);
        return 2;
    }
    as_pool_set_threads(threads); /* 0: all cores */
    /* relative paths are relative to the invoking process */
    const char *cwd = g_application_command_line_get_cwd(cl);
    GPtrArray *abs = g_ptr_array_new_with_free_func(g_free);
    char *amodel = model ? g_canonicalize_filename(model, cwd) : NULL;
    char *aback = backbone ? g_canonicalize_filename(backbone, cwd) : NULL;
    char *ashot = shot ? g_canonicalize_filename(shot, cwd) : NULL;
    char *aexp = exp ? g_canonicalize_filename(exp, cwd) : NULL;
    char *ahold = hold ? g_canonicalize_filename(hold, cwd) : NULL;
    for (int i = 0; rest && rest[i]; i++)
        g_ptr_array_add(abs, g_canonicalize_filename(rest[i], cwd));
    opt.model = amodel;
    opt.backbone = aback;
    opt.screenshot = ashot;
    opt.view = view;
    opt.export_dir = aexp;
    opt.hold = ahold;
    opt.actions = acts;
    opt.mopt.encoder_heads = eh;
    opt.mopt.decoder_heads = dh;
    opt.input_size = size;
    opt.random_model = untrained;
    opt.timing = timing;
    ViewerWindow *w = window_for(app, &opt);
    if (abs->len)
        viewer_window_open_paths(w, (char **)abs->pdata, (int)abs->len);
    gtk_window_present(GTK_WINDOW(w));
    g_ptr_array_free(abs, TRUE);
    g_free(amodel);
    g_free(aback);
    g_free(ashot);
    g_free(aexp);
    g_free(ahold);
    g_free(rest);
    g_free(acts);
    return 0;
}

static void on_shutdown(GApplication *app, gpointer data)
{
    (void)data;
    g_exit_status = GPOINTER_TO_INT(g_object_get_data(G_OBJECT(app), "exit-status"));
}

gboolean viewer_running_uninstalled(void)
{
    static int uninstalled = -1; /* decided once: the answer cannot change */
    if (uninstalled < 0) {
#ifdef VIEWER_BUILD_UIDIR
        char *exe = g_file_read_link("/proc/self/exe", NULL);
        uninstalled = vu_exe_in_dir(exe, VIEWER_BUILD_UIDIR);
        g_free(exe);
#else
        uninstalled = 0;
#endif
    }
    return uninstalled;
}

/* Where the translations are: ALIGNSEG_LOCALEDIR; the build tree's po/ when
 * this is the uninstalled binary (build/ui/alignseg-viewer, as the README
 * runs it); else the installed locale directory. Newly allocated. */
static char *locale_dir(void)
{
    const char *env = g_getenv("ALIGNSEG_LOCALEDIR");
    if (env && *env)
        return g_strdup(env);
#ifdef VIEWER_BUILD_LOCALEDIR
    if (viewer_running_uninstalled())
        return g_strdup(VIEWER_BUILD_LOCALEDIR);
#endif
    return g_strdup(VIEWER_LOCALEDIR);
}

int main(int argc, char **argv)
{
    setlocale(LC_ALL, "");
    char *localedir = locale_dir();
    bindtextdomain(GETTEXT_PACKAGE, localedir);
    g_free(localedir);
    bind_textdomain_codeset(GETTEXT_PACKAGE, "UTF-8");
    textdomain(GETTEXT_PACKAGE);

    AsError cpu_err = { 0 };
    if (as_cpu_check(&cpu_err)) { /* ALIGNSEG_CPU names a path this CPU lacks, or none */
        fprintf(stderr, "alignseg-viewer: %s\n", cpu_err.msg);
        return 1;
    }
    GApplicationFlags flags = G_APPLICATION_HANDLES_COMMAND_LINE;
    for (int i = 1; i < argc; i++)
        if (!strncmp(argv[i], "--screenshot", 12) || !strcmp(argv[i], "--timing"))
            flags |= G_APPLICATION_NON_UNIQUE;
    GtkApplication *app = gtk_application_new(APP_ID, flags);
    g_application_set_option_context_parameter_string(G_APPLICATION(app),
                                                      _("[IMAGE|FOLDER…]"));
    g_application_set_option_context_summary(
        G_APPLICATION(app),
        _("Look at AlignSeg segmentations: label overlay, CLS attention, prototypes and patch "
          "similarity."));
    const GOptionEntry entries[] = {
        { "model", 'm', 0, G_OPTION_ARG_FILENAME, NULL,
          N_("AlignSeg checkpoint or DINO backbone (.pth, .safetensors)"), N_("MODEL") },
        { "backbone", 'b', 0, G_OPTION_ARG_FILENAME, NULL,
          N_("DINO backbone for a decoder-only model"), N_("BACKBONE") },
        { "encoder-heads", 0, 0, G_OPTION_ARG_INT, NULL,
          N_("Encoder attention heads (default: width/64)"), N_("N") },
        { "decoder-heads", 0, 0, G_OPTION_ARG_INT, NULL,
          N_("Decoder attention heads (default: 3)"), N_("N") },
        { "size", 0, 0, G_OPTION_ARG_INT, NULL, N_("Model input size in pixels (default: 448)"),
          N_("PIXELS") },
        { "threads", 0, 0, G_OPTION_ARG_INT, NULL,
          N_("CPU threads for the network (default: all cores)"), N_("N") },
        { "untrained", 0, 0, G_OPTION_ARG_NONE, NULL,
          N_("Start with a randomly initialised ViT-S/16 (output is meaningless)"), NULL },
        { "view", 0, 0, G_OPTION_ARG_STRING, NULL,
          N_("Show this view: segmentation, attention, prototypes or similarity"), N_("NAME") },
        { "action", 0, 0, G_OPTION_ARG_STRING_ARRAY, NULL,
          N_("Once the image is segmented, activate this action (repeatable, in order; see "
             "below)"),
          N_("NAME(ARG)") },
        { "screenshot", 0, 0, G_OPTION_ARG_FILENAME, NULL,
          N_("After the actions, write the window to this PNG file and quit"), N_("FILE") },
        { "export", 0, G_OPTION_FLAG_HIDDEN, G_OPTION_ARG_FILENAME, NULL,
          "Export the first result to DIR (as Ctrl+E does)", "DIR" },
        { "hold", 0, G_OPTION_FLAG_HIDDEN, G_OPTION_ARG_FILENAME, NULL,
          "Before the screenshot, print where the controls are and wait for FILE to exist",
          "FILE" },
        { "timing", 0, G_OPTION_FLAG_HIDDEN, G_OPTION_ARG_NONE, NULL,
          "Measure slider updates and print the times", NULL },
        { G_OPTION_REMAINING, 0, 0, G_OPTION_ARG_FILENAME_ARRAY, NULL, NULL, NULL },
        { NULL, 0, 0, 0, NULL, NULL, NULL },
    };
    g_application_add_main_option_entries(G_APPLICATION(app), entries);
    g_application_set_option_context_description(
        G_APPLICATION(app),
        _("Checkpoints: DINO backbones (ViT-S/16, ViT-S/8, ViT-B/16, ViT-B/8) from the "
          "facebookresearch/dino release; AlignSeg checkpoints from the AlignSeg authors.\n\n"
          "Actions for --action (ARG in GVariant text; each waits for the one before, "
          "including a re-segmentation it starts):\n"
          "  win.prototype-count(K)       prototype count, 1..Q\n"
          "  win.merge-threshold(T)       merge threshold, 0..1.05 (above 1: off)\n"
          "  win.mass-kept(M)             attention mass kept as foreground, 0.05..1\n"
          "  win.opacity(A)               overlay opacity, 0..1\n"
          "  win.input-size(PIXELS)       model input size\n"
          "  win.keep-aspect(true)        keep the photo's aspect ratio\n"
          "  win.show-contours(false)     prototype contours on the overlay\n"
          "  win.restrict-foreground(true)  label only the foreground mask\n"
          "  win.smooth-heatmaps(true)    bilinear heat maps\n"
          "  win.cross-attention-head(H)  0: mean of the heads, H: head H\n"
          "  win.group-visible((G,false)) legend row G (from 0) shown or hidden\n"
          "  win.view('NAME')             segmentation, attention, prototypes, similarity\n"
          "  win.next, win.previous       another image of the folder\n"
          "  win.zoom-in, win.zoom-out, win.zoom-one, win.zoom-fit  zoom the image\n"
          "  win.cancel, win.rerun        cancel the running job, segment again\n"
          "  win.export-folder('DIR')     export the current image into DIR\n"
          "  win.open-image, win.open-folder, win.open-model, win.open-model-file,\n"
          "  win.open-backbone, win.random-model              open a dialog or a model\n"
          "  win.export-all('DIR')        export every image of the folder into DIR\n"
          "  win.group-class((G,'NAME'))  name group G's class ('': prototype_G)\n"
          "  win.export-hidden(true)      export hidden groups as class \"ignore\"\n"
          "  win.export-formats('LIST')   voc,masks,coco,labelme (default all)\n"
          "  win.export-replace(true)     replace images the dataset has without asking\n"
          "  win.export, win.class-menu(G)  the export dialog, group G's class menu\n"
          "  tiles.detail('MAP')          open a map over the photo: attention:mean, attention:H,\n"
          "                               similarity:K, cross-attention:K\n"
          "  tiles.shared-scale(true)     one colour scale for all map tiles\n"
          "  edit.tool('NAME')            move, brush, eraser or region (click to reassign)\n"
          "  edit.class(G), edit.size(PX) the class a correction paints, the brush diameter\n"
          "  edit.paint((X,Y)), edit.fill((X,Y))  a brush dab, a region reassigned, at photo pixel X,Y\n"
          "  edit.undo, edit.redo, edit.clear      undo/redo (Ctrl+Z, Ctrl+Shift+Z), drop all corrections\n"
          "  edit.save-labels('FILE')     the corrected label map as a grey PNG\n"
          "Example: alignseg-viewer -m MODEL.pth --action 'win.mass-kept(0.3)' "
          "--view attention --screenshot shot.png photo.jpg"));
    g_signal_connect(app, "startup", G_CALLBACK(startup), NULL);
    g_signal_connect(app, "command-line", G_CALLBACK(command_line), NULL);
    g_signal_connect(app, "shutdown", G_CALLBACK(on_shutdown), NULL);
    int status = g_application_run(G_APPLICATION(app), argc, argv);
    g_object_unref(app);
    if (status == 0)
        status = g_exit_status;
    return status;
}
