// Package pki holds the embedded datastore's credentials: a cluster CA made
// with crypto/x509, one certificate per host (client and server/peer use,
// signed by the CA), and join tokens.
//
// Files, all in one directory (Dir, /var/lib/calico/pki on a node host):
//
//	ca.crt       the cluster CA certificate (PEM); every host has it
//	ca.key       the CA's private key (0600); only on the first host, which
//	             signs the certificates of joining hosts
//	node.crt     this host's certificate, signed by the CA; used as etcd
//	node.key     client, server and peer certificate (0600)
//	tokens.json  join tokens, secrets stored as SHA-256 hashes (0600);
//	             only on the first host
//
// A join token has k3s's shape: K10<sha256 of ca.crt, hex>::<id>:<secret>.
// The joiner pins the CA by the hash before it sends the secret; the first
// host keeps only the hash of the secret, and revoking deletes the entry.
//
// Everything here is pure crypto plus file reads and writes in the given
// directory; the network exchange is in package join.
package pki
