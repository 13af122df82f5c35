package cli

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/calico-docker/calico/internal/selector"
)

func init() { register(newSelectorCmd) }

func newSelectorCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "selector",
		Short: "Work with Calico label selectors",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return cmd.Help()
		},
	}
	cmd.AddCommand(newSelectorMatchCmd())
	return cmd
}

func newSelectorMatchCmd() *cobra.Command {
	var labelArgs []string
	cmd := &cobra.Command{
		Use:   "match EXPR --labels k=v,k2=v2",
		Short: "Print whether a selector matches a set of labels",
		Long: `Evaluate the label selector EXPR (Calico syntax, e.g. "role == 'db' && has(tier)")
against the labels given with --labels and print true or false. Exits 0 either
way; a selector that does not parse is an error (exit 1) naming the position.
The canonical form of the selector is printed to stderr with --canonical.`,
		Example: `  calico selector match "role == 'db' && env != 'dev'" --labels role=db,env=prod
  calico selector match "tier in {'web', 'api'}" --labels tier=web --labels zone=a`,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) != 1 {
				return fmt.Errorf("selector match takes exactly one argument, the selector in quotes (got %d)", len(args))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			labels, err := parseLabelsFlag(labelArgs)
			if err != nil {
				return err
			}
			sel, err := selector.Parse(args[0])
			if err != nil {
				return &ExitError{Code: 1, Err: err}
			}
			if canonical, _ := cmd.Flags().GetBool("canonical"); canonical {
				fmt.Fprintln(cmd.ErrOrStderr(), "canonical:", sel.String())
			}
			fmt.Fprintln(cmd.OutOrStdout(), sel.Evaluate(labels))
			return nil
		},
	}
	cmd.Flags().StringArrayVar(&labelArgs, "labels", nil,
		"labels to match, as comma-separated key=value pairs; may be repeated")
	cmd.Flags().Bool("canonical", false, "also print the selector's canonical form to stderr")
	return cmd
}

// parseLabelsFlag turns --labels values ("k=v,k2=v2", possibly repeated)
// into a label map. Keys follow the selector grammar's key characters, since
// a key no selector can name is certainly a typo.
func parseLabelsFlag(vals []string) (map[string]string, error) {
	labels := map[string]string{}
	for _, val := range vals {
		for _, entry := range strings.Split(val, ",") {
			entry = strings.TrimSpace(entry)
			if entry == "" {
				continue
			}
			k, v, ok := strings.Cut(entry, "=")
			if !ok {
				return nil, fmt.Errorf("invalid --labels entry %q: want key=value", entry)
			}
			if !validLabelKey(k) {
				return nil, fmt.Errorf("invalid --labels entry %q: key %q must be non-empty and use only letters, digits and _ . / -", entry, k)
			}
			if old, dup := labels[k]; dup && old != v {
				return nil, fmt.Errorf("invalid --labels: key %q given twice (%q and %q)", k, old, v)
			}
			labels[k] = v
		}
	}
	return labels, nil
}

func validLabelKey(k string) bool {
	if k == "" {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			c == '_' || c == '.' || c == '/' || c == '-') {
			return false
		}
	}
	return true
}
