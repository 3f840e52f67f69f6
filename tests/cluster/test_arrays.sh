#!/bin/bash
# test_arrays.sh ALIGNSEG MAKE_PHOTOS SAMPLES_DIR CONTRIB_DIR: Slurm job
# arrays on a real single-node cluster (issue 14), through the job scripts of
# contrib/slurm:
#  - a 3-task export array over 9 photos (crops of data/samples made by
#    make_photos), merged with `alignseg merge` (merge.sbatch), equals a
#    single-process export byte for byte (diff -r), the options given in
#    another order than the job script gives them;
#  - one task is killed with SIGKILL once it has committed some but not all of
#    its images (--commit-every 0); what it left lists only complete images;
#    resubmitted alone (SHARDS=3 sbatch --array=1) it says how many it skipped,
#    exports the rest, and the merged result is again identical;
#  - an eval array with the merge as a dependent job (submit-eval.sh:
#    --dependency=afterok) prints and writes exactly the single run's report;
#    merged for Hungarian matching too.
# Skips (77) without root or without the Debian packages slurm-wlm and munge.
# The cluster it starts, and any job still running, are stopped (trap), also
# on failure.
set -u
bin=$1 make_photos=$2 samples=$3 contrib=$4
here=$(cd "$(dirname "$0")" && pwd)
if [ "$(id -u)" != 0 ]; then
    echo "skip: needs root to start munged/slurmctld/slurmd"; exit 77
fi
for p in munged slurmctld slurmd sbatch squeue scontrol; do
    if ! command -v $p >/dev/null; then
        echo "skip: $p missing (Debian packages slurm-wlm munge)"; exit 77
    fi
done
if ldd "$bin" | grep -q libasan; then # jobs of minutes under the sanitizer; the normal build runs it
    echo "skip: sanitizer build (the cluster tests run in the normal build)"; exit 77
fi
work=$(mktemp -d /tmp/alignseg-arrays.XXXXXX)
cleanup() {
    if [ -n "${SLURM_CONF:-}" ]; then # jobs first: their processes outlive slurmd
        for j in $(squeue -h -o %A 2>/dev/null); do scancel "$j" 2>/dev/null; done
        for _ in $(seq 1 50); do [ -z "$(squeue -h 2>/dev/null)" ] && break; sleep 0.2; done
    fi
    "$here/slurm-down.sh" "$work/slurm"
    rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; exit 1; }
show() { for f in "$@"; do echo "--- $f"; cat "$f" 2>/dev/null; done; }
count_images() { local n; n=$(grep -c '"file":' "$1/alignseg-export.json" 2>/dev/null); echo "${n:-0}"; }

cd "$work" || fail "cd $work"
mkdir -p photos masks bin logs
"$make_photos" "$samples" 9 photos masks || fail "make_photos"
ln -s "$bin" bin/alignseg
export PATH=$work/bin:$PATH
# a ViT-S/16 of random weights (the size of the published model)
alignseg bench --size 64 --runs 1 --no-peak --no-load --threads 1 --save-weights "$work/model.pth" \
    > /dev/null || fail "alignseg bench --save-weights"
export MODEL=$work/model.pth PHOTOS=photos IMAGES=photos MASKS=masks
size=(--size 448)

# the single-process references
alignseg export -q "${size[@]}" --threads 1 -m "$MODEL" --format voc,coco,labelme,masks \
    -o single photos/* || fail "single export"
for p in reference hungarian; do
    alignseg eval -q -m "$MODEL" --images photos --masks masks --threads 1 "${size[@]}" \
        --protocol $p --json "single-$p.json" > "single-$p.txt" || fail "single eval $p"
done
[ "$(count_images single)" = 9 ] || fail "the single export holds $(count_images single) images, not 9"
grep -q "images          9 (9 with labelled pixels)" single-reference.txt ||
    { show single-reference.txt; fail "the single eval did not score 9 images"; }

conf=$("$here/slurm-up.sh" "$work/slurm") || fail "slurm-up.sh"
export SLURM_CONF=$conf

wait_job() { # JOBID TIMEOUT_S: until it has left the queue
    for _ in $(seq 1 $(($2 * 5))); do
        [ -z "$(squeue -h -j "$1" 2>/dev/null)" ] && return 0
        sleep 0.2
    done
    return 1
}
job_state() { scontrol -o show job "$1" 2>/dev/null | grep -o 'JobState=[A-Z_]*' | head -1 | cut -d= -f2; }
task_pid() { # ARRAY_JOB TASK: the pid of that task's alignseg, or nothing
    local p c
    for p in /proc/[0-9]*; do
        { read -r c < "$p/comm"; } 2>/dev/null || continue
        [ "$c" = alignseg ] || continue
        if tr '\0' '\n' < "$p/environ" 2>/dev/null | grep -qx "SLURM_ARRAY_JOB_ID=$1" &&
           tr '\0' '\n' < "$p/environ" 2>/dev/null | grep -qx "SLURM_ARRAY_TASK_ID=$2"; then
            echo "${p#/proc/}"; return
        fi
    done
}

# ---- export array: 3 tasks of 3 photos; task 1 killed after its first commit
export OUT=shards DATASET=merged EXTRA="${size[*]}" COMMIT_EVERY=0
jid=$(sbatch --parsable --array=0-2 --cpus-per-task=1 "$contrib/export-array.sbatch") ||
    fail "sbatch export array"
killed=0 pid=
for _ in $(seq 1 6000); do
    [ -z "$pid" ] && pid=$(task_pid "$jid" 1)
    if [ -n "$pid" ] && [ "$(count_images shards/1)" -ge 1 ]; then
        kill -9 "$pid" && killed=1
        break
    fi
    [ -z "$(squeue -h -j "${jid}_1" 2>/dev/null)" ] && break
    sleep 0.02
done
[ "$killed" -ge 1 ] || { show logs/export-"${jid}"_1.out; fail "task 1 was not caught mid-way"; }
wait_job "$jid" 600 || fail "the export array did not finish"
left=$(count_images shards/1)
[ "$left" -ge 1 ] && [ "$left" -lt 3 ] ||
    fail "task 1 had committed $left of 3 images when killed (wanted a task killed mid-way)"
[ "$(job_state "${jid}_1")" = FAILED ] || fail "the killed task is $(job_state "${jid}_1"), not FAILED"
for t in 0 2; do
    [ "$(job_state "${jid}_$t")" = COMPLETED ] || { show logs/export-"${jid}_$t".out; fail "task $t"; }
done
# what the killed task left: every image its index lists is complete
for name in $(grep -o '"file": "[^"]*"' shards/1/alignseg-export.json | sed 's/.*: "//; s/\.[a-z]*"$//'); do
    [ -s "shards/1/voc/SegmentationClass/$name.png" ] && [ -s "shards/1/labelme/$name.json" ] ||
        fail "the killed task lists $name without its files"
done
# Resubmit task 1 alone (a lone task is told N): it skips what it had and
# exports the rest.
SHARDS=3 sbatch --wait --array=1 --cpus-per-task=1 "$contrib/export-array.sbatch" > /dev/null ||
    { show logs/export-*_1.out; fail "resubmitted task 1"; }
relog=$(ls -t logs/export-*_1.out | head -1)
grep -q "alignseg export: $left of 3 images skipped" "$relog" ||
    { show "$relog"; fail "the resubmitted task did not say it skipped $left images"; }
grep -q "exported $((3 - left)) of 3 images" "$relog" ||
    { show "$relog"; fail "the resubmitted task did not export the other $((3 - left))"; }
[ "$(count_images shards/1)" = 3 ] || fail "shard 1 incomplete after the resubmission"
sbatch --wait "$contrib/merge.sbatch" > /dev/null || { show logs/merge-*.out; fail "merge job"; }
diff -r single merged > diff.txt || { head -40 diff.txt; fail "merged export differs from the single export"; }
echo "ok: 3-task export array, task 1 killed after $left of 3 images and resubmitted, merged = single (diff -r)"

# ---- eval array, the merge as a dependent job
export OUT=evalshards EVAL_RESULT=merged-reference.json
line=$("$contrib/submit-eval.sh" 3 --cpus-per-task=1) || fail "submit-eval.sh"
ejid=$(echo "$line" | sed -n 's/^eval array \([0-9]*\), merge job \([0-9]*\).*/\1/p')
mjid=$(echo "$line" | sed -n 's/^eval array \([0-9]*\), merge job \([0-9]*\).*/\2/p')
[ -n "$ejid" ] && [ -n "$mjid" ] || fail "submit-eval.sh printed '$line'"
scontrol -o show job "$mjid" | grep -q "Dependency=afterok:${ejid}" ||
    fail "the merge job does not depend on the array (afterok): $(scontrol -o show job "$mjid")"
wait_job "$mjid" 600 || fail "the eval merge did not run"
[ "$(job_state "$mjid")" = COMPLETED ] || { show logs/eval-*.out; fail "eval merge job $(job_state "$mjid")"; }
cmp single-reference.txt "logs/eval-merge-$mjid.out" ||
    { show single-reference.txt "logs/eval-merge-$mjid.out"; fail "merged eval report differs"; }
cmp single-reference.json merged-reference.json || fail "merged eval JSON differs"
alignseg merge --protocol hungarian -o merged-hungarian.json evalshards/* > merged-hungarian.txt ||
    fail "merge --protocol hungarian"
cmp single-hungarian.txt merged-hungarian.txt || fail "merged Hungarian report differs"
cmp single-hungarian.json merged-hungarian.json || fail "merged Hungarian JSON differs"
echo "ok: 3-task eval array + dependent merge = single eval (reference and Hungarian)"
