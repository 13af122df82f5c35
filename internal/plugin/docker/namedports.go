package docker

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/calico-docker/calico/internal/api"
)

// LabelPortPrefix starts a container label that names a port of the
// container for policy rules ("ports: [http]"), as a WorkloadEndpoint's
// spec.ports does in Calico: "org.projectcalico.port.http=80" (TCP),
// "...port.dns=53/udp", or several protocols "...port.dns=53/udp,53/tcp".
// Docker's own port metadata has no names (EXPOSE and -p give numbers), so
// the name has to come from the user; a label is what Docker lets a user
// attach to a container, and the label already carries endpoint labels.
const LabelPortPrefix = "org.projectcalico.port."

// containerNamedPorts reads the named ports from a container's labels,
// sorted by name. A label that does not parse is skipped and reported in
// problems (the container runs anyway: Docker has already started it).
func containerNamedPorts(labels map[string]string) (ports []api.WorkloadEndpointPort, problems []string) {
	for k, v := range labels {
		name, ok := strings.CutPrefix(k, LabelPortPrefix)
		if !ok {
			continue
		}
		if err := api.CheckPortName(name); err != nil {
			problems = append(problems, fmt.Sprintf("label %s: %v", k, err))
			continue
		}
		var these []api.WorkloadEndpointPort
		var bad error
		for _, part := range strings.Split(v, ",") {
			p, err := parseNamedPort(name, strings.TrimSpace(part))
			if err != nil {
				bad = err
				break
			}
			these = append(these, p)
		}
		if bad != nil {
			problems = append(problems, fmt.Sprintf("label %s=%q: %v", k, v, bad))
			continue
		}
		ports = append(ports, these...)
	}
	slices.SortFunc(ports, func(a, b api.WorkloadEndpointPort) int {
		if c := strings.Compare(a.Name, b.Name); c != 0 {
			return c
		}
		if c := strings.Compare(a.Protocol.Name, b.Protocol.Name); c != 0 {
			return c
		}
		return int(a.Port) - int(b.Port)
	})
	slices.Sort(problems)
	return slices.CompactFunc(ports, samePort), problems
}

// parseNamedPort reads "<port>[/<protocol>]".
func parseNamedPort(name, s string) (api.WorkloadEndpointPort, error) {
	num, proto, hasProto := strings.Cut(s, "/")
	protocol := "TCP"
	if hasProto {
		switch strings.ToLower(proto) {
		case "tcp":
		case "udp":
			protocol = "UDP"
		case "sctp":
			protocol = "SCTP"
		default:
			return api.WorkloadEndpointPort{}, fmt.Errorf("protocol %q: want tcp, udp or sctp", proto)
		}
	}
	n, err := strconv.ParseUint(num, 10, 16)
	if err != nil || n == 0 {
		return api.WorkloadEndpointPort{}, fmt.Errorf("port %q: want a number 1-65535, optionally followed by /tcp, /udp or /sctp", num)
	}
	return api.WorkloadEndpointPort{Name: name, Protocol: api.Protocol{Name: protocol}, Port: uint16(n)}, nil
}

func samePort(a, b api.WorkloadEndpointPort) bool {
	return a.Name == b.Name && a.Protocol.String() == b.Protocol.String() && a.Port == b.Port &&
		a.HostPort == b.HostPort && a.HostIP == b.HostIP
}

// withNamedPorts returns ports (an endpoint's spec.ports) with its named
// ports that publish nothing (hostPort 0, which only container labels
// create) replaced by named; published ports stay as they are (ports.go
// owns them). changed is false when nothing differs.
func withNamedPorts(ports, named []api.WorkloadEndpointPort) (out []api.WorkloadEndpointPort, changed bool) {
	out = slices.DeleteFunc(slices.Clone(ports), func(p api.WorkloadEndpointPort) bool { return p.HostPort == 0 })
	out = append(out, named...)
	if len(out) == 0 {
		out = nil
	}
	return out, !slices.EqualFunc(ports, out, samePort)
}
