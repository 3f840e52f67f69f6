/* window: the main window of alignseg-viewer (template data/ui/window.ui):
 * image and model opening, the four views (segmentation, attention,
 * prototypes, patch similarity), sliders that re-label from cached results,
 * export, error banner, progress strip, and the scripting options (--view,
 * --action, --screenshot; hidden: --timing, --export; ALIGNSEG_VIEWER_DEBUG=1
 * logs worker events to stderr). */
#ifndef ALIGNSEG_VIEWER_WINDOW_H
#define ALIGNSEG_VIEWER_WINDOW_H

#include <gtk/gtk.h>

#include "model.h"

G_BEGIN_DECLS

#define VIEWER_TYPE_WINDOW (viewer_window_get_type())
G_DECLARE_FINAL_TYPE(ViewerWindow, viewer_window, VIEWER, WINDOW, GtkApplicationWindow)

typedef struct {
    const char *model;     /* -m */
    const char *backbone;  /* -b */
    AsModelOptions mopt;   /* --encoder-heads / --decoder-heads */
    int input_size;        /* --size (0: from settings) */
    gboolean random_model; /* --untrained */
    const char *screenshot;/* render the window to this PNG after the actions, then quit */
    const char *view;      /* initial view (segmentation, attention, prototypes, similarity) */
    gboolean timing;       /* hidden: print relabel timings to stdout */
    const char *export_dir;/* hidden: export the first result there (as Ctrl+E does) */
    const char *const *actions; /* NULL-terminated: activated in order once the result shows */
    const char *hold;      /* hidden: before the screenshot, print where the controls are
                            * and wait until this file exists (a test's keys and clicks) */
} ViewerOptions;

ViewerWindow *viewer_window_new(GtkApplication *app, const ViewerOptions *opt);
/* Open images and folders (first one shown; the rest are browsable). */
void viewer_window_open_paths(ViewerWindow *win, char **paths, int n);
/* Exit status for --screenshot runs: 0 ok, 1 an error was shown. */
int viewer_window_exit_status(ViewerWindow *win);
/* TRUE when this process is the build tree's binary (build/ui, as the
 * README runs it): translations and the settings schema then come from the
 * build tree; an installed binary uses the installed ones (main.c). */
gboolean viewer_running_uninstalled(void);

G_END_DECLS

#endif
