#!/bin/sh
# A stand-in for a coding agent, for examples/tour.sh: it reads its prompt on stdin, "works" in
# the working directory MAOS gives it, and writes its result where MAOS asks for it.
set -eu
prompt=$(cat)
echo "coder: task $MAOS_TASK_ID, attempt $MAOS_ATTEMPT, in $MAOS_WORKDIR"
echo "coder: asked to: $prompt"
printf '# Notes\n\n%s\n' "$prompt" > NOTES.md
echo "coder: wrote NOTES.md"
echo "Reproduced the flaky test; NOTES.md says how." > "$MAOS_RESULT_FILE"
