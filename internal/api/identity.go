package api

import (
	"fmt"
	"strings"
)

// Identity rules Calico's client applies on every write, besides the name
// syntax of validateMeta:
//   - a WorkloadEndpoint's name is derived from its spec (node,
//     orchestrator, workload or pod or containerID, endpoint; '-' doubled
//     inside each part, parts joined by '-'); a name that is given must be
//     exactly that (libcalico-go names/workloadendpoint.go);
//   - a policy name with a dot must start with its tier and a dot
//     ("default.x"); a name without one is in the default tier.

// Orchestrators whose endpoint names Calico derives from particular fields.
const (
	OrchestratorK8s        = "k8s"
	OrchestratorCNI        = "cni"
	OrchestratorLibnetwork = "libnetwork"
)

// WorkloadEndpointName is the name Calico derives from an endpoint's spec:
// <node>-<orchestrator>-<workload>-<endpoint> with '-' doubled in each part.
// The third part is the pod for orchestrator "k8s", the container ID for
// "cni" and "libnetwork" again for "libnetwork". It fails, naming the
// field, when a part is missing or starts or ends with '-'.
func WorkloadEndpointName(s WorkloadEndpointSpec) (string, error) {
	type part struct{ field, value string }
	third := part{"spec.workload", s.Workload}
	switch s.Orchestrator {
	case OrchestratorK8s:
		third = part{"spec.pod", s.Pod}
	case OrchestratorCNI:
		third = part{"spec.containerID", s.ContainerID}
	case OrchestratorLibnetwork:
		third = part{"spec.orchestrator", s.Orchestrator}
	}
	parts := []part{{"spec.node", s.Node}, {"spec.orchestrator", s.Orchestrator}, third, {"spec.endpoint", s.Endpoint}}
	out := make([]string, len(parts))
	for i, p := range parts {
		switch {
		case p.value == "":
			return "", &FieldError{Field: p.field, Reason: "required: the endpoint's name is derived from spec.node, spec.orchestrator, spec.workload (spec.pod for k8s, spec.containerID for cni) and spec.endpoint"}
		case strings.HasPrefix(p.value, "-"):
			return "", &FieldError{Field: p.field, Reason: fmt.Sprintf("%q must not begin with '-'", p.value)}
		case strings.HasSuffix(p.value, "-"):
			return "", &FieldError{Field: p.field, Reason: fmt.Sprintf("%q must not end with '-'", p.value)}
		}
		out[i] = strings.ReplaceAll(p.value, "-", "--")
	}
	return strings.Join(out, "-"), nil
}

// Labels Calico's client sets on every WorkloadEndpoint it stores.
const (
	LabelNamespace    = "projectcalico.org/namespace"
	LabelOrchestrator = "projectcalico.org/orchestrator"
)

// defaultIdentity fills in a WorkloadEndpoint's name from its spec when it
// has none, and its namespace and orchestrator labels, as Calico's client
// does.
func defaultIdentity(r Resource) {
	w, ok := r.(*WorkloadEndpoint)
	if !ok {
		return
	}
	if w.Name == "" {
		if n, err := WorkloadEndpointName(w.Spec); err == nil {
			w.Name = n
		}
	}
	SetEndpointLabels(w.Labels, w)
	if w.Labels == nil {
		w.Labels = map[string]string{}
		SetEndpointLabels(w.Labels, w)
	}
}

// SetEndpointLabels sets Calico's namespace and orchestrator labels of w in
// labels (when labels is not nil).
func SetEndpointLabels(labels map[string]string, w *WorkloadEndpoint) {
	if labels == nil {
		return
	}
	labels[LabelNamespace] = w.Namespace
	if w.Spec.Orchestrator != "" {
		labels[LabelOrchestrator] = w.Spec.Orchestrator
	} else {
		delete(labels, LabelOrchestrator)
	}
}

// validateIdentity checks the names Calico derives or constrains.
func validateIdentity(c *errs, r Resource) {
	switch v := r.(type) {
	case *WorkloadEndpoint:
		want, err := WorkloadEndpointName(v.Spec)
		if err != nil {
			if fe, ok := err.(*FieldError); ok {
				c.add(fe.Field, "%s", fe.Reason)
			}
			return
		}
		if v.Name != "" && v.Name != want {
			c.add("metadata.name", "the WorkloadEndpoint name %q does not match its spec: Calico requires %q (<node>-<orchestrator>-<workload>-<endpoint>, '-' doubled inside each part)", v.Name, want)
		}
	case *NetworkPolicy:
		checkTieredName(c, v.Name, v.Spec.Tier)
	case *GlobalNetworkPolicy:
		checkTieredName(c, v.Name, v.Spec.Tier)
	}
}

// checkTieredName is Calico's ValidateTieredPolicyName.
func checkTieredName(c *errs, name, tier string) {
	if tier == "" {
		tier = DefaultTier
	}
	prefix, _, dotted := strings.Cut(name, ".")
	if name == "" || strings.HasPrefix(name, "knp.default.") {
		return
	}
	if !dotted && tier != DefaultTier {
		c.add("metadata.name", "invalid policy name %q: a policy of tier %q must be named %q", name, tier, tier+"."+name)
		return
	}
	if dotted && prefix != tier {
		c.add("metadata.name", "invalid policy name %q: a name with a '.' must start with its tier (%q.); policies of the default tier may also be named without it", name, tier)
	}
}
