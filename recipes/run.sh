#!/usr/bin/env bash
# Launch one of the paper's recipes with verl's stock trainer:
#
#   recipes/run.sh <model>[/megatron] <recipe> [hydra overrides...]
#   recipes/run.sh qwen2_5_7b f_grpo
#   recipes/run.sh qwen2_5_7b/megatron f_cispo trainer.nnodes=4
#   NNODES=1 GPUS_PER_NODE=8 recipes/run.sh qwen3_4b_base f_dapo algorithm.focal.gamma=1.0
#
# Environment (defaults in brackets):
#   VERL_FOCAL_DATA  directory with the parquet files written by `verl-focal data` [~/data/verl-focal]
#   TRAIN_FILES      training parquet, or a Hydra list "[a.parquet,b.parquet]" [$VERL_FOCAL_DATA/deepscaler.parquet]
#   VAL_FILES        validation parquet(s) [$VERL_FOCAL_DATA/aime25.parquet]
#   NNODES           nodes [2, the paper's 16 GPUs]
#   GPUS_PER_NODE    GPUs per node [8]
#   MODEL_PATH       a local copy of the model [the recipe's Hugging Face id]
#   CKPT_DIR         checkpoint and validation-dump directory [verl's checkpoints/<project>/<experiment>]
#   PYTHON           interpreter with verl and verl-focal installed [python3]
#   DRY_RUN=1        print the command without checking or running it
#   SKIP_CHECKS=1    launch without the checks below (e.g. data that only the cluster's nodes can see)
#
# Before it launches (seconds, no Ray): the interpreter has verl and verl_focal, the recipe composes with the
# overrides, and every local data file it reads exists; a missing one is reported with the `verl-focal data`
# command that makes it (recipes/_shared/preflight.py). Overrides given on the command line come last, so
# they win over everything above.
set -euo pipefail

recipes_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
me="$(basename "$0")"

usage() {
    echo "usage: $me <model>[/megatron] <recipe> [hydra overrides...]" >&2
    echo "recipes:" >&2
    (cd "$recipes_dir" && find . -name '*.yaml' -not -path '*/_*' -not -path './tiny/*' | sed 's|^\./||; s|\.yaml$||' |
        sort | sed 's|^|  |') >&2
    exit 2
}

[[ $# -ge 2 ]] || usage
model="${1%/}"
method="${2%.yaml}"
shift 2

case "/$model/$method" in
    */_*) echo "$me: $model/$method: names starting with _ are not recipes" \
               "(_shared/ holds the layers they compose)" >&2
          usage ;;
    */..*) echo "$me: $model/$method: not a recipe name" >&2; usage ;;
    /tiny/*) echo "$me: recipes/tiny are CPU smoke tests: run them with \`verl-focal demo\` (docs/cpu.md)" >&2; exit 2 ;;
esac
config_dir="$recipes_dir/$model"
if [[ ! -f "$config_dir/$method.yaml" ]]; then
    echo "$me: no recipe $model/$method.yaml under $recipes_dir" >&2
    usage
fi

python="${PYTHON:-python3}"
data_dir="${VERL_FOCAL_DATA:-$HOME/data/verl-focal}"
cmd=(
    "$python" -m verl.trainer.main_ppo
    "--config-path=$config_dir"
    "--config-name=$method"
    "data.train_files=${TRAIN_FILES:-$data_dir/deepscaler.parquet}"
    "data.val_files=${VAL_FILES:-$data_dir/aime25.parquet}"
    "trainer.nnodes=${NNODES:-2}"
    "trainer.n_gpus_per_node=${GPUS_PER_NODE:-8}"
)
if [[ -n "${MODEL_PATH:-}" ]]; then cmd+=("actor_rollout_ref.model.path=$MODEL_PATH"); fi
if [[ -n "${CKPT_DIR:-}" ]]; then cmd+=("trainer.default_local_dir=$CKPT_DIR"); fi
cmd+=("$@")

if [[ "${DRY_RUN:-0}" == 1 ]]; then
    printf '%q ' "${cmd[@]}"
    printf '\n'
    exit 0
fi
if [[ "${SKIP_CHECKS:-0}" != 1 ]]; then
    if ! command -v "$python" >/dev/null 2>&1; then
        echo "$me: no interpreter '$python'; point PYTHON= at the one with verl and verl-focal installed" >&2
        exit 3
    fi
    "$python" "$recipes_dir/_shared/preflight.py" "$config_dir" "$method" "${cmd[@]:5}"
fi
printf '%q ' "${cmd[@]}"
printf '\n'
exec "${cmd[@]}"
