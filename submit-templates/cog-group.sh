#!/bin/bash
# cogd group worker (--rows-per-job above 1): converts the rows of one group in sequence on an
# HTCondor execute node, each with the run's cog-worker.sh exactly as a one-row job runs it, and
# leaves each row's outcome in the directory HTCondor brings back to cogd:
#
#   GROUP/NAME.out, GROUP/NAME.err   the row's worker output (cogd files them as the row's logs)
#   GROUP/NAME.exit                  the row's exit code (the worker's contract: 0, 2 permanent, else transient)
#   GROUP/NAME/                      cog.tif, preview.jpg and the STAC facts of a row that converted
#
#   cog-group.sh GROUP      rows in GROUP.rows, one a line: INPUT_FILE NAME (files and names
#                           cogd checked: letters, digits and . _ / + - only); INPUT_FILE is - for
#                           a row whose input object cogd did not find (HTCondor transfers a
#                           job's inputs all or nothing): that row exits 3
#
# A row that fails never stops the next one; the script exits 0 once every row has its outcome.
set -uo pipefail
group="$1"
here="$PWD"
mkdir -p "$group"
while read -r input name; do
  [ -n "${name:-}" ] || continue
  work="$here/$group/$name"
  if [ "$input" = - ]; then
    echo "cogd-worker: the input object does not exist" >"$here/$group/$name.err"
    : >"$here/$group/$name.out"
    echo 3 >"$here/$group/$name.exit"
    continue
  fi
  mkdir -p "$work"
  (cd "$work" && exec bash "$here/cog-worker.sh" "$here/$input") >"$here/$group/$name.out" 2>"$here/$group/$name.err"
  code=$?
  if [ "$code" -eq 0 ]; then rm -f "$work/preview.vrt"; else rm -rf "$work"; fi
  rm -f "$here/$input"
  echo "$code" >"$here/$group/$name.exit"
done <"$here/$group.rows"
