/* atomic: every file alignseg writes goes through here, so that no run (a
 * full disk, an error, a SIGKILL at any moment) leaves a truncated file under
 * a final name or destroys the previous good one.
 *
 * One file: the bytes go to a temporary in the same folder,
 *     DIR/.NAME.alignseg-tmp.PID-START.SEQ
 * (START: the process's start time, so a reused PID is not taken for it)
 * which is flushed and fsync'ed, then renamed over DIR/NAME, then DIR is
 * fsync'ed. On any error the temporary is removed and DIR/NAME is untouched.
 *
 * Several files that must change together (an export's images and its index
 * files, one image's segment outputs): a batch stages every file as a
 * temporary (written without a per-file fsync; the commit makes them all
 * durable at once: one syncfs(2) of the folder's file system for 8 or more
 * files, an fsync each for fewer), then writes a journal ROOT/.alignseg-journal.PID-START.SEQ (itself
 * atomically) listing the renames and removals, performs them, and removes the
 * journal. Before the journal exists the batch changed nothing; once it exists
 * the batch is complete: a run killed in between is finished ("rolled
 * forward") by the next batch opened on ROOT. Readers that look at ROOT while a
 * run is committing may see a mixture, as with any multi-file update.
 *
 * Stale temporaries (of processes that no longer exist on this host) are
 * removed the first time a process writes into a folder. Journals and
 * temporaries of live processes are left alone, so several processes may write
 * into one folder (different files). Not safe across hosts sharing a folder:
 * the PID is the only owner mark. All functions are thread-safe. */
#ifndef ALIGNSEG_ATOMIC_H
#define ALIGNSEG_ATOMIC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "error.h"

/* The marker in every temporary's name. */
#define AS_ATOMIC_TMP_MARK ".alignseg-tmp."
#define AS_ATOMIC_JOURNAL_PREFIX ".alignseg-journal."

typedef struct {
    FILE *f;     /* write the content here */
    char *path;  /* the final name */
    char *tmp;   /* the temporary */
} AsAtomicFile;

/* Create the temporary for path (its folder must exist). */
int as_atomic_begin(AsAtomicFile *a, const char *path, AsError *err);
/* fflush + fsync + close, rename over path, fsync the folder. On error the
 * temporary is removed and path keeps its previous content. Always releases a. */
int as_atomic_commit(AsAtomicFile *a, AsError *err);
/* Drop the temporary (path untouched). Safe on a zeroed or released a. */
void as_atomic_abort(AsAtomicFile *a);
/* The whole file at once. */
int as_atomic_write_file(const char *path, const void *data, size_t len, AsError *err);

/* Remove temporaries of dead processes in dir (once per dir per process
 * unless force). Returns how many were removed. */
int as_atomic_clean_dir(const char *dir, bool force);

typedef struct AsAtomicBatch AsAtomicBatch;

/* Open a batch whose files all lie under the folder root (which must exist);
 * finishes any journal left in root by a killed process, then removes stale
 * temporaries there. */
int as_atomic_batch_open(const char *root, AsAtomicBatch **out, AsError *err);
/* Stage root/rel (rel: relative, no "..", its folder must exist) with these
 * bytes; nothing is visible until commit. Staging rel twice keeps the last. */
int as_atomic_batch_put(AsAtomicBatch *b, const char *rel, const void *data, size_t len,
                        AsError *err);
/* Stage the removal of root/rel (a file; a missing file is not an error). */
int as_atomic_batch_remove(AsAtomicBatch *b, const char *rel, AsError *err);
/* Number of staged changes. */
size_t as_atomic_batch_count(const AsAtomicBatch *b);
/* Make every staged change (renames in the order staged, then removals).
 * The batch is empty afterwards and may be reused. */
int as_atomic_batch_commit(AsAtomicBatch *b, AsError *err);
/* Drop what is staged (removes the temporaries); the batch stays usable. */
void as_atomic_batch_discard(AsAtomicBatch *b);
/* Drop what is staged and free. */
void as_atomic_batch_free(AsAtomicBatch *b);

/* Test hook: when set, as_atomic_batch_commit calls it after the journal is
 * written and before the first rename (tests kill the process there). */
extern void (*as_atomic_test_hook)(void);

#endif
