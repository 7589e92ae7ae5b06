#!/bin/sh
# Codex for the lesson tests, through the codex test double: attempt 1 fails, attempt 2 replays
# transcripts/codex/success.jsonl, and the lesson step (MAOS_LESSON=1), which must resume
# attempt 2's thread, replays transcripts/codex/lesson.jsonl (whose turn reports the thread's
# running total, as Codex does).
here=$(cd "$(dirname "$0")/.." && pwd)
if [ "${MAOS_LESSON:-0}" = 1 ]; then
    MAOS_TEST_TRANSCRIPT=$here/transcripts/codex/lesson.jsonl
    MAOS_TEST_EXPECT_RESUME=0199a213-81c0-7800-8aa1-bbab2a035a53
    MAOS_TEST_EXPECT_PROMPT="one paragraph"
elif [ "$MAOS_ATTEMPT" = 1 ]; then
    echo "attempt 1 crashed" >&2
    exit 1
else
    MAOS_TEST_TRANSCRIPT=$here/transcripts/codex/success.jsonl
    MAOS_TEST_EXPECT_RESUME=
    MAOS_TEST_EXPECT_PROMPT=
fi
export MAOS_TEST_TRANSCRIPT MAOS_TEST_EXPECT_RESUME MAOS_TEST_EXPECT_PROMPT
exec "$here/doubles/codex" "$@"
