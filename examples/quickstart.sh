#!/usr/bin/env bash
# The MAOS quickstart, the main job end to end with no model and no API key: a throwaway git
# repository, the scripted agents of examples/agents.toml, and the plan examples/quickstart.toml
# run with `maos orchestrate run --watch`: two tasks in parallel in their own worktrees, one that
# waits for both and fails its verification once before its retry passes, a task that is
# approved automatically, and everything merged into the orchestration's integration branch.
#
#   examples/quickstart.sh                        builds maos (release) if needed, then runs it
#   MAOS_BIN=path/to/maos examples/quickstart.sh  uses that binary instead of building one
#   KEEP=1 examples/quickstart.sh                 keeps the data directory and the repository
#
# Your own MAOS data is never touched: the quickstart has a data directory of its own.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

example=quickstart
# shellcheck source=maos-bin.sh
source "$root/examples/maos-bin.sh"

work=$(mktemp -d "${TMPDIR:-/tmp}/maos-quickstart.XXXXXX")
cleanup() {
    "$MAOS_BIN" daemon stop -q >/dev/null 2>&1 || true
    if [[ ${KEEP:-0} == 1 ]]; then
        echo
        echo "kept: MAOS_DATA_DIR=$work/data $MAOS_BIN orchestrate list; the repository is $work/repo"
    else
        rm -rf -- "$work"
    fi
}
trap cleanup EXIT
export MAOS_DATA_DIR=$work/data

show() { echo "+ $*"; }

# A throwaway repository with one commit on main.
repo=$work/repo
git init -q -b main "$repo"
git -C "$repo" config user.name "Quickstart"
git -C "$repo" config user.email "quickstart@example.invalid"
printf '# hello\n\nA tiny shell project.\n' >"$repo/README.md"
git -C "$repo" add README.md
git -C "$repo" commit -q -m "Start the project"

show maos agent register --from-file examples/agents.toml
"$MAOS_BIN" agent register --from-file "$root/examples/agents.toml"
echo
show maos orchestrate run examples/quickstart.toml --repo "$repo" --yes --watch
code=0
"$MAOS_BIN" orchestrate run "$root/examples/quickstart.toml" --repo "$repo" --yes --watch || code=$?

branch=$(git -C "$repo" branch --list 'maos/orch-*' --format '%(refname:short)' | head -n 1)
if [[ -n $branch ]]; then
    echo
    show git log --oneline --graph "$branch"
    git -C "$repo" log --oneline --graph "$branch"
    echo
    show git ls-tree -r --name-only "$branch"
    git -C "$repo" ls-tree -r --name-only "$branch"
    echo
    echo "main is untouched; \`maos orchestrate merge <id>\` would merge $branch into it."
fi
exit "$code"
