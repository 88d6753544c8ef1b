#!/bin/bash
# Starts a single-node Ceph (one mon, one memstore OSD, RGW) on 127.0.0.1
# from Debian's packages (ceph-mon ceph-osd radosgw ceph-common), for the
# tests of the object store. S3 keys: vrsniff / vrsniffsecret.
#   scripts/ceph-rgw.sh [DIR [RGW_PORT [MON_PORT]]]   start; prints VRSNIFF_TEST_S3=URL
#   scripts/ceph-rgw.sh stop [DIR]                     stop
set -euo pipefail
if [ "${1:-}" = stop ]; then
	B=${2:-/tmp/vrsniff-ceph}
	for p in "$B"/run/*.pid; do [ -e "$p" ] && kill "$(cat "$p")" 2>/dev/null || true; done
	exit 0
fi
B=${1:-/tmp/vrsniff-ceph}; RGW_PORT=${2:-17480}; MON_PORT=${3:-16789}
if [ -d "$B/run" ]; then "$0" stop "$B"; sleep 1; fi
rm -rf "$B"; mkdir -p "$B"/{mon/ceph-a,osd/ceph-0,run,log}
FSID=$(cat /proc/sys/kernel/random/uuid); C=$B/ceph.conf
cat > "$C" <<X
[global]
fsid = $FSID
mon host = v1:127.0.0.1:$MON_PORT
public network = 127.0.0.0/8
auth cluster required = none
auth service required = none
auth client required = none
auth allow insecure global id reclaim = true
mon allow pool size one = true
mon warn on pool no redundancy = false
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
mon max pg per osd = 1000
osd crush chooseleaf type = 0
osd objectstore = memstore
memstore device bytes = 2147483648
mon data avail warn = 0
mon data avail crit = 0
osd max object name len = 460
osd max object namespace len = 64
ms bind msgr2 = false
run dir = $B/run
admin socket = $B/run/\$name.asok
log file = $B/log/\$name.log
pid file = $B/run/\$name.pid
keyring = $B/keyring
mon data = $B/mon/\$cluster-\$id
osd data = $B/osd/\$cluster-\$id
mon cluster log file = $B/log/cluster.log
[client.rgw.a]
rgw frontends = beast endpoint=127.0.0.1:$RGW_PORT
rgw dns name = localhost
X
ceph-authtool --create-keyring "$B/keyring" --gen-key -n mon. --cap mon 'allow *' >/dev/null
ceph-authtool "$B/keyring" --gen-key -n client.admin --cap mon 'allow *' --cap osd 'allow *' --cap mgr 'allow *' >/dev/null
monmaptool --create --addv a "[v1:127.0.0.1:$MON_PORT]" --fsid "$FSID" "$B/monmap" >/dev/null
ceph-mon -c "$C" --mkfs -i a --monmap "$B/monmap" --keyring "$B/keyring"
ceph-mon -c "$C" -i a
OSD=$(ceph -c "$C" --connect-timeout 20 osd create)
ceph-osd -c "$C" -i "$OSD" --mkfs >/dev/null 2>&1
ceph-osd -c "$C" -i "$OSD"
radosgw -c "$C" -n client.rgw.a
up=
for _ in $(seq 1 600); do
	if curl -s -o /dev/null "http://127.0.0.1:$RGW_PORT/"; then up=1; break; fi
	sleep 0.1
done
[ -n "$up" ] || { echo "RGW did not come up; logs in $B/log" >&2; exit 1; }
radosgw-admin -c "$C" user create --uid=test --display-name=test \
	--access-key=vrsniff --secret-key=vrsniffsecret >/dev/null
# The first write creates the data pools (seconds): do it here, not in a test.
curl -s -o /dev/null -X PUT "http://127.0.0.1:$RGW_PORT/" || true
echo "VRSNIFF_TEST_S3=http://127.0.0.1:$RGW_PORT"
