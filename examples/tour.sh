#!/usr/bin/env bash
# A short tour of MAOS: drives the real `maos` binary through registering agents, creating an
# orchestration and tasks with a dependency, assigning work, and reading the status and the event
# log. Every command is printed (`+ maos ...`) before it runs.
#
#   examples/tour.sh                 builds maos (release) if needed, then runs the tour
#   MAOS_BIN=path/to/maos examples/tour.sh   uses that binary instead of building one
#   KEEP=1 examples/tour.sh          keeps the tour's data directory to look around afterwards
#
# The tour works in a throwaway data directory: your own MAOS data is never touched.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

# --- the binary -----------------------------------------------------------------------------

if [[ -z ${MAOS_BIN:-} ]]; then
    echo "building maos: cargo build --release -p maos-cli" >&2
    (cd "$root" && cargo build --release --quiet -p maos-cli)
    target_dir=${CARGO_TARGET_DIR:-target}
    [[ $target_dir == /* ]] || target_dir="$root/$target_dir"
    MAOS_BIN="$target_dir/release/maos"
fi
if [[ ! -x $MAOS_BIN ]]; then
    echo "tour: no maos binary at $MAOS_BIN (set MAOS_BIN to one)" >&2
    exit 1
fi

# --- a throwaway data directory -------------------------------------------------------------

data_dir=$(mktemp -d "${TMPDIR:-/tmp}/maos-tour.XXXXXX")
cleanup() {
    if [[ ${KEEP:-0} == 1 ]]; then
        echo
        echo "kept the tour's data: MAOS_DATA_DIR=$data_dir $MAOS_BIN status"
    else
        # The first command started a daemon for this data directory: stop it before the
        # directory goes.
        "$MAOS_BIN" daemon stop -q >/dev/null 2>&1 || true
        rm -rf -- "$data_dir"
    fi
}
trap cleanup EXIT
export MAOS_DATA_DIR=$data_dir

# --- helpers --------------------------------------------------------------------------------

# Prints a command the way a person would type it: `+ maos task create "Write a test" ...`.
show() {
    local line="+ maos" arg
    for arg in "$@"; do
        if [[ $arg =~ ^[A-Za-z0-9_.,:/=+@-]+$ ]]; then
            line+=" $arg"
        else
            line+=" \"${arg//\"/\\\"}\""
        fi
    done
    echo "$line"
}

# Prints a command, then runs it.
maos() {
    show "$@"
    "$MAOS_BIN" "$@"
}

# section TITLE: a heading between the steps.
section() {
    echo
    echo "### $*"
}

# created VAR maos-args...: runs a `create` command, shows its output, and stores the short id it
# reports ("created task 3kq8m2xv (ready): ...") in VAR. Any unique prefix of an id works later.
created() {
    local var=$1 out id
    shift
    show "$@"
    out=$("$MAOS_BIN" "$@")
    echo "$out"
    id=$(awk '$1 == "created" { print $3; exit }' <<<"$out")
    if [[ ! $id =~ ^[0-9a-z]+$ ]]; then
        echo "tour: could not read an id from: $out" >&2
        exit 1
    fi
    printf -v "$var" '%s' "$id"
}

# refused CODE maos-args...: runs a command that MAOS must refuse with exit code CODE, shows its
# error, and carries on. Anything else stops the tour.
refused() {
    local want=$1 code=0
    shift
    show "$@"
    "$MAOS_BIN" "$@" 2>&1 || code=$?
    if [[ $code != "$want" ]]; then
        echo "tour: expected exit code $want, got $code" >&2
        exit 1
    fi
    echo "(exit code $code: refused, and nothing was changed; see docs/exit-codes.md)"
}

# --- the tour -------------------------------------------------------------------------------

echo "MAOS tour, using $MAOS_BIN"
echo "data directory: $MAOS_DATA_DIR (thrown away at the end; KEEP=1 keeps it)"

section "Register three agents with different capabilities"
maos agent register claude-1 --adapter claude-code --capability rust,test
maos agent register reviewer --adapter claude-code --capability review --tier strategic
maos agent register linter --adapter command --command "cargo clippy" --capability lint --slots 2
maos agent list

section "Describe the work: an orchestration and two tasks, the second waiting on the first"
created orch orchestrate create "Fix the login bug" --goal "Login never fails for valid users"
created a task create "Reproduce the flaky login test" --capability rust,test \
    --priority high --orchestration "$orch" --prompt "It fails one run in ten; find out why."
created b task create "Review the fix" --capability review --risk medium \
    --orchestration "$orch" --depends-on "$a" --prompt "Review the change for the login fix."

section "The first task is ready; the second is pending until the first completes"
maos task list --orchestration "$orch"

section "Assign the ready task: the scheduler picks the least loaded capable agent"
maos task assign "$a"

section "Assign the pending task to a named agent: refused, its dependency is not done"
refused 4 task assign "$b" --agent reviewer

section "Where things stand"
maos status
maos task list
maos task show "$a"

section "The event log: every change, numbered without gaps"
maos events

section "The same status as JSON, for scripts"
maos status --json
