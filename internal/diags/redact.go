package diags

import (
	"regexp"
)

// Redacted replaces every secret value.
const Redacted = "<redacted>"

var (
	// A k3s-style join token: K10<CA hash>::<id>:<secret>.
	reToken = regexp.MustCompile(`K10[0-9a-fA-F]{16,}::[A-Za-z0-9_.-]+:[A-Za-z0-9_.+/=-]+`)
	rePEM   = regexp.MustCompile(`(?s)-----BEGIN [A-Z ]*PRIVATE KEY-----.*?-----END [A-Z ]*PRIVATE KEY-----`)
	// "password": "x", password: x, PASSWORD=x, --join-token=x, --join-token x
	reField = regexp.MustCompile(`(?i)("?[A-Za-z0-9_.-]*(password|passwd|secret|token|private[_-]?key|api[_-]?key)[A-Za-z0-9_.-]*"?\s*[:=]\s*)("[^"]*"|'[^']*'|[^\s,}\]]+)`)
	reFlag  = regexp.MustCompile(`(?i)(--[a-z0-9-]*(password|secret|token)[a-z0-9-]*[ "',]+)([^\s"',\]]+)`)
)

// Redact removes secrets from text.
func Redact(b []byte) []byte {
	b = rePEM.ReplaceAll(b, []byte(Redacted))
	b = reToken.ReplaceAll(b, []byte(Redacted))
	b = reField.ReplaceAll(b, []byte("${1}"+`"`+Redacted+`"`))
	b = reFlag.ReplaceAll(b, []byte("${1}"+Redacted))
	return b
}
