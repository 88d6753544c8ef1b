#!/usr/bin/env bash
# Measures `vrsniff decap` against its peers on one generated capture, in one
# run: cp (the I/O limit), editcap -C (a pure byte chop, no parsing) and
# tshark with the Juniper dissector (extracting the VN fields).
#
#   bench/decap.sh [PACKETS] [RUNS]     defaults: 1000000 packets, best of 5
#
# Needs: go, editcap and tshark (Debian: tshark). The capture and every
# output live in $BENCH_DIR (default: a directory in /dev/shm), so that the
# figures measure the programs rather than the disk's write-back; each
# output is removed before each run.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-1000000}
RUNS=${2:-5}
out=${BENCH_DIR:-/dev/shm/vrsniff-bench}
mkdir -p "$out"
go build -o "$out/vrsniff" ./cmd/vrsniff
raw="$out/raw.pcap"
if [ ! -f "$raw.$N" ]; then
  "$out/vrsniff" gen --profile bench --count "$N" --seed 1 "$raw" 2>/dev/null
  touch "$raw.$N"
fi
size=$(stat -c %s "$raw")
packets=$(capinfos -M -c "$raw" | awk -F: '/Number of packets/ {gsub(/ /,"",$2); print $2}')
echo "input: $raw, $packets packets, $size bytes"

best() { # best wall time in seconds of RUNS runs of the command; $out/o.* are its outputs
  local b=""
  for _ in $(seq "$RUNS"); do
    local s e
    rm -f "$out"/o.*
    s=$(date +%s.%N)
    "$@" >/dev/null 2>&1
    e=$(date +%s.%N)
    b=$(echo "$s $e ${b:-1e9}" | awk '{t=$2-$1; print (t<$3)?t:$3}')
  done
  echo "$b"
}

cat "$raw" >/dev/null # warm the page cache for every contestant
t_cp=$(best cp "$raw" "$out/o.copy")
t_editcap=$(best editcap -F pcap -C 114 "$raw" "$out/o.editcap")
t_pcap=$(best "$out/vrsniff" decap --quiet --format pcap "$raw" "$out/o.pcap")
t_pcapng=$(best "$out/vrsniff" decap --quiet "$raw" "$out/o.pcapng")
RUNS=1
t_tshark=$(best tshark -n -r "$raw" -d udp.port==8099,juniper -T fields -e juniper.vn.src -e juniper.vn.dst)
rm -f "$out"/o.*

# Allocation figures come from the Go benchmarks of the per-packet path.
allocs=$(go test -run '^$' -bench 'BenchmarkDecodeACL$' -benchmem ./internal/mirror | awk '/BenchmarkDecodeACL/ {print $(NF-1)}')

printf '\n%-34s %9s %12s\n' "command" "seconds" "packets/s"
for row in "cp:$t_cp" "editcap -C 114:$t_editcap" "vrsniff decap --format pcap:$t_pcap" "vrsniff decap (pcapng+comments):$t_pcapng" "tshark -d udp.port==8099,juniper:$t_tshark"; do
  name=${row%%:*}; t=${row##*:}
  printf '%-34s %9.3f %12.0f\n' "$name" "$t" "$(echo "$packets $t" | awk '{print $1/$2}')"
done
echo
awk -v cp="$t_cp" -v ed="$t_editcap" -v p="$t_pcap" -v ng="$t_pcapng" -v ts="$t_tshark" 'BEGIN {
  printf "decap pcap   vs editcap -C: %.2fx faster   (target >= 1.5x)\n", ed/p
  printf "decap pcap   vs cp:         %.2fx cp time  (target <= 1.5x)\n", p/cp
  printf "decap pcapng vs editcap -C: %.2fx faster   (target >= 1.0x)\n", ed/ng
  printf "decap pcapng vs tshark:     %.0fx faster   (target >= 50x)\n", ts/ng
}'
echo "allocations per decoded packet (BenchmarkDecodeACL): $allocs"
