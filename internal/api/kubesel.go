package api

import (
	"slices"
	"strings"

	"github.com/calico-docker/calico/internal/selector"
)

// Kubernetes-only selectors (namespaceSelector, serviceAccountSelector,
// serviceAccounts, services) are accepted and evaluated as Calico evaluates
// them (see package calc): a namespace's labels are only
// projectcalico.org/name = <namespace> here, a service account's only
// projectcalico.org/name = <spec.serviceAccountName of the endpoint>, and
// there are no Services. So they never widen a policy; apply warns where the
// result differs from what the same text means in a Kubernetes cluster.

// labelName is the one label namespaces and service accounts carry here.
const labelName = "projectcalico.org/name"

// note records a warning about a field that is stored and acts, but not as
// it would in a Kubernetes cluster.
func (c *errs) note(field, msg string) {
	c.warn = append(c.warn, field+": "+msg)
}

// noteNameOnly warns when selector s (already checked to parse) uses a label
// other than projectcalico.org/name: such a label is absent here, as if every
// namespace or service account had no labels.
func noteNameOnly(c *errs, path, s, what string) {
	sel, err := selector.Parse(s)
	if err != nil {
		return
	}
	keys := slices.DeleteFunc(sel.LabelKeys(), func(k string) bool { return k == labelName })
	if len(keys) > 0 {
		c.note(path, "label "+strings.Join(keys, ", ")+" is never set here: "+what+
			" have only the label "+labelName+" (there are no Kubernetes "+what+" with labels)")
	}
}

const noSA = "containers here have no service account (unless their WorkloadEndpoint sets spec.serviceAccountName)"

// saNote says what a service account match means for endpoints without a
// service account, which see no service account labels; "" when it
// matches them all anyway. policy: a policy's serviceAccountSelector, where
// Calico reads all() as "has a service account".
func saNote(sel string, names, policy bool) string {
	s, err := selector.Parse(sel)
	switch {
	case err != nil:
		return ""
	case names:
		return noSA + ", so the names match none of them"
	case s.IsAll() && policy:
		return noSA + ", so all() selects none of them"
	case s.IsAll():
		return ""
	case s.Evaluate(nil):
		return noSA + ": they match this selector, which is true without labels"
	}
	return noSA + ", so this selector matches none of them"
}

// checkPolicyKubeSelectors validates a policy's serviceAccountSelector and
// (GlobalNetworkPolicy only) namespaceSelector.
func checkPolicyKubeSelectors(c *errs, s *PolicySpec, global bool) {
	if s.ServiceAccountSelector != "" {
		checkSelector(c, "spec.serviceAccountSelector", s.ServiceAccountSelector)
		if msg := saNote(s.ServiceAccountSelector, false, true); msg != "" {
			c.note("spec.serviceAccountSelector", msg)
		}
		noteNameOnly(c, "spec.serviceAccountSelector", s.ServiceAccountSelector, "service accounts")
	}
	if s.NamespaceSelector == "" {
		return
	}
	if !global {
		c.add("spec.namespaceSelector", "not a field of NetworkPolicy (GlobalNetworkPolicy only)")
		return
	}
	if strings.Contains(s.NamespaceSelector, "global()") {
		c.add("spec.namespaceSelector", globalOnlyInNamespaceSelector)
		return
	}
	checkSelector(c, "spec.namespaceSelector", s.NamespaceSelector)
	noteNameOnly(c, "spec.namespaceSelector", s.NamespaceSelector, "namespaces")
}

// checkSideKubeSelectors validates namespaceSelector, serviceAccounts and
// services of one side (sp) of a rule, as Calico's validator does.
func checkSideKubeSelectors(c *errs, sp string, e *EntityRule) {
	if e.NamespaceSelector != "" {
		p := join(sp, "namespaceSelector")
		if _, err := selector.Parse(e.NamespaceSelector); err != nil {
			c.add(p, "invalid selector: %v", err)
		} else if strings.Contains(e.NamespaceSelector, "global()") && strings.Trim(e.NamespaceSelector, " \t\r\n()") != "global" {
			// The parser folds global() into all(), so this looks at the
			// text: Calico requires global() to stand alone.
			c.add(p, "global() must be the whole namespaceSelector (it selects non-namespaced things: GlobalNetworkSets and host endpoints)")
		} else {
			noteNameOnly(c, p, e.NamespaceSelector, "namespaces")
		}
	}
	if sa := e.ServiceAccounts; sa != nil {
		p := join(sp, "serviceAccounts")
		checkSelector(c, join(p, "selector"), sa.Selector)
		for i, n := range sa.Names {
			if n == "" {
				c.add(idx(join(p, "names"), i), "must not be empty")
			}
		}
		if msg := saNote(sa.Selector, len(sa.Names) > 0, false); msg != "" {
			c.note(p, msg)
		}
		noteNameOnly(c, join(p, "selector"), sa.Selector, "service accounts")
	}
	if sv := e.Services; sv != nil {
		p := join(sp, "services")
		if sv.Name == "" {
			c.add(join(p, "name"), "must specify a service name")
		}
		for _, f := range []struct {
			name string
			set  bool
		}{
			{"namespaceSelector", e.NamespaceSelector != ""},
			{"selector", e.Selector != ""},
			{"notSelector", e.NotSelector != ""},
			{"serviceAccounts", e.ServiceAccounts != nil},
			{"nets", len(e.Nets) > 0},
			{"notNets", len(e.NotNets) > 0},
		} {
			if f.set {
				c.add(p, "cannot specify %s and services on the same side of a rule", f.name)
			}
		}
		c.note(p, "there are no Kubernetes Services here, so this rule matches no traffic")
	}
}

// checkPolicyServices applies Calico's direction rules for services in
// NetworkPolicy and GlobalNetworkPolicy: only the destination of an egress
// rule and the source of an ingress rule; a destination with services takes
// no ports (the service's are used); a GlobalNetworkPolicy must name the
// service's namespace.
func checkPolicyServices(c *errs, s *PolicySpec, global bool) {
	for _, dir := range []struct {
		path    string
		rules   []Rule
		ingress bool
	}{{"spec.ingress", s.Ingress, true}, {"spec.egress", s.Egress, false}} {
		for i := range dir.rules {
			r := &dir.rules[i]
			rp := idx(dir.path, i)
			wrong, right := &r.Source, &r.Destination
			wrongName, rightName := "source", "destination"
			if dir.ingress {
				wrong, right = right, wrong
				wrongName, rightName = rightName, wrongName
			}
			if wrong.Services != nil {
				c.add(join(rp, wrongName+".services"), "not allowed in %s rule %s", strings.TrimPrefix(dir.path, "spec."), wrongName)
			}
			if right.Services != nil && global && right.Services.Namespace == "" {
				c.add(join(rp, rightName+".services.namespace"), "must specify a namespace (a GlobalNetworkPolicy has none to default to)")
			}
		}
	}
}

// checkServicePorts: a destination with services uses the service's ports.
func checkServicePorts(c *errs, path string, r *Rule) {
	if r.Destination.Services == nil {
		return
	}
	if len(r.Destination.Ports) > 0 {
		c.add(join(path, "destination.ports"), "cannot specify ports with a service selector")
	}
	if len(r.Destination.NotPorts) > 0 {
		c.add(join(path, "destination.notPorts"), "cannot specify notPorts with a service selector")
	}
}
