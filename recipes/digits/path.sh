# Environment for the recipe: the project's virtualenv (made by tools/install.sh), if any.
repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
if [ -z "${VIRTUAL_ENV:-}" ] && [ -f "$repo_root/.venv/bin/activate" ]; then
  # shellcheck disable=SC1091
  . "$repo_root/.venv/bin/activate"
fi
command -v speech >/dev/null || { echo "speech is not installed: run $repo_root/tools/install.sh" >&2; exit 1; }
export PYTHONUNBUFFERED=1 LC_ALL=C
# The Slurm config of --cmd slurm jobs (speech/jobs/slurm.py): the repository's conf/slurm.conf.
export SPEECH_SLURM_CONF="${SPEECH_SLURM_CONF:-$repo_root/conf/slurm.conf}"
