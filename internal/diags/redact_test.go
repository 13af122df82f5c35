package diags

import (
	"strings"
	"testing"
)

func TestRedact(t *testing.T) {
	secret := "s3cr3tValue"
	token := "K10" + strings.Repeat("ab", 32) + "::tok1:" + secret
	for _, in := range []string{
		"join with " + token + " now",
		`{"password": "` + secret + `"}`,
		`password: ` + secret,
		`BGP_PASSWORD=` + secret,
		`"Cmd": ["node", "run", "--join-token", "` + secret + `"]`,
		`--join-token=` + secret,
		`CALICO_JOIN_TOKEN=` + secret,
		"-----BEGIN EC PRIVATE KEY-----\n" + secret + "\n-----END EC PRIVATE KEY-----",
		`{"secretKeyRef":{"name":"bgp","key":"pw"}, "apiToken": '` + secret + `'}`,
	} {
		out := string(Redact([]byte(in)))
		if strings.Contains(out, secret) || !strings.Contains(out, Redacted) {
			t.Errorf("Redact(%q) = %q", in, out)
		}
	}
	keep := "ip route 10.0.0.0/26 proto 80\ntable inet calico { chain forward { } }\nkeyword: value"
	if out := string(Redact([]byte(keep))); out != keep {
		t.Errorf("Redact changed harmless text: %q", out)
	}
}
