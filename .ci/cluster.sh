#!/bin/bash
# CI: the packages of the many-machines test (tests/cluster, issue 14): a
# single-node Slurm cluster with munge, and Open MPI, whose presence makes the
# build's `mpi` option (auto) compile MPI training in. Runs before the build.
set -u
export DEBIAN_FRONTEND=noninteractive
apt-get install -y -qq --no-install-recommends slurm-wlm munge openmpi-bin libopenmpi-dev \
    >/dev/null || { echo "cluster: cannot install slurm-wlm munge openmpi-bin libopenmpi-dev"; exit 1; }
