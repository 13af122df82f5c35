package docker

import "github.com/calico-docker/calico/internal/api"

// encode is how tests store a resource by hand, as resources.Client would:
// defaulted, validated, in Calico's stored form.
func encode(r api.Resource, prev []byte) ([]byte, error) {
	api.Default(r)
	if err := api.Validate(r); err != nil {
		return nil, err
	}
	return api.EncodeStored(r, prev)
}
