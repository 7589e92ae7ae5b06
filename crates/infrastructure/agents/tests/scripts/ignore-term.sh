#!/bin/sh
# Ignores SIGTERM (and so do the `sleep`s it starts), so only SIGKILL stops it.
trap '' TERM
echo "ignoring SIGTERM"
while :; do
    sleep 1
done
