#!/bin/bash
# test_cluster.sh ALIGNSEG CKPT_DIFF IMAGES_DIR: data-parallel training on a
# real single-node Slurm cluster with Open MPI (issue 14). Checks that
# `mpirun -np 2 alignseg train` gives the weights of one process within 1e-5,
# that --resume works under MPI, and that the same run as an `sbatch --wait`
# job does too. Skips (77) without root or without the Debian packages
# slurm-wlm munge openmpi-bin libopenmpi-dev. The cluster it starts is always
# stopped (trap), also on failure.
set -u
bin=$1 diff=$2 images=$3
here=$(cd "$(dirname "$0")" && pwd)
if [ "$(id -u)" != 0 ]; then
    echo "skip: needs root to start munged/slurmctld/slurmd"; exit 77
fi
for p in munged slurmctld slurmd sbatch mpirun; do
    if ! command -v $p >/dev/null; then
        echo "skip: $p missing (Debian packages slurm-wlm munge openmpi-bin libopenmpi-dev)"
        exit 77
    fi
done
if ! ldd "$bin" | grep -q libmpi; then
    echo "skip: alignseg built without MPI (-Dmpi, libopenmpi-dev)"; exit 77
fi
if ldd "$bin" | grep -q libasan; then # Open MPI's own allocations trip LeakSanitizer
    echo "skip: sanitizer build (the cluster test runs in the normal build)"; exit 77
fi
work=$(mktemp -d /tmp/alignseg-cluster.XXXXXX)
cleanup() { "$here/slurm-down.sh" "$work/slurm"; rm -rf "$work"; }
trap cleanup EXIT
fail() { echo "FAIL: $*"; exit 1; }

mkdir -p "$work/img"
n=0
for f in "$images"/exif_ii_[1-6].jpg; do cp "$f" "$work/img/"; n=$((n + 1)); done
[ $n -eq 6 ] || fail "test images missing in $images"
# 6 images, batch 2: 3 steps; the 2 ranks each encode one image's crops
opts=(--images "$work/img" --random-backbone vit_small16 --crop-size 32 --local-crops 2
      --batch 2 --epochs 1 --queries 3 --hidden 64 --seed 11 --threads 1 --log-every 1)
mpi=(mpirun --allow-run-as-root --oversubscribe)

"$bin" train "${opts[@]}" -o "$work/one" 2> "$work/one.log" || { cat "$work/one.log"; fail "one process"; }
"${mpi[@]}" -np 2 "$bin" train "${opts[@]}" -o "$work/two" 2> "$work/two.log" ||
    { cat "$work/two.log"; fail "mpirun -np 2"; }
grep -q "train: 2 ranks" "$work/two.log" || { cat "$work/two.log"; fail "no '2 ranks' line"; }
[ "$(grep -c 'saved' "$work/two.log")" = 1 ] || fail "not rank 0 alone saved"
"$diff" "$work/one/epoch1.pth" "$work/two/epoch1.pth" 1e-5 || fail "-np 2 differs from -np 1"

# --resume under MPI: stopped after 1 step, resumed, equals the straight run
"${mpi[@]}" -np 2 "$bin" train "${opts[@]}" --max-steps 1 -o "$work/res" 2> "$work/res.log" ||
    { cat "$work/res.log"; fail "mpirun --max-steps 1"; }
"${mpi[@]}" -np 2 "$bin" train "${opts[@]}" --resume "$work/res/interrupted.pth" -o "$work/res" \
    2>> "$work/res.log" || { cat "$work/res.log"; fail "mpirun --resume"; }
"$diff" "$work/one/epoch1.pth" "$work/res/epoch1.pth" 1e-5 || fail "resumed under MPI differs"

# a rank killed mid-run (SIGKILL after the first step) ends the job with a
# message naming it, not a hang
"${mpi[@]}" -np 2 sh -c 'echo $$ > "$0.pid.$OMPI_COMM_WORLD_RANK"; exec "$@"' "$work/dead" \
    "$bin" train "${opts[@]}" --epochs 20 -o "$work/dead" > "$work/dead.log" 2>&1 &
job=$!
for _ in $(seq 1 600); do
    grep -q "step 1/" "$work/dead.log" 2>/dev/null && break
    kill -0 $job 2>/dev/null || break
    sleep 0.5
done
grep -q "step 1/" "$work/dead.log" || { cat "$work/dead.log"; fail "the run to kill did not start"; }
kill -9 "$(cat "$work/dead.pid.1")"
for _ in $(seq 1 240); do kill -0 $job 2>/dev/null || break; sleep 0.5; done
if kill -0 $job 2>/dev/null; then
    kill $job; fail "a killed rank hung the job"
fi
wait $job && fail "a killed rank did not fail the job"
grep -q "rank 1.*signal 9" "$work/dead.log" || { cat "$work/dead.log"; fail "no message naming the dead rank"; }

# the same through Slurm: an sbatch --wait job running mpirun on 2 tasks
conf=$("$here/slurm-up.sh" "$work/slurm") || fail "slurm-up.sh"
export SLURM_CONF=$conf
cat > "$work/job.sh" <<JOB
#!/bin/bash
#SBATCH --ntasks=2 --cpus-per-task=1 --output=$work/job.out
exec mpirun --allow-run-as-root -np 2 "$bin" train ${opts[*]} -o "$work/slurm-run"
JOB
timeout 600 sbatch --wait "$work/job.sh" > /dev/null || { cat "$work/job.out"; fail "sbatch job"; }
grep -q "train: 2 ranks" "$work/job.out" || { cat "$work/job.out"; fail "no '2 ranks' in the job"; }
"$diff" "$work/one/epoch1.pth" "$work/slurm-run/epoch1.pth" 1e-5 || fail "Slurm MPI run differs"
echo "ok: mpirun -np 2 = one process, --resume under MPI, a killed rank ends the job, an sbatch MPI job"
