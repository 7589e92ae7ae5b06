#!/bin/sh
# Reads the prompt from $MAOS_PROMPT_FILE and echoes it; with the argument `result` it also
# writes a result to $MAOS_RESULT_FILE, which is then the attempt's summary.
echo "noise before the prompt"
printf 'prompt: %s\n' "$(cat "$MAOS_PROMPT_FILE")"
if [ "${1:-}" = result ]; then
    printf 'the result of attempt %s of task %s\n' "$MAOS_ATTEMPT" "$MAOS_TASK_ID" >"$MAOS_RESULT_FILE"
fi
echo "the last line of the output"
