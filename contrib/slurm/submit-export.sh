#!/bin/bash
# submit-export.sh TASKS [SBATCH OPTION...]: the export array
# (export-array.sbatch) and the merge that waits for all of it (merge.sbatch,
# --dependency=afterok). Settings: see both scripts.
set -eu
tasks=${1:-8}
shift || true
here=$(dirname "$0")
mkdir -p logs
jid=$(sbatch --parsable --array=0-$((tasks - 1)) "$@" "$here/export-array.sbatch")
mid=$(sbatch --parsable --dependency=afterok:"$jid" "$here/merge.sbatch")
echo "export array $jid, merge job $mid (it runs when every task has succeeded)"
