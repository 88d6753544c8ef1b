#!/usr/bin/env bash
# Measures `vrsniff query` over stored captures in an S3 bucket: a query for
# one host through the flow indexes against the same query reading every
# file whole (--no-index), on the same bucket in the same run, and what the
# upload of the captures took.
#
#   bench/query.sh [PACKETS] [RUNS]     defaults: 1500000 packets (~1 GiB of pcapng), best of 3
#
# Needs: go, tshark, curl, and an S3 engine: $S3 (default
# http://127.0.0.1:17480, the one scripts/ceph-rgw.sh starts; keys $S3_KEY
# and $S3_SECRET, vrsniff/vrsniffsecret by default). It makes a bucket of
# its own and empties and removes it at the end (KEEP=1 keeps it for
# another run; BUCKET=... to choose it). The
# traffic is `vrsniff gen --profile bench --flows $FLOWS` (50000 by
# default): TCP and UDP frames of flows whose sizes follow a Zipf law among
# random frames of other kinds; the queries are a busy host, a quiet one
# and one flow. FLOWS=0 makes every frame its own flow, the index's worst
# case.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-1500000}
RUNS=${2:-3}
S3=${S3:-http://127.0.0.1:17480}
export AWS_ACCESS_KEY_ID=${S3_KEY:-vrsniff} AWS_SECRET_ACCESS_KEY=${S3_SECRET:-vrsniffsecret}
BUCKET=${BUCKET:-vrsniff-bench-$N}
out=${BENCH_DIR:-/dev/shm/vrsniff-bench-query}
mkdir -p "$out"
go build -o "$out/vrsniff" ./cmd/vrsniff
v="$out/vrsniff"
raw="$out/raw-$N.pcap"
[ -f "$raw" ] || "$v" gen --profile bench --flows "${FLOWS:-50000}" --count "$N" --seed 5 "$raw" 2>/dev/null
store="s3://$BUCKET/q"

# The bucket: made once, filled once.
empty=e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855
code=$(curl -s -o /dev/null -w '%{http_code}' --aws-sigv4 "aws:amz:us-east-1:s3" \
  --user "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY" -H "x-amz-content-sha256: $empty" -X PUT "$S3/$BUCKET")
if [ "$code" = 200 ]; then
  rm -rf "$out/spool"
  s=$(date +%s.%N)
  "$v" capture -r "$raw" --workers 1 --dir "$out/spool" --rotate-size 64M --store "$store" --s3-endpoint "$S3" \
    --sniffer-id bench --stats-every 0 --log-level warn
  e=$(date +%s.%N)
  echo "capture and upload of $raw: $(echo "$s $e" | awk '{printf "%.1f", $2-$1}') s"
fi
"$v" store ls --store "$store" --s3-endpoint "$S3" | tail -3

# The hosts and the flow queried: the 20th and the 1000th busiest inner
# source host, and the 100th busiest flow (Community ID, tshark's).
"$v" decap --mirror-vlan 999 "$raw" "$out/all.pcapng" 2>/dev/null || true
hosts=$(tshark -n -r "$out/all.pcapng" -T fields -e ip.src 2>/dev/null | grep . | sort | uniq -c | sort -rn | awk 'NR==20 || NR==1000 {print $2}')
flow=$(tshark -n -r "$out/all.pcapng" --enable-protocol communityid -T fields -e communityid 2>/dev/null | grep . | sort | uniq -c | sort -rn | awk 'NR==100 {print $2}')
since=$(date -u -d "$(capinfos -a "$raw" | awk -F'time: *' '/First/ {print $2}')" +%Y-%m-%dT%H:%M:%SZ)
until=$(date -u -d "$(capinfos -e "$raw" | awk -F'time: *' '/Last/ {print $2}') 1 second" +%Y-%m-%dT%H:%M:%SZ)

best() { # best wall time of RUNS runs; the last run's summary line in $out/summary
  local b=""
  for _ in $(seq "$RUNS"); do
    local s e
    s=$(date +%s.%N)
    "$@" -w "$out/q.pcapng" 2>"$out/summary"
    e=$(date +%s.%N)
    b=$(echo "$s $e ${b:-1e9}" | awk '{t=$2-$1; print (t<$3)?t:$3}')
  done
  echo "$b"
}
q=("$v" query --store "$store" --s3-endpoint "$S3" --since "$since" --until "$until")
run() { # label, then the query's own arguments
  local label=$1; shift
  local t1 s1 t2 s2
  t1=$(best "${q[@]}" "$@"); s1=$(tail -1 "$out/summary")
  t2=$(best "${q[@]}" --no-index "$@"); s2=$(tail -1 "$out/summary")
  echo "$label"
  echo "  with the flow indexes:    ${t1} s; $s1"
  echo "  reading every file whole: ${t2} s; $s2"
}
for h in $hosts; do run "host $h" "host $h"; done
run "flow $flow" --community-id "$flow"

if [ -z "${KEEP:-}" ]; then # the engine's memory is not the bench's: give it back
  "$v" store prune --store "$store" --s3-endpoint "$S3" --older-than 1s >/dev/null
  curl -s -o /dev/null --aws-sigv4 "aws:amz:us-east-1:s3" --user "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY" \
    -H "x-amz-content-sha256: $empty" -X DELETE "$S3/$BUCKET"
fi
