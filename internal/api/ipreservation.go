package api

import "fmt"

// IPReservation lists networks and addresses that IPAM never assigns
// automatically (an address asked for by name is still given out, as in
// Calico).
type IPReservation struct {
	TypeMeta   `json:",inline"`
	ObjectMeta `json:"metadata"`
	Spec       IPReservationSpec `json:"spec"`
}

// IPReservationSpec is Calico's.
type IPReservationSpec struct {
	ReservedCIDRs []string `json:"reservedCIDRs,omitempty"`
}

func (r *IPReservation) GetObjectMeta() *ObjectMeta { return &r.ObjectMeta }
func (r *IPReservation) GetTypeMeta() *TypeMeta     { return &r.TypeMeta }
func (r *IPReservation) Kind() string               { return KindIPReservation }

var ipReservationKind = KindInfo{Kind: KindIPReservation, Plural: "ipreservations",
	Aliases: []string{"ipreservation", "ipreservations", "reservation", "reservations"},
	new:     func() Resource { return &IPReservation{} }}

// KubeControllersConfiguration configures Calico's kube-controllers, which
// do not run here: it is stored (calicoctl and `ipam check` read the
// "default" one) and has no effect.
type KubeControllersConfiguration struct {
	TypeMeta   `json:",inline"`
	ObjectMeta `json:"metadata"`
	Spec       KubeControllersConfigurationSpec `json:"spec"`
	Status     map[string]any                   `json:"status,omitempty"`
}

// KubeControllersConfigurationSpec is Calico's; controllers is kept as
// given.
type KubeControllersConfigurationSpec struct {
	LogSeverityScreen      string         `json:"logSeverityScreen,omitempty"`
	HealthChecks           string         `json:"healthChecks,omitempty"`
	EtcdV3CompactionPeriod *Duration      `json:"etcdV3CompactionPeriod,omitempty"`
	PrometheusMetricsPort  *int           `json:"prometheusMetricsPort,omitempty"`
	Controllers            map[string]any `json:"controllers"`
	DebugProfilePort       *int32         `json:"debugProfilePort,omitempty"`
}

func (r *KubeControllersConfiguration) GetObjectMeta() *ObjectMeta { return &r.ObjectMeta }
func (r *KubeControllersConfiguration) GetTypeMeta() *TypeMeta     { return &r.TypeMeta }
func (r *KubeControllersConfiguration) Kind() string               { return KindKubeControllersConfiguration }

var kubeControllersKind = KindInfo{Kind: KindKubeControllersConfiguration, Plural: "kubecontrollersconfigurations",
	Aliases: []string{"kubecontrollersconfiguration", "kubecontrollersconfigurations", "kubecontrollersconfig", "kubecontrollersconfigs"},
	new:     func() Resource { return &KubeControllersConfiguration{} }}

func validateIPReservation(c *errs, s *IPReservationSpec) {
	checkNets(c, "spec.reservedCIDRs", s.ReservedCIDRs)
}

func validateKubeControllers(c *errs, s *KubeControllersConfigurationSpec) {
	if s.LogSeverityScreen != "" && !logLevels[s.LogSeverityScreen] {
		c.add("spec.logSeverityScreen", "invalid log level %q: want Trace, Debug, Info, Warning, Error or Fatal", s.LogSeverityScreen)
	}
	switch s.HealthChecks {
	case "", "Enabled", "Disabled":
	default:
		c.add("spec.healthChecks", "invalid value %q: want Enabled or Disabled", s.HealthChecks)
	}
	for _, p := range []struct {
		path string
		v    *int
	}{{"spec.prometheusMetricsPort", s.PrometheusMetricsPort}} {
		if p.v != nil && (*p.v < 0 || *p.v > 65535) {
			c.add(p.path, "port %d out of range 0-65535", *p.v)
		}
	}
	if s.DebugProfilePort != nil && (*s.DebugProfilePort < 0 || *s.DebugProfilePort > 65535) {
		c.add("spec.debugProfilePort", "port %d out of range 0-65535", *s.DebugProfilePort)
	}
}

// kindNoEffect says why a resource of a whole kind is stored but changes
// nothing here ("" when it acts); ValidateWarn returns it as a warning.
func kindNoEffect(r Resource) string {
	switch r := r.(type) {
	case *KubeControllersConfiguration:
		return fmt.Sprintf("%s is stored; only spec.controllers.node.hostEndpoint.autoCreate has an effect here (automatic host endpoints), no kube-controllers run", Ident(r))
	case *ClusterInformation:
		return clusterInfoNoEffect(r)
	case *StagedGlobalNetworkPolicy, *StagedNetworkPolicy, *StagedKubernetesNetworkPolicy:
		return fmt.Sprintf("%s is stored but never enforced (staged policies preview a change: see calico policy trace and matrix)", Ident(r))
	}
	return ""
}

// validateMoreKinds validates the kinds of this file group; false when r
// is none of them.
func validateMoreKinds(c *errs, r Resource) bool {
	switch v := r.(type) {
	case *GlobalNetworkSet:
		validateNetworkSet(c, &v.ObjectMeta, &v.Spec)
	case *NetworkSet:
		validateNetworkSet(c, &v.ObjectMeta, &v.Spec)
	case *Tier:
		validateTier(c, &v.ObjectMeta, &v.Spec)
	case *StagedGlobalNetworkPolicy:
		checkTieredName(c, v.Name, v.Spec.Tier)
		validateStagedPolicy(c, &v.Spec, true)
	case *StagedNetworkPolicy:
		checkTieredName(c, v.Name, v.Spec.Tier)
		validateStagedPolicy(c, &v.Spec, false)
	case *StagedKubernetesNetworkPolicy:
		validateStagedKNP(c, v.Spec)
	case *IPReservation:
		validateIPReservation(c, &v.Spec)
	case *KubeControllersConfiguration:
		validateKubeControllers(c, &v.Spec)
	case *ClusterInformation:
	default:
		return false
	}
	return true
}

// defaultMoreKinds applies Calico's defaults to the kinds of this file
// group.
func defaultMoreKinds(r Resource) {
	switch v := r.(type) {
	case *Tier:
		defaultTier(&v.Spec)
	case *StagedGlobalNetworkPolicy:
		if v.Spec.StagedAction != StagedActionDelete {
			v.Spec.Types = DefaultPolicyTypes(v.Spec.PolicySpec)
		}
	case *StagedNetworkPolicy:
		if v.Spec.StagedAction != StagedActionDelete {
			v.Spec.Types = DefaultPolicyTypes(v.Spec.PolicySpec)
		}
	case *KubeControllersConfiguration:
		if v.Spec.Controllers == nil {
			v.Spec.Controllers = map[string]any{}
		}
	}
}
