#!/bin/bash
# submit-export.sh TASKS: the export array and the merge that waits for all of it.
set -eu
tasks=${1:-8}
here=$(dirname "$0")
mkdir -p logs
jid=$(sbatch --parsable --array=0-$((tasks - 1)) "$here/export-array.sbatch")
sbatch --dependency=afterok:"$jid" "$here/merge.sbatch"
echo "export array $jid; the merge runs when every task has succeeded"
