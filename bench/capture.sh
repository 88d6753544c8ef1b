#!/bin/bash
# Capture benchmark: replays mirror traffic (64-byte inner frames) over a
# veth pair at increasing rates and compares what tcpdump and vrsniff's
# AF_PACKET source capture of it. Run as root; it only uses a private
# network namespace and veth pair, removed on exit.
set -euo pipefail

PACKETS=${PACKETS:-200000}
RATES=${RATES:-"100000 300000 1000000 topspeed"}
cd "$(dirname "$0")/.."

command -v tcpreplay >/dev/null || { apt-get install -y tcpreplay >/dev/null; }

work=$(mktemp -d)
id=$(head -c4 /dev/urandom | od -An -tx1 | tr -d ' \n')
ns=vrsniff-bench-$id cap=vbc$id snd=vbs$id
cleanup() {
	ip link delete "$cap" 2>/dev/null || true
	ip netns delete "$ns" 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT

go build -o "$work/genmirror" ./bench/genmirror
go build -o "$work/capcount" ./bench/capcount
"$work/genmirror" -n "$PACKETS" -o "$work/mirror.pcap"

ip netns add "$ns"
ip link add "$cap" type veth peer name "$snd" netns "$ns"
sysctl -qw "net.ipv6.conf.$cap.disable_ipv6=1"
ip netns exec "$ns" sysctl -qw "net.ipv6.conf.$snd.disable_ipv6=1"
ip link set "$cap" up
ip -n "$ns" link set "$snd" up

printf '%-9s %9s | %9s %9s | %9s %9s\n' rate sent tcpdump dropped vrsniff dropped
for rate in $RATES; do
	speed=(--pps="$rate")
	[ "$rate" = topspeed ] && speed=(--topspeed)
	tcpdump -i "$cap" -w "$work/td.pcap" -B 65536 -s 262144 'udp dst port 8099' 2>"$work/td.err" &
	td=$!
	"$work/capcount" -i "$cap" >"$work/cc.out" 2>&1 &
	cc=$!
	# Wait until both are reading (tcpdump says "listening", capcount "ready").
	for _ in $(seq 50); do
		grep -q listening "$work/td.err" && grep -q ready "$work/cc.out" && break
		sleep 0.1
	done
	sent=$(ip netns exec "$ns" tcpreplay -i "$snd" "${speed[@]}" "$work/mirror.pcap" 2>&1 |
		awk '/Successful packets:/ {print $3}')
	sleep 0.5
	kill -INT "$td" "$cc"
	wait "$td" "$cc" || true
	tdcap=$(awk '/packets captured/ {print $1}' "$work/td.err")
	tddrop=$(awk '/packets dropped by kernel/ {print $1}' "$work/td.err")
	read -r _ cccap _ ccdrop < <(grep captured "$work/cc.out")
	printf '%-9s %9s | %9s %9s | %9s %9s\n' "$rate" "$sent" "$tdcap" "$tddrop" "$cccap" "$ccdrop"
done
