// Package testutil holds helpers shared by tests: root gating, throwaway
// network namespaces and polling with a deadline. Tests only; never imported
// by non-test code.
package testutil
