package api

import (
	"encoding/json"
	"testing"
)

// Policies of other tiers and staged policies are stored as calicoctl
// stores them: under <tier>.<name>, with the tier label, and read back.
func TestStoredTieredAndStaged(t *testing.T) {
	docs, err := DecodeAndValidate([]byte(`
apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {name: security.block}
spec: {tier: security, selector: all()}
---
apiVersion: projectcalico.org/v3
kind: StagedNetworkPolicy
metadata: {name: allow, namespace: prod}
spec: {selector: all(), ingress: [{action: Allow}]}
`))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		stored, tierLabel string
	}{{"security.block", "security"}, {"default.allow", ""}} {
		r := docs[0].Resource
		if c.tierLabel == "" {
			r = docs[1].Resource
		}
		if got := StoredName(r.Kind(), r.GetObjectMeta().Name); got != c.stored {
			t.Errorf("%s stored as %q, want %q", Ident(r), got, c.stored)
		}
		b, err := EncodeStored(r, nil)
		if err != nil {
			t.Fatal(err)
		}
		var obj struct {
			Metadata ObjectMeta `json:"metadata"`
		}
		if err := json.Unmarshal(b, &obj); err != nil {
			t.Fatal(err)
		}
		if obj.Metadata.Name != c.stored || obj.Metadata.Labels[LabelTier] != c.tierLabel {
			t.Errorf("%s stored metadata %+v", Ident(r), obj.Metadata)
		}
		back, err := DecodeStoredKey(r.Kind(), obj.Metadata.Namespace, c.stored, b, 7)
		if err != nil {
			t.Fatal(err)
		}
		if back.GetObjectMeta().Name != r.GetObjectMeta().Name || PolicySpecOf(back).Tier == "" {
			t.Errorf("read back %+v", back)
		}
	}
}
