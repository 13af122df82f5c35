// Package api defines the projectcalico.org/v3 resources this project
// understands, with Calico's field names and defaults, and validates them.
//
// It is pure: no I/O, no datastore, no kernel. Decoding is strict: unknown
// kinds and fields are refused, and fields that Calico has but this project
// does not enforce are refused with "not supported" rather than ignored.
package api
