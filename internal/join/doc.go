// Package join is the exchange that gives a new host its datastore
// credentials, authenticated by a join token (package pki).
//
// The first host serves it over HTTPS with its node certificate (DefaultPort
// 2378 on its fabric address). Two requests:
//
//	GET  /v1/ca    the cluster CA bundle (public); the joiner hashes it and
//	               compares the hash with the token's before anything else
//	POST /v1/join  {"id","secret","node","csr"} over TLS verified against
//	               that pinned CA; answers {"cert","ca","endpoints"} with a
//	               certificate signed for the joiner's own key
//
// The secret never leaves the joiner unless the server proved it holds the
// CA the token names; the joiner's private key never leaves the joiner. The
// server keeps only hashes of the secrets; a revoked token is refused.
package join
