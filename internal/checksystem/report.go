package checksystem

import (
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"
)

// WriteTable prints the report as a table (CHECK, STATUS, DETAIL), then the
// fix of every check that is not OK, then a one-line verdict.
func (r Report) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CHECK\tSTATUS\tDETAIL")
	for _, x := range r.Results {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", x.Check, x.Status, x.Detail)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	var fixes []Result
	for _, x := range r.Results {
		if x.Status != OK && x.Fix != "" {
			fixes = append(fixes, x)
		}
	}
	if len(fixes) > 0 {
		fmt.Fprintln(w, "\nTo fix:")
		for _, x := range fixes {
			fmt.Fprintf(w, "  %s (%s): %s\n", x.Check, x.Status, x.Fix)
		}
	}
	fmt.Fprintln(w)
	_, err := fmt.Fprintln(w, r.Summary())
	return err
}

// Summary is the one-line verdict.
func (r Report) Summary() string {
	fails, warns := len(r.With(Fail)), len(r.With(Warn))
	switch {
	case fails > 0:
		return fmt.Sprintf("This host cannot run the calico node: %d check(s) FAIL, %d WARN.", fails, warns)
	case warns > 0:
		return fmt.Sprintf("This host can run the calico node, with %d warning(s).", warns)
	default:
		return "This host meets the requirements of the calico node."
	}
}

// WriteJSON prints the report and the facts behind it as JSON.
func (r Report) WriteJSON(w io.Writer, f Facts) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(struct {
		Results []Result `json:"results"`
		Failed  bool     `json:"failed"`
		Facts   Facts    `json:"facts"`
	}{r.Results, r.Failed(), f})
}
