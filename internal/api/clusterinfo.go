package api

import "fmt"

// KindClusterInformation is Calico's cluster-wide information record.
const KindClusterInformation = "ClusterInformation"

// ClusterInformation is Calico's record of the cluster: the datastore's
// initialisation (internal/compat) writes "default" with a clusterGUID, and
// calicoctl reads it (`calicoctl version`, `get clusterinformation`) and
// patches datastoreReady around migrations.
type ClusterInformation struct {
	TypeMeta   `json:",inline"`
	ObjectMeta `json:"metadata"`
	Spec       ClusterInformationSpec `json:"spec"`
}

// ClusterInformationSpec is Calico's.
type ClusterInformationSpec struct {
	ClusterGUID    string `json:"clusterGUID,omitempty"`
	ClusterType    string `json:"clusterType,omitempty"`
	CalicoVersion  string `json:"calicoVersion,omitempty"`
	DatastoreReady *bool  `json:"datastoreReady,omitempty"`
	Variant        string `json:"variant,omitempty"`
}

func (r *ClusterInformation) GetObjectMeta() *ObjectMeta { return &r.ObjectMeta }
func (r *ClusterInformation) GetTypeMeta() *TypeMeta     { return &r.TypeMeta }
func (r *ClusterInformation) Kind() string               { return KindClusterInformation }

var clusterInfoKind = KindInfo{Kind: KindClusterInformation, Plural: "clusterinformations",
	Aliases: []string{"clusterinformation", "clusterinformations", "clusterinfo", "clusterinfos"},
	new:     func() Resource { return &ClusterInformation{} }}

// clusterInfoNoEffect warns about the one value that would act in Calico:
// Felix stops programming while datastoreReady is false; nodes here go on.
func clusterInfoNoEffect(r *ClusterInformation) string {
	if r.Spec.DatastoreReady != nil && !*r.Spec.DatastoreReady {
		return fmt.Sprintf("%s: spec.datastoreReady: false is stored, but nodes here do not pause programming for it", Ident(r))
	}
	return ""
}
