#!/bin/sh
# Fails the first attempt of a task; later attempts run until they are stopped.
if [ "$MAOS_ATTEMPT" = 1 ]; then
    echo "giving up on attempt 1"
    exit 1
fi
echo "attempt $MAOS_ATTEMPT runs"
exec sleep 30
