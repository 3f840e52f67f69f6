#!/bin/bash
# submit-eval.sh TASKS: the eval array and the merge that waits for all of it.
set -eu
tasks=${1:-8}
mkdir -p logs
jid=$(sbatch --parsable --array=0-$((tasks - 1)) "$(dirname "$0")/eval-array.sbatch")
sbatch --dependency=afterok:"$jid" --job-name=alignseg-eval-merge --output=logs/eval-merge-%j.out \
    --wrap "alignseg merge -o ${EVAL_RESULT:-eval} ${OUT:-evalshards}/*"
echo "eval array $jid; the merge runs when every task has succeeded"
