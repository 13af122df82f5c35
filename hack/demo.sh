#!/usr/bin/env bash
# `make demo`: a two-host Calico lab on this machine and the seed scenario:
# containers on both hosts, same-network (same-profile) traffic allowed, other
# traffic denied until a policy allows it. Leaves the lab up; `make demo-down`
# removes it.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/bin:/usr/sbin:/sbin:$PATH"
LAB=${LAB:-demo}
calico=(bin/calico)

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
on() { local h=$1; shift; "${calico[@]}" lab exec --name "$LAB" "$h" -- "$@"; }

if [ "$(id -u)" -ne 0 ]; then
  echo "make demo needs root (network namespaces, dockerd)" >&2
  exit 1
fi

say "Bringing up a two-host lab ($LAB): a fabric, two host namespaces, a dockerd and a calico node on each"
"${calico[@]}" lab up --name "$LAB" --hosts 2

say "Networks: the same Docker network name on each host is the same Calico profile"
for h in host1 host2; do
  for net in frontend backend; do
    if ! on "$h" docker network inspect "$net" >/dev/null 2>&1; then
      on "$h" docker network create --driver calico --ipam-driver calico-ipam "$net" >/dev/null
    fi
    echo "  $h: network $net (driver calico, IPAM calico-ipam)"
  done
done

say "Containers: a web and a db container on each host"
start() { # host name network role
  on "$1" docker rm -f "$2" >/dev/null 2>&1 || true
  on "$1" docker run -d --name "$2" --net "$3" --label role="$4" calico-lab/busybox:latest sleep 1d >/dev/null
}
start host1 web1 frontend web
start host1 db1 backend db
start host2 web2 frontend web
start host2 db2 backend db

declare -A HOST=([web1]=host1 [db1]=host1 [web2]=host2 [db2]=host2)
declare -A IP
for c in web1 db1 web2 db2; do
  IP[$c]=$(on "${HOST[$c]}" docker inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' "$c")
  printf '  %-5s on %s  %-15s role=%s\n' "$c" "${HOST[$c]}" "${IP[$c]}" "$(on "${HOST[$c]}" docker inspect -f '{{index .Config.Labels "role"}}' "$c")"
done
"${calico[@]}" lab exec --name "$LAB" host1 -- calico get workloadendpoints -o wide || true

reach() { # from to -> ok/--
  if on "${HOST[$1]}" docker exec "$1" ping -c1 -W1 "${IP[$2]}" >/dev/null 2>&1; then echo "ok"; else echo "--"; fi
}
matrix() {
  printf '  %-8s' "from\\to"
  for to in web1 web2 db1 db2; do printf '%-6s' "$to"; done
  echo
  for from in web1 web2 db1 db2; do
    printf '  %-8s' "$from"
    for to in web1 web2 db1 db2; do
      if [ "$from" = "$to" ]; then printf '%-6s' "."; else printf '%-6s' "$(reach "$from" "$to")"; fi
    done
    echo
  done
}

# Wait until the cross-host same-network pair answers (routes arrive over BGP).
for _ in $(seq 1 100); do
  [ "$(reach web1 web2)" = ok ] && break
  sleep 0.2
done

say "Connectivity (ping): same network allowed, across networks denied"
matrix

say "Policy: let role=web reach role=db (then Pass, so db's own profile still applies)"
policy=$(grep -v "^#" examples/allow-web-to-db.yaml)
echo "$policy"
echo "$policy" | "${calico[@]}" lab exec --name "$LAB" host1 -- calico apply -f -

for _ in $(seq 1 100); do
  [ "$(reach web1 db2)" = ok ] && break
  sleep 0.2
done

say "Connectivity after the policy: web -> db allowed; db -> web still denied"
matrix

for h in host1 host2; do
  say "calico node status on $h"
  on "$h" calico node status || true
done

cat <<EOF

The lab is still up. Explore it:
  bin/calico lab status --name $LAB
  bin/calico lab exec --name $LAB host1 -- docker ps
  bin/calico lab exec --name $LAB host2 -- calico get globalnetworkpolicy -o wide
  eval "\$(bin/calico lab env --name $LAB host1)"   # then docker/calico talk to host1
Take it down with: make demo-down
EOF
