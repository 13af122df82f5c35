// Package diags collects what support needs from one node into a tar.gz
// (`calico node diags`): version, node status, the nftables table, routes
// and rules per family, links and addresses, BGP peers and the routes BGP
// installed, the node container's recent logs, resources from the
// datastore, an IPAM check and the Docker plugin state.
//
// Secrets are left out: the collector never reads the PKI directory
// (CA and node keys, join token hashes) or the BGP secrets directory, and
// every file passes through Redact, which removes join tokens (K10...),
// PEM private keys, and the values of fields, flags and environment
// variables named like a password, secret, token or key.
//
// Each source is optional: what cannot be collected (no Docker, no
// datastore, no nft binary) is written to errors.txt and the rest is kept.
package diags
