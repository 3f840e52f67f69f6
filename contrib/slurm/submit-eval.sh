#!/bin/bash
# submit-eval.sh TASKS [SBATCH OPTION...]: the eval array (eval-array.sbatch)
# and the merge that waits for all of it (--dependency=afterok); the merge
# prints the report into logs/eval-merge-JOBID.out and writes it as JSON to
# $EVAL_RESULT (default eval.json). Settings: see eval-array.sbatch.
set -eu
tasks=${1:-8}
shift || true
mkdir -p logs
jid=$(sbatch --parsable --array=0-$((tasks - 1)) "$@" "$(dirname "$0")/eval-array.sbatch")
mid=$(sbatch --parsable --dependency=afterok:"$jid" --job-name=alignseg-eval-merge \
    --cpus-per-task=1 --output=logs/eval-merge-%j.out \
    --wrap "exec alignseg merge -o '${EVAL_RESULT:-eval.json}' '${OUT:-evalshards}'/*")
echo "eval array $jid, merge job $mid (it runs when every task has succeeded)"
