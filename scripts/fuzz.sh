#!/usr/bin/env bash
# Runs every Fuzz* target in the module for the given time each (a
# regression run on the seed corpus and testdata/fuzz, then new inputs).
#
# A run that fails without writing a failing input (the fuzzing engine's
# "context deadline exceeded" on an overloaded machine) is run once more;
# a real finding fails at once.
set -uo pipefail
t=${1:-10s}
cd "$(dirname "$0")/.."
status=0
for pkg in $(go list ./...); do
  dir=$(go list -f '{{.Dir}}' "$pkg")
  for f in $(grep -ho '^func Fuzz[A-Za-z0-9_]*' "$dir"/*_test.go 2>/dev/null | sed 's/^func //'); do
    for try in 1 2; do
      echo "fuzz $pkg $f ($t)"
      out=$(go test -run '^$' -fuzz "^$f\$" -fuzztime "$t" "$pkg" 2>&1)
      rc=$?
      echo "$out" | tail -n 3
      if [ $rc -eq 0 ]; then break; fi
      if echo "$out" | grep -q "Failing input written" || [ $try -eq 2 ]; then
        echo "$out" | grep -v '^fuzz: elapsed' | tail -n 30
        status=1
        break
      fi
      echo "fuzz $pkg $f: engine failure without a finding, running once more"
    done
  done
done
exit $status
