#!/bin/bash
# bench/scaling.sh [BUILD_DIR]: the measurements of docs/SCALING.md (issue 14).
#
# On a throwaway single-node Slurm (tests/cluster/slurm-up.sh; needs root and
# the Debian packages slurm-wlm, munge, openmpi-bin) with a random ViT-S/16
# (`alignseg bench --save-weights`) and N_PHOTOS (default 64) photos cut from
# data/samples (tests/cluster/make_photos), at --size SIZE (default 480):
#   1. export, one process without Slurm, 2 threads; and of one photo (start-up)
#   2. export through Slurm as 1 task x 2 threads (sbatch --wait, submit to end)
#   3. the same as a 2-task array x 1 thread (contrib/slurm/export-array.sbatch)
#      and `alignseg merge` of the 2 folders: the overhead of sharding+merging
#   4. training images/s: one process --threads 2 against mpirun -np 2
#      --threads 1 (alignseg train's own count over TRAIN_STEPS steps of batch 8)
# then the wall time of COCO train2017 (118,287 images) on 8 and 64 nodes,
# extrapolated from these. Prints a Markdown report on stdout. Times are wall
# clock: run it on a quiet machine.
set -u
root=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${1:-$root/build}" && pwd)
bin=$build/app/alignseg make_photos=$build/tests/make_photos
N=${N_PHOTOS:-64} SIZE=${SIZE:-480} STEPS=${TRAIN_STEPS:-4} COCO=118287
die() { echo "scaling.sh: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "needs root (it starts munged, slurmctld and slurmd)"
for p in munged slurmctld slurmd sbatch squeue mpirun; do
    command -v $p > /dev/null || die "$p missing (Debian packages slurm-wlm munge openmpi-bin)"
done
[ -x "$bin" ] && [ -x "$make_photos" ] || die "build first: ninja -C $build"
ldd "$bin" | grep -q libmpi || die "$bin was built without MPI (-Dmpi, libopenmpi-dev)"

work=$(mktemp -d /tmp/alignseg-scaling.XXXXXX)
cleanup() {
    if [ -n "${SLURM_CONF:-}" ]; then
        for j in $(squeue -h -o %A 2>/dev/null); do scancel "$j" 2>/dev/null; done
        sleep 1
    fi
    "$root/tests/cluster/slurm-down.sh" "$work/slurm"
    rm -rf "$work"
}
trap cleanup EXIT
cd "$work" || die "cd $work"
mkdir -p photos bin logs
"$make_photos" "$root/data/samples" "$N" photos || die "make_photos"
ln -s "$bin" bin/alignseg
export PATH=$work/bin:$PATH OPENBLAS_NUM_THREADS=1
alignseg bench --size 64 --runs 1 --no-peak --no-load --threads 1 --save-weights "$work/model.pth" \
    > /dev/null || die "alignseg bench --save-weights"
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }'; }
# shellcheck disable=SC2054 # the comma is --format's
opts=(-q -m "$work/model.pth" --size "$SIZE" --format voc,coco,labelme,masks)

echo "measuring: export without Slurm" >&2
t=$(now); alignseg export "${opts[@]}" --threads 2 -o plain photos/* || die "export"; t_plain=$(since "$t")
t=$(now); alignseg export "${opts[@]}" --threads 2 -o first photos/photo_01.png || die "export"
t_one=$(since "$t")

conf=$("$root/tests/cluster/slurm-up.sh" "$work/slurm") || die "slurm-up.sh"
export SLURM_CONF=$conf
stamp='date +%s.%N > stamps/$SLURM_JOB_NAME.$1.${SLURM_ARRAY_TASK_ID:-0}'
mkdir -p stamps
cat > job-a.sh <<JOB
#!/bin/bash
set -e
stampit() { ${stamp}; }
stampit start
alignseg export ${opts[*]} --threads 2 -o a photos/*
stampit end
JOB
cat > job-b.sh <<JOB
#!/bin/bash
set -e
stampit() { ${stamp}; }
stampit start
bash "$root/contrib/slurm/export-array.sbatch"
stampit end
JOB
echo "measuring: export through Slurm, 1 task x 2 threads" >&2
sub_a=$(now)
sbatch --wait --job-name=a --cpus-per-task=2 --output=logs/a.out job-a.sh > /dev/null || die "1-task job"
echo "measuring: export through Slurm, 2 tasks x 1 thread, and merge" >&2
sub_b=$(now)
MODEL=$work/model.pth PHOTOS=photos OUT=b EXTRA="--size $SIZE" \
    sbatch --wait --job-name=b --array=0-1 --cpus-per-task=1 --output=logs/b-%a.out job-b.sh \
    > /dev/null || die "2-task array"
t=$(now); alignseg merge -o bmerged b/0 b/1 || die "merge"; t_merge=$(since "$t")
same=no; diff -r -q a bmerged > /dev/null && same=yes
# in-job wall times and the submit-to-start latency
read -r lat_a t_a < <(awk -v s="$sub_a" 'BEGIN { getline a < "stamps/a.start.0"; getline b < "stamps/a.end.0"; printf "%.2f %.2f\n", a - s, b - a }')
read -r lat_b t_b t_b_task < <(awk -v s="$sub_b" 'BEGIN {
    for (i = 0; i < 2; i++) { getline a < ("stamps/b.start." i); getline b < ("stamps/b.end." i)
        if (i == 0 || a < lo) lo = a; if (i == 0 || b > hi) hi = b; if (b - a > w) w = b - a }
    printf "%.2f %.2f %.2f\n", lo - s, hi - lo, w }')

echo "measuring: training, 1 process x 2 threads and mpirun -np 2 x 1 thread" >&2
topts=(--images photos --random-backbone vit_small16 --crop-size 224 --local-crops 2 --batch 8
       --max-steps "$STEPS" --seed 7 --log-every 1)
rate() { sed -n 's/.* images in [0-9.]* s: \([0-9.]*\) images\/s.*/\1/p' "$1" | tail -1; }
enc() { sed -n 's/.*time in encoder \([0-9.]*\)%.*/\1/p' "$1" | tail -1; }
serial() { # decoder forward+losses, backward, AdamW, data: what every rank does in full
    sed -n 's/.*decoder forward+losses \([0-9.]*\)%, backward \([0-9.]*\)%, AdamW \([0-9.]*\)%, data \([0-9.]*\)%.*/\1 \2 \3 \4/p' "$1" |
        tail -1 | awk '{ print $1 + $2 + $3 + $4 }'
}
alignseg train "${topts[@]}" --threads 2 -o t1 2> t1.log || die "train, 1 process"
mpirun --allow-run-as-root --oversubscribe -np 2 "$bin" train "${topts[@]}" --threads 1 -o t2 \
    2> t2.log || die "mpirun -np 2 train"
r1=$(rate t1.log) r2=$(rate t2.log) e1=$(enc t1.log) s1=$(serial t1.log)
[ -n "$r1" ] && [ -n "$r2" ] && [ -n "$e1" ] && [ -n "$s1" ] || die "no images/s in the train logs"

awk -v n="$N" -v size="$SIZE" -v plain="$t_plain" -v one="$t_one" -v ta="$t_a" -v tb="$t_b" \
    -v tbt="$t_b_task" -v lata="$lat_a" -v latb="$lat_b" -v tm="$t_merge" -v same="$same" \
    -v r1="$r1" -v r2="$r2" -v e1="$e1" -v s1="$s1" -v coco="$COCO" -v steps="$STEPS" '
function hms(s) { return s >= 3600 ? sprintf("%.1f h", s / 3600) : s >= 60 ? sprintf("%.0f min", s / 60) : sprintf("%.0f s", s) }
BEGIN {
    per = (plain - one) / (n - 1)          # seconds per image, 2 threads, steady
    start = one - per                      # start-up of one process (model load)
    per1 = (tbt - start) / (n / 2)          # seconds per image of a 1-thread task, steady
    printf "### Export of %d photos at %d (random ViT-S/16)\n\n", n, size
    printf "| run | wall | images/s |\n|---|---|---|\n"
    printf "| 1 process x 2 threads, no Slurm | %.1f s | %.2f |\n", plain, n / plain
    printf "| 1 Slurm task x 2 threads (in the job) | %.1f s | %.2f |\n", ta, n / ta
    printf "| 2 Slurm tasks x 1 thread (array; first start to last end) | %.1f s | %.2f |\n", tb, n / tb
    printf "| the same + `alignseg merge` | %.1f s | %.2f |\n\n", tb + tm, n / (tb + tm)
    printf "Start-up of one process (model load; from the export of one photo): %.1f s; steady %.3f s per image with 2 threads, %.3f s per image in each of 2 one-thread tasks (%.2f images/s for the node). ", start, per, per1, 2 / per1
    printf "Slurm: %.1f s (1 task) and %.1f s (array) from sbatch to the job'"'"'s start. ", lata, latb
    printf "Sharding into 2 tasks and merging: %+.1f s against the 1-task job (each task loads the model: +%.1f s of CPU per extra task); the merge took %.2f s for %d images (%.3f s per image, I/O-bound: staged, synced once (syncfs) and renamed, core/base/atomic.h). ", tb + tm - ta, start, tm, n, tm / n
    printf "Merged 2-task export identical to the 1-task export (diff -r): %s.\n\n", same
    printf "### Training (random ViT-S/16 encoder, crops of 224, batch 8, %d steps)\n\n", steps
    printf "| run | images/s (alignseg train) |\n|---|---|\n"
    printf "| 1 process, --threads 2 | %.2f |\n| mpirun -np 2, --threads 1 | %.2f |\n\n", r1, r2
    printf "One process: encoder %.1f%% of the run, decoder step + data %.1f%%.\n\n", e1, s1
    # COCO train2017
    f = e1 / (e1 + s1)                      # the share MPI splits (encoder)
    node2 = 2 / per1                        # images/s of a 2-core node running 2 tasks x 1 thread
    merge = tm / n * coco                   # serial, on one machine
    printf "### COCO train2017 (%d images), extrapolated\n\n", coco
    printf "| nodes | export, 2-core nodes | export, 32-core nodes | train epoch, 2-core nodes | train epoch, 32-core nodes |\n|---|---|---|---|---|\n"
    for (k = 1; k <= 64; k *= 8) {
        ex2 = coco / (k * node2) + start + latb + merge
        ex32 = coco / (k * 16 * node2) + start + latb + merge
        t1 = coco / r1                        # one 2-core rank
        tr2 = t1 * (f / k + (1 - f))
        tr32 = t1 / 16 * (f / k + (1 - f))
        printf "| %d | %s | %s | %s | %s |\n", k, hms(ex2), hms(ex32), hms(tr2), hms(tr32)
    }
    printf "\nExport: %.2f images/s per 2-core node, linear in the nodes, plus one start-up, the Slurm latency and the merge (%s for COCO at the measured %.3f s per image, serial on one machine: at 64 nodes it is most of the wall time). ", node2, hms(merge), tm / n
    printf "Training: each rank encodes 1/W of a batch but every rank runs the decoder step and reads every image, so an epoch takes (%.2f / W + %.2f) of one rank'"'"'s time (Amdahl, shares of the one-process run); the speed-up is capped at %.1f. ", f, 1 - f, 1 / (1 - f)
    printf "32-core nodes: 16 workers (export) or one rank of 16 threads (training) per node, assuming linear scaling within a node.\n"
}'
