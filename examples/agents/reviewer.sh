#!/bin/sh
# A stand-in for a reviewing agent, for examples/tour.sh: it reads its prompt from the file MAOS
# wrote ($MAOS_PROMPT_FILE) and approves of everything (a real reviewer would not).
set -eu
echo "reviewer: reading $(wc -c < "$MAOS_PROMPT_FILE") bytes of prompt"
echo "reviewer: looks good to me"
echo "LGTM" > "$MAOS_RESULT_FILE"
