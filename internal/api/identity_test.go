package api

import (
	"strings"
	"testing"
)

func TestDecodeStoredKeyIdentityFromKey(t *testing.T) {
	for _, tc := range []struct {
		name, kind, ns, key, body, wantErr string
	}{
		{name: "agreeing", kind: KindNetworkPolicy, ns: "a", key: "p",
			body: `{"kind":"NetworkPolicy","metadata":{"name":"p","namespace":"a"}}`},
		{name: "name and namespace from the key", kind: KindNetworkPolicy, ns: "a", key: "p", body: `{"spec":{}}`},
		{name: "other name", kind: KindGlobalNetworkPolicy, key: "p",
			body: `{"metadata":{"name":"q"}}`, wantErr: `named "q"`},
		{name: "other namespace", kind: KindNetworkPolicy, ns: "a", key: "p",
			body: `{"metadata":{"name":"p","namespace":"b"}}`, wantErr: `namespace "b"`},
		{name: "namespace on a cluster-scoped key", kind: KindProfile, key: "p",
			body: `{"metadata":{"name":"p","namespace":"b"}}`, wantErr: `namespace "b"`},
		{name: "other kind", kind: KindProfile, key: "p",
			body: `{"kind":"NetworkPolicy","metadata":{"name":"p"}}`, wantErr: "is a NetworkPolicy"},
		{name: "not JSON", kind: KindProfile, key: "p", body: `{`, wantErr: "decode stored"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := DecodeStoredKey(tc.kind, tc.ns, tc.key, []byte(tc.body), 1)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), "refused") && tc.wantErr != "decode stored" {
					t.Fatalf("err %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if m := r.GetObjectMeta(); m.Name != tc.key || m.Namespace != tc.ns || r.Kind() != tc.kind {
				t.Fatalf("decoded %s %s/%s", r.Kind(), m.Namespace, m.Name)
			}
		})
	}
}
