// Package cli holds the cobra commands of the calico binary. Each command file
// registers its top-level command from init() through register, so that
// commands owned by different packages of work never edit a shared file.
//
// Conventions: user errors are printed once to stderr as "error: ..." and the
// process exits 1; commands print results to stdout only.
package cli
