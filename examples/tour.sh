#!/usr/bin/env bash
# A short tour of MAOS: drives the real `maos` binary through registering agents from a file,
# creating an orchestration and tasks with a dependency, watching the daemon run the agents,
# reading their logs, a budget, the status and the event log. Every command is printed
# (`+ maos ...`) before it runs.
#
#   examples/tour.sh                 builds maos (release) if needed, then runs the tour
#   MAOS_BIN=path/to/maos examples/tour.sh   uses that binary instead of building one
#   KEEP=1 examples/tour.sh          keeps the tour's data directory to look around afterwards
#
# The tour works in a throwaway data directory: your own MAOS data is never touched.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

# --- the binary -----------------------------------------------------------------------------

example=tour
# shellcheck source=maos-bin.sh
source "$root/examples/maos-bin.sh"

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
# The tour's tasks work in no repository: stand outside any (`maos task create` would otherwise
# work in the repository of the current directory, this checkout).
cd "$data_dir"

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

# wait_for ID STATE: waits (at most 30 s) until task ID is in STATE.
wait_for() {
    local id=$1 want=$2 i
    for ((i = 0; i < 300; i++)); do
        if "$MAOS_BIN" task show "$id" --json | grep -q "^    \"state\": \"$want\""; then
            return
        fi
        sleep 0.1
    done
    echo "tour: task $id never became $want:" >&2
    "$MAOS_BIN" task show "$id" >&2
    exit 1
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

section "Register agents from a file: two command agents (scripts in examples/agents) and a simulated one"
agents_file="$data_dir/agents.toml"
cat >"$agents_file" <<TOML
[[agent]]
name = "coder"
adapter = "command"
command = "$root/examples/agents/coder.sh"
capabilities = ["rust", "test"]
slots = 2
timeout = "1m"

[[agent]]
name = "reviewer"
adapter = "command"
command = "$root/examples/agents/reviewer.sh"
prompt_via = "file"
capabilities = ["review"]
tier = "strategic"

[[agent]]
name = "load"
adapter = "sim"
capabilities = ["load"]
delay = "50ms"
price = { input = "3.00", output = "15.00" }
TOML
maos agent register --from-file "$agents_file"
maos agent list

section "Describe the work: an orchestration and two tasks, the second waiting on the first; then start it"
created orch orchestrate create "Fix the login bug" --goal "Login never fails for valid users"
created a task create "Reproduce the flaky login test" --capability rust,test \
    --priority high --orchestration "$orch" --prompt "It fails one run in ten; find out why."
created b task create "Review the fix" --capability review --risk medium \
    --orchestration "$orch" --depends-on "$a" --prompt "Review the change for the login fix."
maos orchestrate start "$orch"

section "The daemon assigns each task as soon as it is ready (the second once the first completed) and runs it"
wait_for "$a" completed
wait_for "$b" awaiting_approval
maos task list --orchestration "$orch"

section "What the coder did: its attempt, and its output as captured"
maos task show "$a"
maos task logs "$a"

section "The review is medium risk: it waits for a person (approvals arrive with worktrees)"
refused 4 task assign "$b" --agent reviewer

section "A budget: the attempt that would overrun it is stopped, and the task waits for a person"
created c task create "Burn tokens" --capability load --budget-usd 0.001
wait_for "$c" blocked
maos task show "$c"

section "Where things stand: states, agents, tokens and cost"
maos status

section "The event log: every change, numbered without gaps"
maos events

section "The same status as JSON, for scripts"
maos status --json
