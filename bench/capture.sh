#!/bin/bash
# Capture benchmark: sends mirror traffic (Juniper-header datagrams carrying
# 64-byte inner frames, of many flows) over a veth pair at increasing rates
# and reports, for each rate, what `tcpdump -w` and `vrsniff capture -i IF
# --dir D --workers N`, for each N of WORKERS, captured and what the kernel
# dropped for them; then, for each capturer, the highest rate it took
# without losing a frame. At each rate the same traffic is sent once per
# capturer, so that none competes with another for the CPU; each socket
# gets the same buffer (RING_MB), so N workers have N of them.
#
# Run as root. It only uses a private network namespace and veth pair,
# removed on exit, and writes the captures under WORK (default: a fresh
# directory in /dev/shm, so that the disk is not what is measured).
#
#   PACKETS   frames per pass (default 2000000)
#   RATES     offered rates in frames/s; "max" sends as fast as it can
#   WORKERS   vrsniff worker counts to measure (default "1 2 4"); more
#             workers than CPUs measure nothing but contention
#   SENDERS   sending threads (default 2)
#   RING_MB   capture buffer of each socket in MiB (default 64)
#   VRSNIFF   a vrsniff binary to measure instead of this tree's (for a
#             before/after comparison on the same traffic)
set -euo pipefail

PACKETS=${PACKETS:-2000000}
RATES=${RATES:-"100000 300000 600000 1000000 1200000 max"}
WORKERS=${WORKERS:-"1 2 4"}
SENDERS=${SENDERS:-2}
RING_MB=${RING_MB:-64}
cd "$(dirname "$0")/.."

for c in tcpdump ethtool; do
	command -v $c >/dev/null || { echo "capture.sh: $c is needed" >&2; exit 1; }
done

work=$(mktemp -d "${WORK:-/dev/shm}/vrsniff-bench.XXXXXX")
id=$(head -c4 /dev/urandom | od -An -tx1 | tr -d ' \n')
ns=vrsniff-bench-$id cap=vbc$id snd=vbs$id
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	ip link delete "$cap" 2>/dev/null || true
	ip netns delete "$ns" 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT

go build -o "$work/vrsniff" ./cmd/vrsniff
capturer=${VRSNIFF:-$work/vrsniff}
go build -o "$work/sendmirror" ./bench/sendmirror
# Distinct ACL-mirrored 64-byte frames of one VN, sent in a loop: those of
# 65536 cases that tcpdump's filter below keeps (the generator also writes
# outer VLAN tags and IPv6 extension headers, which vrsniff's kernel filter
# keeps and 'udp dst port 8099' does not), so both capturers are offered
# the same frames.
"$work/vrsniff" gen -profile acl -frame-sizes 64 -vn default-domain:admin:vn-left -linktype ether \
	-count 65536 -seed 1 "$work/all.pcap" 2>/dev/null
tcpdump -r "$work/all.pcap" -w "$work/mirror.pcap" 'udp dst port 8099' 2>/dev/null

ip netns add "$ns"
ip link add "$cap" type veth peer name "$snd" netns "$ns"
sysctl -qw "net.ipv6.conf.$cap.disable_ipv6=1"
ip netns exec "$ns" sysctl -qw "net.ipv6.conf.$snd.disable_ipv6=1"
# By default a veth delivers each frame on the sending CPU, inside the
# sender's system call, which caps what one sender offers at about 600k
# frames/s here. With GRO on, the capture end receives through NAPI, and
# threaded NAPI moves that work to a kernel thread that the scheduler can
# put on the other CPU: the sender then offers over 1M frames/s. The
# capturers' sockets see the same frames either way.
# (Both ends must be up for the NAPI context to exist.)
ip link set "$cap" up
ip -n "$ns" link set "$snd" up
ethtool -K "$cap" gro on
echo 1 >"/sys/class/net/$cap/threaded"

# waitfor FILE TEXT: wait until a capturer says it is reading.
waitfor() {
	for _ in $(seq 100); do
		grep -q "$2" "$1" 2>/dev/null && return 0
		sleep 0.1
	done
	echo "capture.sh: timed out waiting for '$2' in $1" >&2
	cat "$1" >&2
	exit 1
}

# sendat RATE: sends PACKETS frames and prints the rate really offered.
sendat() {
	local pps=$1
	[ "$pps" = max ] && pps=0
	ip netns exec "$ns" "$work/sendmirror" -i "$snd" -r "$work/mirror.pcap" -n "$PACKETS" \
		-pps "$pps" -workers "$SENDERS" | awk '{print $(NF-1)}'
}

# field NAME LINE: the value of NAME=... in a log line.
field() { tr ' ' '\n' <<<"$2" | sed -n "s/^$1=//p"; }

# best[CAPTURER] is the highest rate offered that CAPTURER took whole.
declare -A best
# row RATE CAPTURER OFFERED CAPTURED DROPPED [WRITTEN]: print a row and note
# whether nothing was lost.
row() {
	printf '%-8s | %-12s | %9.0f %9s %9s %9s\n' "$1" "$2" "$3" "$4" "$5" "${6:--}"
	if [ "$4" = "$PACKETS" ] && [ "$5" = 0 ] && [ "${6:-$PACKETS}" = "$PACKETS" ]; then
		awk -v r="$3" -v b="${best[$2]:-0}" 'BEGIN {exit !(r > b)}' && best[$2]=$3
	fi
	return 0
}

printf '%-8s | %-12s | %9s %9s %9s %9s\n' rate capturer offered captured dropped written
for rate in $RATES; do
	# tcpdump alone.
	tcpdump -i "$cap" -w "$work/td.pcap" -B $((RING_MB * 1024)) -s 262144 'udp dst port 8099' 2>"$work/td.err" &
	td=$!
	pids=("$td")
	waitfor "$work/td.err" listening
	tdrate=$(sendat "$rate")
	sleep 1.5
	kill -INT "$td"
	wait "$td" || true
	row "$rate" tcpdump "$tdrate" "$(awk '/packets captured/ {print $1}' "$work/td.err")" \
		"$(awk '/packets dropped by kernel/ {print $1}' "$work/td.err")"
	rm -f "$work/td.pcap"

	# vrsniff alone, with each number of workers: its final "counters"
	# line has what the sockets read, what the kernel dropped and what
	# reached the files, summed over the workers.
	for n in $WORKERS; do
		rm -rf "$work/vr"
		"$capturer" capture -i "$cap" --dir "$work/vr" --ring-mb "$RING_MB" --workers "$n" --stats-every 0 2>"$work/vr.err" &
		vr=$!
		pids=("$vr")
		waitfor "$work/vr.err" 'msg=capturing'
		vrrate=$(sendat "$rate")
		sleep 1.5
		kill -INT "$vr"
		wait "$vr" || { cat "$work/vr.err" >&2; exit 1; }
		line=$(grep 'msg=counters' "$work/vr.err" | tail -1)
		row "$rate" "vrsniff -w $n" "$vrrate" "$(field read "$line")" "$(field kernel_dropped "$line")" "$(field written "$line")"
		rm -rf "$work/vr"
	done
done
echo "frames/s taken without loss (the highest rate offered):"
for c in tcpdump $(printf 'vrsniff-w%s ' $WORKERS); do
	k=${c/-w/ -w }
	printf '  %-12s %9.0f\n' "$k" "${best[$k]:-0}"
done
echo "($PACKETS frames per pass; offered = frames/s the sender achieved, all delivered to $cap: $(ip -s link show "$cap" | awk 'f {print $2; exit} /RX:/ {f=1}') frames in all, $(nproc) CPUs)"
