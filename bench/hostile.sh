#!/bin/bash
# Hostile-traffic benchmark: replays, at full size, the floods and abuses
# that mirrored traffic or a client of the HTTP port can aim at a running
# `vrsniff capture -i IF --http`, each beside legitimate mirror traffic,
# and prints one row per attack: the legitimate traffic kept, the daemon's
# peak resident memory (VmHWM) and the counters that tell what happened.
#
# Targets: >= 99 % of the legitimate traffic kept beside the junk-fragment
# flood at 1:1; 100 % with 200 reading stream clients at 20k packets/s;
# peak RSS under 256 MiB for every attack.
#
# Run as root. Everything happens inside two private network namespaces
# joined by a veth pair, removed on exit (the daemon and its HTTP clients in
# one, the sender in the other): no packet leaves them. Captures go to WORK
# (default: a fresh directory in /dev/shm), the multi-GB decap inputs to
# BIGWORK (default: /var/tmp, on disk); both are removed on exit.
#
#   QUICK=1    every attack briefly (a few seconds each), to try the script
#   DUR        seconds of each flood (default 30; QUICK: 3)
#   ATTACKS    the attacks to run, by number (default "1 2 3 4 5 6 7")
#   KEEP=1     keep WORK (logs, stats, captures) for a look afterwards
#   SEEDS      the hostile seed files (default: ../shared/hostile-cases)
#
# Exit status 1 when a target is missed.
set -euo pipefail

QUICK=${QUICK:-0}
if [ "$QUICK" = 1 ]; then
	DUR=${DUR:-3} PAIRS=20000 HDR_CONNS=100 DECAP_1X=64M DECAP_4X=256M
else
	DUR=${DUR:-30} PAIRS=300000 HDR_CONNS=1000 DECAP_1X=1G DECAP_4X=4G
fi
ATTACKS=${ATTACKS:-"1 2 3 4 5 6 7"}
LEGIT=10000   # legitimate mirror datagrams per second beside the floods
BIG_EVERY=10  # one in BIG_EVERY legitimate datagrams is full size: two outer fragments
RSS_TARGET_MIB=256
cd "$(dirname "$0")/.."
repo=$PWD
seeds=${SEEDS:-$repo/../shared/hostile-cases}

for c in ip curl jq ss; do
	command -v $c >/dev/null || { echo "hostile.sh: $c is needed" >&2; exit 1; }
done
[ -d "$seeds" ] || { echo "hostile.sh: no seeds in $seeds" >&2; exit 1; }

work=$(mktemp -d "${WORK:-/dev/shm}/vrsniff-hostile.XXXXXX")
bigwork=$(mktemp -d "${BIGWORK:-/var/tmp}/vrsniff-hostile.XXXXXX")
id=$(head -c4 /dev/urandom | od -An -tx1 | tr -d ' \n')
nsc=vrsniff-hc-$id nss=vrsniff-hs-$id cap=vhc$id snd=vhs$id
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	ip netns delete "$nsc" 2>/dev/null || true
	ip netns delete "$nss" 2>/dev/null || true
	rm -rf "$bigwork"
	if [ "${KEEP:-0}" = 1 ]; then echo "kept $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT

# reap PID: waits for a process started here, and forgets it, so that
# cleanup never signals a process id that has since been reused.
reap() {
	local p=$1 rc=0 i
	wait "$p" || rc=$?
	for i in "${!pids[@]}"; do
		[ "${pids[$i]}" = "$p" ] && unset 'pids[i]'
	done
	return $rc
}

echo "building..." >&2
go build -o "$work/vrsniff" ./cmd/vrsniff
go build -o "$work/sendmirror" ./bench/sendmirror
go build -o "$work/genhostile" ./bench/genhostile
vr=$work/vrsniff gh=$work/genhostile

# Legitimate traffic: ACL-mirrored datagrams of one VN pair whose inner
# frames are numbered, which `genhostile count` finds again in the capture
# files. legit.pcap has full-size ones (two outer fragments each), small.pcap
# only 64-byte inner frames.
echo "generating traffic..." >&2
legitgen() { "$vr" gen -profile acl -vn default-domain:admin:vn-left -numbered -linktype ether -seed 1 "$@" 2>/dev/null; }
legitgen -frame-sizes "64=$((BIG_EVERY - 1)),1514" -count $((LEGIT * DUR)) "$work/legit.pcap"
legitgen -frame-sizes 64 -count $((2 * LEGIT * DUR)) "$work/small.pcap"
"$gh" junkfrag -n 64 -o "$work/junk.pcap" >/dev/null
"$gh" vnpairs -n $PAIRS -o "$work/pairs.pcap" >/dev/null
token=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
(umask 077; echo "$token" >"$work/token")

ip netns add "$nsc"
ip netns add "$nss"
ip link add "$cap" netns "$nsc" type veth peer name "$snd" netns "$nss"
ip netns exec "$nsc" sysctl -qw "net.ipv6.conf.all.disable_ipv6=1"
ip netns exec "$nss" sysctl -qw "net.ipv6.conf.all.disable_ipv6=1"
ip -n "$nsc" link set lo up
ip -n "$nsc" link set "$cap" up
ip -n "$nss" link set "$snd" up
api=http://127.0.0.1:8080

inc() { ip netns exec "$nsc" "$@"; } # in the daemon's namespace
ins() { ip netns exec "$nss" "$@"; } # in the sender's namespace
get() { # get PATH [CURL-ARGS...]
	local path=$1
	shift
	inc curl -sS -H "Authorization: Bearer $token" "$@" "$api$path"
}
field() { tr ' ' '\n' <<<"$2" | sed -n "s/^$1=//p" | tr -d '"'; } # field NAME "k=v k=v"
load1() { cut -d' ' -f1 /proc/loadavg; }
vethdrops() { ip -n "$nsc" -s link show "$cap" | awk 'f {print $4; exit} /RX:/ {f=1}'; }

# start NAME FLAGS...: starts the daemon on the veth with the HTTP API, and
# a watcher that records its peaks until it exits.
start() {
	name=$1
	shift
	dir=$work/$name
	log=$work/$name.log
	# ip netns exec execs the command: $! is the daemon's own pid.
	ip netns exec "$nsc" "$vr" capture -i "$cap" --dir "$dir" --http 127.0.0.1:8080 --token-file "$work/token" \
		--stats-every 0 "$@" 2>"$log" &
	dpid=$!
	pids+=("$dpid")
	local up=0
	for _ in $(seq 100); do
		inc curl -sf -o /dev/null "$api/healthz" 2>/dev/null && up=1 && break
		kill -0 "$dpid" 2>/dev/null || break
		sleep 0.1
	done
	[ $up = 1 ] || { echo "hostile.sh: the daemon did not come up:" >&2; cat "$log" >&2; exit 1; }
	"$gh" watch -pid "$dpid" -o "$work/$name.watch" &
	wpid=$!
	pids+=("$wpid")
	drops0=$(vethdrops)
}

# stop: saves /api/stats, stops the daemon cleanly and reads its last
# counters line and its peaks.
stop() {
	get "/api/stats?pairs=0" >"$work/$name.stats.json"
	kill -INT "$dpid"
	reap "$dpid" || { echo "hostile.sh: the daemon failed:" >&2; tail -5 "$log" >&2; }
	reap "$wpid" || true
	counters=$(grep 'msg=counters' "$log" | tail -1)
	peak=$(cat "$work/$name.watch")
	hwm_mib=$(($(field vmhwm_kib "$peak") / 1024))
	fds=$(field fds_peak "$peak")
	vdrops=$(($(vethdrops) - drops0))
}

stat() { jq -r "$1" "$work/$name.stats.json"; } # stat JQ-EXPR

# legit N PPS [FILE]: starts sending the first N datagrams of legit.pcap
# (or of the small FILE) at PPS datagrams per second; lpid is the sender.
legit() {
	local n=$1 pps=$2 file=${3:-legit.pcap} frames fpps
	if [ "$file" = legit.pcap ]; then
		# One more record per full-size frame, in two fragments: at most
		# that many, as a full-size ARP frame stays short; the records
		# past case N-1 (or again from the first) count does not find.
		frames=$((n + n / BIG_EVERY)) fpps=$((pps + pps / BIG_EVERY))
	else
		frames=$n fpps=$pps
	fi
	ip netns exec "$nss" "$work/sendmirror" -i "$snd" -r "$work/$file" -n "$frames" -pps "$fpps" >"$work/$name.legit.sent" &
	lpid=$!
	pids+=("$lpid")
}

# kept N: the legitimate datagrams 0..N-1 found whole in the capture files.
kept() {
	local c
	c=$("$gh" count -sent "$1" "$dir")
	printf '%d/%d = %s %%' "$(field found "$c")" "$1" "$(field kept_pct "$c")"
}

failed=0
row() { # row ATTACK KEPT TARGET-KEPT-PCT NOTES: prints a row, checks the targets
	local attack=$1 keptcol=$2 want=$3 notes=$4 verdict=""
	if [ -n "$want" ]; then
		local pct=${keptcol##*= }
		pct=${pct% %}
		if awk -v p="$pct" -v w="$want" 'BEGIN {exit !(p >= w)}'; then
			verdict="kept>=$want% ok"
		else
			verdict="kept>=$want% MISSED"
			failed=1
		fi
	fi
	if [ "$hwm_mib" -lt $RSS_TARGET_MIB ]; then
		verdict="${verdict:+$verdict, }rss ok"
	else
		verdict="${verdict:+$verdict, }rss MISSED"
		failed=1
	fi
	printf '%-56s | %-26s | %7s | %-24s | %s\n' "$attack" "$keptcol" "$hwm_mib" "$verdict" "$notes load=$(load1)"
	[ "${KEEP:-0}" = 1 ] || rm -rf "$dir"
}

echo
echo "$(date -u +%FT%TZ) $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg), DUR=${DUR}s, legitimate traffic $LEGIT datagrams/s (1 in $BIG_EVERY full size) unless said"
printf '%-56s | %-26s | %7s | %-24s | %s\n' attack "legit kept" "RSS MiB" target counters
printf '%.0s-' {1..150}
echo

for a in $ATTACKS; do
	case $a in
	1)
		# Incomplete first fragments, each from its own source with its
		# own ID, 1:1 with the legitimate datagrams.
		start frag
		legit $((LEGIT * DUR)) $LEGIT
		ins "$work/sendmirror" -i "$snd" -r "$work/junk.pcap" -n $((LEGIT * DUR)) -pps $LEGIT -vary-ip >"$work/frag.junk.sent"
		reap $lpid
		sleep 2
		stop
		k=$(kept $((LEGIT * DUR)))
		row "1 incomplete-fragment flood 10k/s + 10k/s" "$k" 99 \
			"kernel_dropped=$(field kernel_dropped "$counters") veth_dropped=$vdrops fragment_incomplete=$(stat '.pipeline.malformed["fragment-incomplete"] // 0') merged=$(stat .pipeline.fragments_merged) junk_sent=$(awk '{print $2}' "$work/frag.junk.sent")"
		;;
	2)
		# One first fragment, repeated endlessly, beside legitimate traffic.
		for rej in "" --keep-rejects; do
			start "dup$rej" $rej
			legit $((LEGIT * DUR)) $LEGIT
			ins "$work/sendmirror" -i "$snd" -r "$seeds/frag-dup-seed.pcap" -n $((LEGIT * DUR)) -pps $LEGIT >/dev/null
			reap $lpid
			sleep 2
			stop
			k=$(kept $((LEGIT * DUR)))
			extra=""
			[ -n "$rej" ] && extra=" rejects_written=$(field rejects_written "$counters") rejects_dropped=$(field rejects_dropped "$counters")"
			row "2 frag-dup flood 10k/s ${rej:-(no rejects)}" "$k" "" \
				"kernel_dropped=$(field kernel_dropped "$counters") fragments_duplicate=$(stat .pipeline.fragments_duplicate) fragment_incomplete=$(stat '.pipeline.malformed["fragment-incomplete"] // 0')$extra"
		done
		;;
	3)
		# Spoofed VN pairs with --split-by vn, every datagram its own pair:
		# once with the legitimate pair already there, once with the flood
		# first (the legitimate pair then finds every split file taken).
		secs=$(((PAIRS + 19999) / 20000))
		for first in legit flood; do
			start "split-$first" --split-by vn
			if [ $first = flood ]; then
				ip netns exec "$nss" "$work/sendmirror" -i "$snd" -r "$work/pairs.pcap" -n $PAIRS -pps 20000 >/dev/null &
				f=$!
				pids+=("$f")
				sleep 0.5
				legit $((LEGIT * (secs + 1))) $LEGIT
				reap $f
			else
				legit $((LEGIT * (secs + 1))) $LEGIT
				sleep 1
				ins "$work/sendmirror" -i "$snd" -r "$work/pairs.pcap" -n $PAIRS -pps 20000 >/dev/null
			fi
			reap $lpid
			sleep 2
			statsz=$(get "/api/stats" | wc -c)
			capsz=$(get "/api/captures" | wc -c)
			nfiles=$(get "/api/captures?limit=1" -D - -o /dev/null | tr -d '\r' | awk -F': ' 'tolower($1)=="x-total-count" {print $2}')
			stop
			k=$(kept $((LEGIT * (secs + 1))))
			own=$("$gh" count -sent $((LEGIT * (secs + 1))) -exclude '*_other.pcapng*' "$dir")
			row "3 --split-by vn, $PAIRS spoofed pairs 20k/s, $first first" "$k" "" \
				"in_own_pair_file=$(field found "$own") fds_peak=$fds files=$nfiles split_overflow=$(field split_overflow "$counters") vn_pairs_total=$(stat .vn_pairs_total) /api/stats=${statsz}B /api/captures=${capsz}B kernel_dropped=$(field kernel_dropped "$counters")"
		done
		;;
	4)
		# 200 clients reading /api/stream while 20k small datagrams/s
		# arrive; then 500 clients that never read, all admitted.
		start readers --stream-clients 256 --http-max-conns 512
		ip netns exec "$nsc" "$gh" streams -url "$api/api/stream" -token-file "$work/token" -n 200 -for $((DUR + 6))s >"$work/readers.out" &
		c=$!
		pids+=("$c")
		sleep 2
		attached=$(get /api/stats | jq .stream_clients)
		legit $((2 * LEGIT * DUR)) $((2 * LEGIT)) small.pcap
		reap $lpid
		reap $c
		stop
		k=$(kept $((2 * LEGIT * DUR)))
		r=$(cat "$work/readers.out")
		row "4a 200 reading /api/stream clients, 20k/s" "$k" 100 \
			"kernel_dropped=$(field kernel_dropped "$counters") attached=$attached status=$(field status "$r") per_client_packets=$(field packets_min "$r")..$(field packets_max "$r")/$((2 * LEGIT * DUR)) stream_drops=$(stat .stream_drops) fds_peak=$fds"

		start silent --stream-clients 600 --http-max-conns 700
		ip netns exec "$nsc" "$gh" streams -url "$api/api/stream" -token-file "$work/token" -n 500 -read=false -for $((DUR + 6))s >"$work/silent.out" &
		c=$!
		pids+=("$c")
		sleep 2
		attached=$(get /api/stats | jq .stream_clients)
		legit $((2 * LEGIT * DUR)) $((2 * LEGIT)) small.pcap
		reap $lpid
		held=$(get /api/stats | jq .stream_clients)
		# Kernel memory the streams pin: the daemon's send queues, and
		# all TCP buffers (the clients' receive queues included).
		sendq=$(inc ss -tmnH state established '( sport = :8080 )' | grep -o ',w[0-9]*' | tr -d ',w' | awk '{s += $1} END {printf "%d", s / 1048576}')
		tcpmem=$(($(inc awk '/^TCP:/ {print $NF}' /proc/net/sockstat) * 4 / 1024))
		reap $c
		stop
		k=$(kept $((2 * LEGIT * DUR)))
		row "4b 500 non-reading stream clients, 20k/s" "$k" "" \
			"kernel_dropped=$(field kernel_dropped "$counters") attached=$attached still_attached_at_end=$held daemon_send_queues=${sendq}MiB all_tcp_buffers=${tcpmem}MiB stream_drops=$(stat .stream_drops) fds_peak=$fds (--stream-clients 600 --http-max-conns 700)"
		;;
	5)
		# Connections sending 900 KB of request header each, without a token.
		start headers
		legit $((LEGIT * DUR)) $LEGIT
		h=$(inc "$gh" headers -addr 127.0.0.1:8080 -conns $HDR_CONNS -bytes 900K)
		reap $lpid
		sleep 2
		stop
		k=$(kept $((LEGIT * DUR)))
		row "5 $HDR_CONNS conns x 900 KB headers, no token" "$k" "" \
			"answers=$(field status "$h") in $(field seconds "$h")s (slowest $(field slowest_s "$h")s) client_wrote=$(field sent_mib "$h")MiB fds_peak=$fds kernel_dropped=$(field kernel_dropped "$counters")"
		;;
	6)
		# A 3000-term filter on /api/stream while 20 others attach. With
		# the default header cap (8K) the 130 KB URL stops at 431; with the
		# cap raised it reaches the filter compiler, which must refuse it.
		for hdr in 256K 8K; do
			start "bpf$hdr" --http-max-header $hdr
			legit $((LEGIT * DUR)) $LEGIT
			b=$(inc "$gh" bpf -url "$api" -token-file "$work/token" -expr-file "$seeds/bpf-3000-terms.txt" -others 20)
			reap $lpid
			sleep 2
			stop
			k=$(kept $((LEGIT * DUR)))
			row "6 /api/stream?bpf=3000 terms (--http-max-header $hdr)" "$k" "" \
				"answer=$(field big_status "$b") in $(field big_ms "$b")ms ($(field big_url_bytes "$b") B URL) others=$(field others_status "$b") slowest_attach=$(field others_slowest_ms "$b")ms fds_peak=$fds"
		done
		# The command line refuses the same expression.
		t0=$(date +%s%N)
		set +e
		"$vr" decap --bpf "$(cat "$seeds/bpf-3000-terms.txt")" "$seeds/frag-dup-seed.pcap" "$work/bpf-cli.pcapng" 2>"$work/bpf-cli.err"
		rc=$?
		set -e
		echo "   decap --bpf <3000 terms>: exit $rc in $((($(date +%s%N) - t0) / 1000000)) ms: $(head -c 150 "$work/bpf-cli.err" | head -1)"
		;;
	7)
		# NIC-assisted mirroring at volume, then decap of a multi-GB file.
		start vlan --mirror-vlan 999 --max-bytes 256M
		ins "$work/sendmirror" -i "$snd" -r "$seeds/nic-vlan-seed.pcap" -n $((40000 * DUR)) -pps 40000 >/dev/null
		sleep 2
		stop
		w=$(field written "$counters")
		row "7a NIC-VLAN frames 40k/s (1 KB), --mirror-vlan" \
			"$(printf '%d/%d = %s %%' "$w" $((40000 * DUR)) "$(awk -v w="$w" -v s=$((40000 * DUR)) 'BEGIN {printf "%.3f", 100*w/s}')")" "" \
			"decoded_vlan=$(stat .pipeline.decoded.vlan) kernel_dropped=$(field kernel_dropped "$counters") veth_dropped=$vdrops store_dropped=$(field store_dropped "$counters")"
		for size in "$DECAP_1X" "$DECAP_4X"; do
			name=decap$size dir=$work/$name
			"$gh" repeat -size "$size" -o "$bigwork/vlan.pcap" "$seeds/nic-vlan-seed.pcap" >/dev/null
			sync
			"$gh" watch -o "$work/$name.watch" -- "$vr" decap --mirror-vlan 999 "$bigwork/vlan.pcap" - 2>"$work/$name.err" >/dev/null
			peak=$(cat "$work/$name.watch")
			hwm_mib=$(($(field vmhwm_kib "$peak") / 1024))
			anon=$(($(field rssanon_peak_kib "$peak") / 1024))
			read -r nread _ < <(grep 'packets read' "$work/$name.err")
			read -r nwritten < <(grep -o '[0-9]* written' "$work/$name.err" | cut -d' ' -f1)
			row "7b decap --mirror-vlan, $(du -h "$bigwork/vlan.pcap" | cut -f1) input" \
				"$(printf '%d/%d = %s %%' "$nwritten" "$nread" "$(awk -v w="$nwritten" -v s="$nread" 'BEGIN {printf "%.3f", 100*w/s}')")" "" \
				"rssanon_peak=${anon}MiB (VmHWM counts the mapped input's page-cache pages)"
			rm -f "$bigwork/vlan.pcap"
		done
		;;
	*)
		echo "hostile.sh: no attack $a" >&2
		exit 2
		;;
	esac
done
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
exit $failed
