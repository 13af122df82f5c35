#!/bin/sh
# The live check with the real calicoctl, both directions (see README.md).
# Needs: an empty etcd at $ETCD_ENDPOINTS, CALICOCTL31 and CALICOCTL29 (built
# from Calico's tags), CALICO (this project's binary), ASSIGN (assign.go.txt
# built in Calico's tree), and kubeapi.py running (calicoctl ipam check
# lists Kubernetes Services even with etcd; kubeapi.py answers with none).
# Writes one log per scenario next to itself.
set -u
cd "$(dirname "$0")"
export DATASTORE_TYPE=etcdv3 KUBECONFIG=/tmp/live-kubeconfig
M=../calicoctl-v3.31.7/manifests
K=$CALICO
wipe() { ETCDCTL_API=3 etcdctl --endpoints "$ETCD_ENDPOINTS" del --prefix /calico >/dev/null; }
run() { echo "\$ $*" | sed "s#$CALICOCTL31#calicoctl#; s#${CALICOCTL29:-/nonexistent}#calicoctl#; s#$CALICO #calico #; s#$M/##g; s#$ASSIGN#h7-assign#"; "$@" 2>&1; echo "[exit $?]"; }
cat > /tmp/live-kubeconfig <<K8S
apiVersion: v1
kind: Config
clusters: [{name: none, cluster: {server: "http://127.0.0.1:23799"}}]
contexts: [{name: none, context: {cluster: none, user: none}}]
current-context: none
users: [{name: none, user: {}}]
K8S
printf 'apiVersion: projectcalico.org/v3\nkind: FelixConfiguration\nmetadata:\n  name: default\nspec:\n  logSeverityScreen: Debug\n' > /tmp/live-felix.yaml
printf 'apiVersion: projectcalico.org/v3\nkind: Node\nmetadata:\n  name: host-a\n  labels:\n    kubernetes.io/hostname: host-a\n    rack: r1\nspec:\n  bgp:\n    ipv4Address: 10.0.0.1/24\n  ipv4VXLANTunnelAddr: 10.48.0.1\n  vxlanTunnelMACAddr: 66:77:88:99:aa:bb\n' > /tmp/live-node.yaml

for V in 31 29; do
C=$(eval echo \${CALICOCTL$V:-})
if [ -z "$C" ]; then echo "CALICOCTL$V not set: skipping v3.$V" >&2; continue; fi
# A: calicoctl writes, we read and update, calicoctl reads our updates.
wipe
{
for f in 01-gnp 02-gnp-prefixed 03-np 04-profile 05-ippool 06-felixconfig 07-node 08-wep 09-wep-docker; do run $C apply -f $M/$f.yaml; done
run $K get gnp -o wide; run $K get np -A -o wide; run $K get gnp deny-all -o yaml
run $K get gnp default.deny-all -o name; run $K get gnp allow-dns -o name; run $K get gnp default.allow-dns -o name
run $K get profiles; run $K get wep -A; run $K get nodes -o yaml
run $K apply -f /tmp/live-felix.yaml; run $C get felixconfig default -o yaml
run $K apply -f /tmp/live-node.yaml; run $C get node host-a -o yaml
for k in profiles gnp np wep ippool; do $C get $k -A -o yaml > /tmp/live-$k.yaml 2>/dev/null || $C get $k -o yaml > /tmp/live-$k.yaml; run $K apply -f /tmp/live-$k.yaml; done
run $C get gnp -o wide
run $K delete gnp deny-all; run $C get gnp; run $K delete gnp default.allow-dns; run $C get gnp
} > A-v3.$V.log 2>&1
# B: we write, calicoctl reads, updates and deletes.
wipe
{
for f in 01-gnp 02-gnp-prefixed 03-np 04-profile 05-ippool 08-wep 09-wep-docker; do run $K apply -f $M/$f.yaml; done
run $C get gnp -o wide; run $C get np -A -o wide; run $C get gnp deny-all -o yaml; run $C get profiles
run $C get wep -A; run $C get ippool -o wide; run $C get tier; run $C get clusterinformation default -o yaml
for k in gnp np wep ippool profile; do $K get $k -A -o yaml > /tmp/live-k$k.yaml; run $C apply -f /tmp/live-k$k.yaml; done
run $C get gnp -o wide; run $K get gnp -o wide
run $C delete gnp deny-all; run $C delete np allow-web -n shop; run $K get gnp; run $K get np -A
# An old-form key of ours is moved on the next write.
echo '$ etcdctl put .../globalnetworkpolicies/legacy-pol (the key older versions of calico wrote)'
ETCDCTL_API=3 etcdctl --endpoints "$ETCD_ENDPOINTS" put /calico/resources/v3/projectcalico.org/globalnetworkpolicies/legacy-pol \
  '{"kind":"GlobalNetworkPolicy","apiVersion":"projectcalico.org/v3","metadata":{"name":"legacy-pol","uid":"11111111-2222-4333-8444-555555555555","creationTimestamp":"2026-01-01T00:00:00Z"},"spec":{"order":10,"selector":"all()","types":["Ingress"],"futureField":"kept"}}'
run $C get gnp legacy-pol; run $K apply -f $M/04-profile.yaml
run env ETCDCTL_API=3 etcdctl --endpoints "$ETCD_ENDPOINTS" get --prefix /calico/resources/v3/projectcalico.org/globalnetworkpolicies/
run $C get gnp legacy-pol -o wide
# IPAM: both tools judge the same addresses.
run $C apply -f $M/07-node.yaml
run $K ipam assign --handle wep-lib --node host-a --ip 10.48.0.7 --endpoint default/host--a-libnetwork-libnetwork-0123abcd
run $K ipam assign --handle wep-dock --node host-a --ip 10.48.0.8 --endpoint default/host--a-docker-4f2a9c1b8e7d-eth0
run $K ipam assign --handle printer --node host-a --ip 10.48.0.20 --note printer
run $K ipam assign --handle gone --node host-a --ip 10.48.0.21 --endpoint default/gone-wep
run sh -c "$ASSIGN 10.48.0.0/16 2>/dev/null"
run $C ipam check --show-problem-ips
run $K ipam check --min-age 0 -o /tmp/live-rep.json
run $K ipam release --from-report /tmp/live-rep.json
run $C ipam check --show-problem-ips -o /tmp/live-crep.json
run $C ipam release --from-report /tmp/live-crep.json --force
run $K ipam check --min-age 0
run $C ipam check
} > B-v3.$V.log 2>&1
# C: the other kinds (tiers and tiered policies, network sets, BGP, host
# endpoints, IP reservations, an IPv6 VXLAN pool, a node FelixConfiguration
# with fields that have no effect here), both ways.
NEW="10-tier 11-gnp-tiered 12-np-tiered 13-globalnetworkset 14-networkset 15-bgpconfiguration 16-bgppeer 17-hostendpoint 18-ipreservation 19-ippool-v6-vxlan 21-felixconfig-node"
KINDS="tier gnp np globalnetworkset networkset bgpconfig bgppeer hostendpoint ipreservation ippool felixconfig"
ns() { case $1 in np|networkset) echo -A;; esac; } # calicoctl refuses -A for cluster-wide kinds
wipe
{
echo "## calicoctl writes, calico reads and applies calicoctl's get -o yaml back"
for f in $NEW; do run $C apply -f $M/$f.yaml; done
for k in $KINDS; do run $K get $k $(ns $k) -o yaml; done
run $K get gnp security.block-partners -o name; run $K get np security.allow-monitoring -n shop -o name
for k in $KINDS; do $C get $k $(ns $k) -o yaml > /tmp/live-c$k.yaml; run $K apply -f /tmp/live-c$k.yaml; done
run $C get gnp -o wide; run $C get np -A -o wide; run $C get tier -o wide
run $C get felixconfig node.host-a -o yaml
run $K delete gnp security.block-partners; run $K delete networkset office -n shop; run $C get gnp; run $C get networkset -A
} > C1-v3.$V.log 2>&1
wipe
{
echo "## calico writes, calicoctl reads and applies calico's get -o yaml back"
for f in $NEW; do run $K apply -f $M/$f.yaml; done
for k in $KINDS; do run $C get $k $(ns $k) -o yaml; done
for k in $KINDS; do $K get $k $(ns $k) -o yaml > /tmp/live-k$k.yaml; run $C apply -f /tmp/live-k$k.yaml; done
run $C get gnp -o wide; run $C get np -A -o wide; run $K get gnp -o wide; run $K get np -A -o wide
run $C delete gnp security.block-partners; run $C delete np security.allow-monitoring -n shop
run $C delete globalnetworkset partners; run $C delete ipreservation reserved-printers
run $K get gnp; run $K get np -A; run $K get globalnetworkset; run $K get ipreservation
} > C2-v3.$V.log 2>&1
done
