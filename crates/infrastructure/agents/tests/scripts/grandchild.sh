#!/bin/sh
# Leaves a grandchild behind: `sleep 60` in the background, which keeps the agent's stdout and
# stderr open, prints its pid and exits 0 at once (or, with the argument `wait`, waits for it).
# The grandchild must die with the attempt's process group.
sleep 60 &
echo "grandchild $!"
if [ "${1:-}" = wait ]; then
    wait
fi
exit 0
