#!/usr/bin/env bash
# Runs every Fuzz* target in the module for the given time each (a
# regression run on the seed corpus and testdata/fuzz, then new inputs),
# and ends with a table of the inputs each target ran.
#
# FUZZMINIMIZETIME (default 0: none) bounds the minimising of every input
# the engine finds interesting. With Go's default of 60s, a target whose
# inputs are large or slow spends its whole budget minimising and runs no
# new input. A failing input is written either way.
#
# A run that fails without writing a failing input (the fuzzing engine's
# "context deadline exceeded" on an overloaded machine), or that ran no
# input at all, is run again, up to three times in all (the engine's
# failure comes in about one run in ten on a loaded 2-core machine); a real
# finding fails at once, and a target that runs no input three times fails
# too.
set -uo pipefail
t=${1:-10s}
minimize=${FUZZMINIMIZETIME:-0}
cd "$(dirname "$0")/.."
status=0
summary=""
for pkg in $(go list ./...); do
  dir=$(go list -f '{{.Dir}}' "$pkg")
  for f in $(grep -ho '^func Fuzz[A-Za-z0-9_]*' "$dir"/*_test.go 2>/dev/null | sed 's/^func //'); do
    for try in 1 2 3; do
      echo "fuzz $pkg $f ($t, minimising ${minimize})"
      out=$(go test -run '^$' -fuzz "^$f\$" -fuzztime "$t" -fuzzminimizetime "$minimize" "$pkg" 2>&1)
      rc=$?
      echo "$out" | tail -n 3
      # The engine's last progress line, e.g.
      # "fuzz: elapsed: 1m5s, execs: 47124 (10351/sec), new interesting: 20 (total: 72)":
      # execs, seconds, new interesting.
      read -r execs secs new < <(echo "$out" | awk '
        /^fuzz: elapsed: .*, execs: / {
          d = $3; sub(/,$/, "", d); s = 0
          while (match(d, /^[0-9.]+[hms]/)) {
            v = substr(d, 1, RLENGTH - 1); u = substr(d, RLENGTH, 1)
            s += v * (u == "h" ? 3600 : u == "m" ? 60 : 1); d = substr(d, RLENGTH + 1)
          }
          e = $5; n = 0
          for (i = 1; i <= NF; i++) if ($i == "interesting:") n = $(i + 1)
          last = e " " s " " n
        }
        END { print (last == "" ? "0 0 0" : last) }')
      if [ $rc -eq 0 ] && [ "$execs" -gt 0 ]; then break; fi
      if echo "$out" | grep -q "Failing input written" || [ $try -eq 3 ]; then
        echo "$out" | grep -v '^fuzz: elapsed' | tail -n 30
        [ "$execs" -eq 0 ] && echo "fuzz $pkg $f: ran no input in $t"
        status=1
        break
      fi
      echo "fuzz $pkg $f: engine failure or no input run, running again"
    done
    rate=0
    if [ "${secs%.*}" -gt 0 ] 2>/dev/null; then rate=$((execs / ${secs%.*})); fi
    summary+=$(printf '%-48s %-22s %10d %8d %6d' "${pkg#github.com/vrsniff/vrsniff/}" "$f" "$execs" "$rate" "$new")$'\n'
  done
done
echo
printf '%-48s %-22s %10s %8s %6s\n' package target execs 'per s' new
printf '%s' "$summary"
exit $status
