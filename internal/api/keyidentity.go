package api

import (
	"encoding/json"
	"fmt"
)

// DecodeStoredKey is DecodeStored for a value read at the key of kind,
// namespace and storedName (the key's last segment, e.g. "default.x" for a
// policy). A resource's identity is its key: a body whose kind,
// metadata.name or metadata.namespace says otherwise is refused, so that a
// value written under one key can never program another resource. An empty
// name or namespace in the body takes the key's.
func DecodeStoredKey(kind, namespace, storedName string, data []byte, rev int64) (Resource, error) {
	if err := checkStoredIdentity(kind, namespace, storedName, data); err != nil {
		return nil, err
	}
	r, err := DecodeStored(kind, storedName, data, rev)
	if err != nil {
		return nil, err
	}
	if m := r.GetObjectMeta(); m.Namespace == "" {
		m.Namespace = namespace
	}
	return r, nil
}

func checkStoredIdentity(kind, namespace, name string, data []byte) error {
	var id struct {
		Kind     string `json:"kind"`
		Metadata struct {
			Name      string `json:"name"`
			Namespace string `json:"namespace"`
		} `json:"metadata"`
	}
	if err := json.Unmarshal(data, &id); err != nil {
		return fmt.Errorf("decode stored %s: %w", kind, err)
	}
	if id.Kind != "" && id.Kind != kind {
		return fmt.Errorf("stored %s %q: the value is a %s: refused (a resource's kind and name come from its key)", kind, name, id.Kind)
	}
	if id.Metadata.Name != "" && id.Metadata.Name != name {
		return fmt.Errorf("stored %s %q: the value is named %q: refused (a resource's name comes from its key)", kind, name, id.Metadata.Name)
	}
	if id.Metadata.Namespace != "" && id.Metadata.Namespace != namespace {
		return fmt.Errorf("stored %s %q: the value is in namespace %q, the key in %q: refused (a resource's namespace comes from its key)",
			kind, name, id.Metadata.Namespace, namespace)
	}
	return nil
}
