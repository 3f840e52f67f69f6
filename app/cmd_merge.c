/* cmd_merge: 'alignseg merge' — join the export folders of a sharded
 * `alignseg export --shard I/N` into one (core/output/shards.h), or the
 * shard folders of a sharded `alignseg eval --shard I/N` into the report of
 * one run (core/output/evalshard.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "commands.h"
#include "eval.h"
#include "evalshard.h"
#include "shards.h"

static void usage(FILE *f)
{
    fprintf(f,
            "Usage: alignseg merge -o OUTDIR SHARD_DIR...            (export shards)\n"
            "       alignseg merge [-o REPORT.json] [--protocol P] SHARD_DIR...  (eval shards)\n"
            "\n"
            "Join the folders written by 'alignseg export --shard I/N' (one per shard) into\n"
            "one export in OUTDIR, byte for byte what a single 'alignseg export' of the same\n"
            "inputs writes (image ids in sorted input order, annotation ids derived from\n"
            "them). All N shards must be given once, made by the same alignseg, model,\n"
            "options, formats and classes (recorded in each alignseg-export.json); a missing,\n"
            "duplicated or foreign shard is an error naming it. The shards must include the\n"
            "voc format (the label maps are read back from it). OUTDIR must not hold a\n"
            "dataset yet; it appears at once (atomic.h), never half-written.\n"
            "\n"
            "\n"
            "Eval shards (folders holding " AS_EVAL_SHARD_FILE ", written by 'alignseg eval\n"
            "--shard I/N -o DIR'): the confusions of every image are added in list order, so\n"
            "the report printed (and written as JSON by -o) is exactly what one 'alignseg eval'\n"
            "of the whole list prints and writes with --json, for either protocol. All N\n"
            "shards must be given once and come from the same alignseg, model weights\n"
            "(fingerprint), options and image list; a missing, duplicated or foreign shard is\n"
            "an error naming it. Images that failed in a shard are counted and make the exit\n"
            "status 1, as in a single run.\n"
            "\n"
            "  -o, --output DIR   export shards: the merged export (required)\n"
            "  -o, --output FILE  eval shards: also write the report as JSON (as eval --json)\n"
            "      --protocol P   eval shards: reference or hungarian (default: the protocol\n"
            "                     the shards were run with)\n"
            "  -h, --help         this help\n"
            "\n"
            "Example:\n"
            "  sbatch --array=0-7 --wrap 'alignseg export -m m.pth --shard slurm \\\n"
            "      -o shards/$SLURM_ARRAY_TASK_ID photos/*.jpg'\n"
            "  alignseg merge -o dataset shards/*\n"
            "  alignseg merge -o val.json evalshards/*    (after eval --shard slurm -o evalshards/I)\n");
}

/* Eval shards: print the report of the whole list (and write it to json). */
static int merge_eval(const char **dirs, int n, const char *json, int proto)
{
    AsError err;
    as_error_clear(&err);
    AsEval ev;
    AsEvalShard head;
    int64_t failed = 0;
    if (as_eval_shards_merge(dirs, n, &ev, &head, &failed, &err)) {
        fprintf(stderr, "alignseg merge: %s\n", err.msg);
        return 1;
    }
    int status = 0;
    AsEvalReport rep;
    if (as_eval_report(&ev, proto >= 0 ? (AsEvalProtocol)proto : head.protocol, &rep, &err)) {
        fprintf(stderr, "alignseg merge: %s\n", err.msg);
        status = 1;
    } else {
        as_eval_report_print(&rep, stdout);
        if (json && as_eval_report_json(&rep, json, &err)) {
            fprintf(stderr, "alignseg merge: %s\n", err.msg);
            status = 1;
        }
        as_eval_report_free(&rep);
    }
    if (failed) {
        fprintf(stderr, "alignseg merge: %lld of %lld images failed in the shards (their errors "
                "are in the shard files)\n", (long long)failed, (long long)head.total_images);
        status = 1;
    }
    as_eval_shard_free(&head);
    as_eval_free(&ev);
    return status;
}

int cmd_merge(int argc, char **argv)
{
    const char *out = NULL;
    int proto = -1;
    const char **dirs = calloc((size_t)argc + 1, sizeof *dirs);
    int n = 0;
    if (!dirs)
        return 1;
    for (int i = 1; i < argc; i++) {
        const char *o = argv[i];
        if (!strcmp(o, "-h") || !strcmp(o, "--help")) {
            usage(stdout);
            free(dirs);
            return 0;
        } else if (!strcmp(o, "-o") || !strcmp(o, "--output")) {
            if (i + 1 >= argc) {
                fprintf(stderr, "alignseg merge: %s needs a folder\n", o);
                free(dirs);
                return 2;
            }
            out = argv[++i];
        } else if (!strcmp(o, "--protocol")) {
            const char *v = i + 1 < argc ? argv[++i] : "";
            if (!strcmp(v, "reference") || !strcmp(v, "hungarian")) {
                proto = strcmp(v, "reference") ? AS_EVAL_HUNGARIAN : AS_EVAL_REFERENCE;
            } else {
                fprintf(stderr, "alignseg merge: --protocol is reference or hungarian (got '%s')\n",
                        v);
                free(dirs);
                return 2;
            }
        } else if (o[0] == '-' && o[1] != '\0') {
            fprintf(stderr, "alignseg merge: unknown option '%s' (see 'alignseg merge --help')\n", o);
            free(dirs);
            return 2;
        } else {
            dirs[n++] = o;
        }
    }
    if (n > 0 && as_eval_shard_exists(dirs[0])) {
        int rc = merge_eval(dirs, n, out, proto);
        free(dirs);
        return rc;
    }
    if (proto >= 0) {
        fprintf(stderr, "alignseg merge: --protocol is for eval shards; %s is not one (no %s)\n",
                dirs[0], AS_EVAL_SHARD_FILE);
        free(dirs);
        return 2;
    }
    if (!out || n == 0) {
        fprintf(stderr, "alignseg merge: give -o OUTDIR and the shard folders (see --help)\n");
        free(dirs);
        return 2;
    }
    AsError err;
    as_error_clear(&err);
    int rc = cli_mkdirs("merge", out) != 0 ? 1 : as_shards_merge(out, dirs, n, &err);
    if (rc && err.msg[0])
        fprintf(stderr, "alignseg merge: %s\n", err.msg);
    free(dirs);
    return rc ? 1 : 0;
}
