#!/bin/sh
# calicoctl against a running lab: what `calico node` and the Docker plugin
# wrote for a real container, read by the real calicoctl (see README.md).
# Needs: CALICO (this project's binary), CALICOCTL31, a lab up with one
# node (`calico lab up --name h19ctl --hosts 1`) and kubeapi.py running.
set -u
cd "$(dirname "$0")"
LAB=${LAB:-h19ctl}
eval "$("$CALICO" lab env --name "$LAB" host1)"
export DATASTORE_TYPE=etcdv3 KUBECONFIG=/tmp/live-kubeconfig
C=$CALICOCTL31 K=$CALICO
run() { echo "\$ $*" | sed "s#$C#calicoctl#; s#$K #calico #"; "$@" 2>&1; echo "[exit $?]"; }
{
run docker network create --driver calico --ipam-driver calico-ipam --ipv6 web
run docker run -d --name h19web --net web --label role=web calico-lab/busybox:latest sleep 1d
run $C get wep -A -o wide; run $K get wep -A -o wide
W=$($K get wep -A -o name | head -1 | sed 's#.*/##')
run $C get wep "$W" -o yaml; run $K get wep "$W" -o yaml
run $C get profile web -o yaml; run $C get node host1 -o yaml; run $C get ippool -o wide
run $C get felixconfig -o yaml; run $C get clusterinformation default -o yaml; run $C get tier -o wide
run $C ipam show --show-blocks; run $C ipam check; run $K ipam check --min-age 0
run $C label wep "$W" tier=frontend; run $K get wep "$W" -o yaml
run docker rm -f h19web; run $C get wep -A; run $K ipam check --min-age 0; run $C ipam check
run docker network rm web
} > D-lab-v3.31.log 2>&1
