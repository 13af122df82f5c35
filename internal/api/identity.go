package api

import (
	"encoding/json"
	"fmt"
)

// UnmarshalStored decodes a value stored under the datastore key of kind,
// namespace and name. A resource's identity is its key: a body whose kind,
// metadata.name or metadata.namespace says otherwise is refused, so that
// a value written under one key can never program another resource. An
// empty name or namespace in the body takes the key's.
func UnmarshalStored(kind, namespace, name string, data []byte) (Resource, error) {
	var id struct {
		Kind     string `json:"kind"`
		Metadata struct {
			Name      string `json:"name"`
			Namespace string `json:"namespace"`
		} `json:"metadata"`
	}
	if err := json.Unmarshal(data, &id); err != nil {
		return nil, fmt.Errorf("decode stored %s: %w", kind, err)
	}
	if id.Kind != "" && id.Kind != kind {
		return nil, fmt.Errorf("stored %s %q: the value is a %s: refused (a resource's kind and name come from its key)", kind, name, id.Kind)
	}
	if id.Metadata.Name != "" && id.Metadata.Name != name {
		return nil, fmt.Errorf("stored %s %q: the value is named %q: refused (a resource's name comes from its key)", kind, name, id.Metadata.Name)
	}
	if id.Metadata.Namespace != "" && id.Metadata.Namespace != namespace {
		return nil, fmt.Errorf("stored %s %q: the value is in namespace %q, the key in %q: refused (a resource's namespace comes from its key)",
			kind, name, id.Metadata.Namespace, namespace)
	}
	r, err := Unmarshal(kind, data)
	if err != nil {
		return nil, err
	}
	m := r.GetObjectMeta()
	m.Name, m.Namespace = name, namespace
	return r, nil
}
