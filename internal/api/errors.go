package api

import (
	"errors"
	"fmt"
	"strings"
)

// FieldError is one problem at one field, named by its path in the
// manifest ("spec.ingress[0].destination.ports[1]").
type FieldError struct {
	Field  string
	Reason string
}

func (e *FieldError) Error() string {
	if e.Field == "" {
		return e.Reason
	}
	return e.Field + ": " + e.Reason
}

// FieldErrors is every problem found in one resource, in field order.
type FieldErrors []*FieldError

func (fe FieldErrors) Error() string {
	parts := make([]string, len(fe))
	for i, e := range fe {
		parts[i] = e.Error()
	}
	return strings.Join(parts, "; ")
}

// Unwrap exposes the individual errors to errors.Is / errors.As.
func (fe FieldErrors) Unwrap() []error {
	out := make([]error, len(fe))
	for i, e := range fe {
		out[i] = e
	}
	return out
}

// DocumentError names where in a manifest a problem is: the document
// number (from 1), the item of a List (from 1, 0 when not in a list), and the
// resource when it is known.
type DocumentError struct {
	Document int
	Item     int
	// Resource is "Kind name" or "Kind namespace/name" when known.
	Resource string
	Err      error
}

// Error prints one line per field error, each prefixed with the document
// and resource, so that every line stands alone.
func (e *DocumentError) Error() string {
	prefix := e.prefix()
	var fes FieldErrors
	if errors.As(e.Err, &fes) && len(fes) > 1 {
		lines := make([]string, len(fes))
		for i, fe := range fes {
			lines[i] = prefix + fe.Error()
		}
		return strings.Join(lines, "\n")
	}
	return prefix + e.Err.Error()
}

func (e *DocumentError) prefix() string {
	var b strings.Builder
	fmt.Fprintf(&b, "document %d", e.Document)
	if e.Item > 0 {
		fmt.Fprintf(&b, ", item %d", e.Item)
	}
	if e.Resource != "" {
		fmt.Fprintf(&b, " (%s)", e.Resource)
	}
	b.WriteString(": ")
	return b.String()
}

func (e *DocumentError) Unwrap() error { return e.Err }

// errs collects field errors during validation, and warnings about fields
// that are stored without effect.
type errs struct {
	list FieldErrors
	warn []string
}

// noEffect records a field that is stored but has no effect here.
func (c *errs) noEffect(field, why string) {
	c.warn = append(c.warn, noEffectMessage(field, why))
}

func (c *errs) add(field, format string, args ...any) {
	c.list = append(c.list, &FieldError{Field: field, Reason: fmt.Sprintf(format, args...)})
}

func (c *errs) err() error {
	if len(c.list) == 0 {
		return nil
	}
	return c.list
}

// join builds a field path: join("spec", "cidr") = "spec.cidr".
func join(base, field string) string {
	if base == "" {
		return field
	}
	return base + "." + field
}

// idx builds an indexed path: idx("spec.ingress", 0) = "spec.ingress[0]".
func idx(base string, i int) string { return fmt.Sprintf("%s[%d]", base, i) }
