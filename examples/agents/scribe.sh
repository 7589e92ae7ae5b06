#!/bin/sh
# A scripted stand-in for a coding agent, used by the quickstart so that it runs with no model
# and no API key. It does what a real agent would do with a very explicit prompt: it writes every
# file the prompt spells out, in a block that opens with a line "```file PATH" and closes with a
# line "```", then prints what it did (the last line is its summary).
#
# A block opened with "```file PATH first-attempt" is used instead of the plain block for PATH on
# the first attempt only: the quickstart's way to stage a mistake that the task's verification
# catches and the retry (whose briefing says what failed) fixes.
#
# The prompt comes in the file $MAOS_PROMPT_FILE; the attempt number in $MAOS_ATTEMPT. Paths
# must stay inside the working directory (the task's worktree).
set -eu
prompt=${MAOS_PROMPT_FILE:?the prompt file is missing: run me as a MAOS command agent}
attempt=${MAOS_ATTEMPT:-1}

awk -v attempt="$attempt" '
    function fail(msg) { print "scribe: " msg > "/dev/stderr"; failed = 1; exit 1 }
    /^```file / {
        path = $2; tag = $3; inside = 1; body = ""
        if (path == "" || path ~ /^\// || path ~ /(^|\/)\.\.(\/|$)/) fail("refusing the path " path)
        next
    }
    inside && /^```[ \t]*$/ {
        inside = 0
        if (tag == "first-attempt") {
            if (attempt == 1) { files[path] = body; staged[path] = 1 }
        } else if (!(path in staged)) {
            files[path] = body
        }
        if (!(path in order)) { order[path] = ++n; names[n] = path }
        next
    }
    inside { body = body $0 "\n"; next }
    END {
        if (failed) exit 1
        if (inside) fail("a ```file block is not closed")
        written = 0
        for (i = 1; i <= n; i++) {
            p = names[i]
            if (!(p in files)) continue
            dir = p; sub(/\/[^\/]*$/, "", dir)
            if (dir != p) system("mkdir -p \"" dir "\"")
            printf "%s", files[p] > p
            close(p)
            print "wrote " p
            list = list (written ? ", " : "") p
            written++
        }
        if (written == 0) fail("the prompt spells out no file (a block opening with ```file PATH)")
        print "attempt " attempt ": wrote " written " file" (written == 1 ? "" : "s") ": " list
    }
' "$prompt"
