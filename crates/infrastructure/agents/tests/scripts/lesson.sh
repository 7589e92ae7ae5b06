#!/bin/sh
# Fails the first attempt of a task and succeeds on the next. Asked for a lesson
# (MAOS_LESSON=1), it answers with one that quotes the question's account of attempt 1, or, as
# its first argument says, fails (`fail`) or never answers (`hang`). Each run leaves a line in
# runs.txt of its working directory.
echo "attempt $MAOS_ATTEMPT lesson=${MAOS_LESSON:-0}" >> "$MAOS_WORKDIR/runs.txt"
question=$(cat)
if [ "$MAOS_LESSON" = 1 ]; then
    case "$1" in
        fail)
            echo "no lesson today" >&2
            exit 3
            ;;
        hang)
            echo "lesson pid $$"
            exec sleep 30
            ;;
    esac
    seen=$(printf '%s\n' "$question" | grep -- '- attempt 1 ' | head -n 1)
    echo "Check the input before the first run. The question said: $seen"
    exit 0
fi
if [ "$MAOS_ATTEMPT" = 1 ]; then
    echo "giving up on attempt 1"
    exit 1
fi
echo "done on attempt $MAOS_ATTEMPT"
