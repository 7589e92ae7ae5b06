#!/bin/sh
# Fails every attempt with status 3; the last line of output says which attempt gave up.
echo "working on attempt $MAOS_ATTEMPT of task $MAOS_TASK_ID"
echo "giving up on attempt $MAOS_ATTEMPT"
exit 3
