#!/bin/sh
# Claude Code for the lesson tests, through the claude test double: attempt 1 crashes, attempt 2
# replays transcripts/claude/lesson-work.transcript, and the lesson step (MAOS_LESSON=1), which
# must resume attempt 2's session, replays transcripts/claude/lesson-answer.transcript.
here=$(cd "$(dirname "$0")/.." && pwd)
if [ "${MAOS_LESSON:-0}" = 1 ]; then
    MAOS_TEST_TRANSCRIPT=$here/transcripts/claude/lesson-answer.transcript
    MAOS_TEST_EXPECT_ARGS="--resume=3d9e8f7a-2b1c-4d5e-8f9a-0b1c2d3e4f5a --permission-prompt-tool"
    MAOS_TEST_EXPECT_PROMPT="one paragraph"
elif [ "$MAOS_ATTEMPT" = 1 ]; then
    echo "attempt 1 crashed" >&2
    exit 1
else
    MAOS_TEST_TRANSCRIPT=$here/transcripts/claude/lesson-work.transcript
    MAOS_TEST_EXPECT_ARGS=
    MAOS_TEST_EXPECT_PROMPT=
fi
export MAOS_TEST_TRANSCRIPT MAOS_TEST_EXPECT_ARGS MAOS_TEST_EXPECT_PROMPT
exec "$here/doubles/claude" "$@"
