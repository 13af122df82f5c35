#!/bin/sh
# Records what the real calicoctl writes to etcd for each manifest under
# manifests/. Usage (see README.md):
#   CALICOCTL=/path/to/calicoctl ETCD_ENDPOINTS=http://127.0.0.1:23791 ./record.sh
# The etcd must be empty. Writes NN-*.kv (the keys each apply created or
# changed, as "key" and "value" lines) and get/*.yaml (calicoctl get output).
set -eu
cd "$(dirname "$0")"
: "${CALICOCTL:?set CALICOCTL}" "${ETCD_ENDPOINTS:?set ETCD_ENDPOINTS}"
export DATASTORE_TYPE=etcdv3 ETCD_ENDPOINTS
# tables: calicoctl's ps and wide tables of every kind, each after a
# "$ calicoctl get ..." line (trailing blanks and blank lines dropped).
tables() {
	for k in tier gnp np globalnetworkset networkset bgpconfig bgppeer hostendpoint ipreservation ippool felixconfig node wep profile; do
		a=; case $k in np|networkset|wep) a=-A;; esac
		for o in ps wide; do
			echo "\$ calicoctl get $k $a -o $o" | sed 's/  */ /g'
			"$CALICOCTL" get $k $a -o $o 2>&1 | sed 's/ *$//' | grep -v '^$'
		done
	done
}
dump() { ETCDCTL_API=3 etcdctl --endpoints "$ETCD_ENDPOINTS" get --prefix /calico; }
changed() { # before after -> the pairs in after that are not in before
	python3 - "$1" "$2" <<'PY'
import sys
def pairs(p):
    l = open(p).read().split("\n")
    return {l[i]: l[i+1] for i in range(0, len(l) - 1, 2) if l[i]}
b, a = pairs(sys.argv[1]), pairs(sys.argv[2])
for k in sorted(a):
    if b.get(k) != a[k]:
        print(k); print(a[k])
PY
}
dump > /tmp/before.$$
if [ -s /tmp/before.$$ ]; then echo "etcd is not empty" >&2; exit 1; fi
"$CALICOCTL" version > version.txt 2>&1 || true
for m in manifests/*.yaml; do
	n=$(basename "$m" .yaml)
	dump > /tmp/before.$$
	"$CALICOCTL" apply -f "$m"
	dump > /tmp/after.$$
	changed /tmp/before.$$ /tmp/after.$$ > "$n.kv"
done
mkdir -p get
for k in globalnetworkpolicy networkpolicy profile ippool felixconfiguration node workloadendpoint tier clusterinformation; do
	"$CALICOCTL" get "$k" -A -o yaml > "get/$k.yaml" 2>&1 || "$CALICOCTL" get "$k" -o yaml > "get/$k.yaml" 2>&1 || true
done
"$CALICOCTL" get gnp deny-all -o yaml > get/gnp-by-short-name.yaml 2>&1 || true
tables > get/tables.txt
"$CALICOCTL" get gnp default.deny-all -o yaml > get/gnp-by-tiered-name.yaml 2>&1 || true
if [ -n "${ASSIGN:-}" ]; then
	dump > /tmp/before.$$
	"$ASSIGN" 10.48.0.0/16
	dump > /tmp/after.$$
	changed /tmp/before.$$ /tmp/after.$$ > 20-ipam-libcalico.kv
	"$CALICOCTL" ipam check --show-all-ips > get/ipam-check.txt 2>&1 || true
fi
dump > store.kv
rm -f /tmp/before.$$ /tmp/after.$$
