package cli

import (
	"context"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/calico-docker/calico/internal/checksystem"
	"github.com/calico-docker/calico/internal/dataplane/nft"
)

// hostPolicy is what the node does about the host that changes check
// verdicts (see checksystem.Policy).
var hostPolicy = checksystem.Policy{DockerUser: true, Mark: nft.MarkForwardAllowed}

func newNodeCheckSystemCmd() *cobra.Command {
	var output, netns string
	cmd := &cobra.Command{
		Use:   "checksystem",
		Short: "Check that this host can run the calico node: kernel features, sysctls, Docker's firewall, conflicts",
		Long: `Check that this host can run the calico node. Kernel features are probed for
real in a throwaway network namespace, so nothing on the host changes.
Exits with status 1 when any check FAILs.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if output != "table" && output != "json" {
				return fmt.Errorf("invalid -o %q: want table or json", output)
			}
			facts := checksystem.Gather(cmd.Context(), checksystem.Options{NetNS: netns})
			rep := checksystem.Evaluate(facts, hostPolicy)
			out := cmd.OutOrStdout()
			var err error
			if output == "json" {
				err = rep.WriteJSON(out, facts)
			} else {
				err = rep.WriteTable(out)
			}
			if err != nil {
				return err
			}
			if rep.Failed() {
				return &ExitError{Code: 1}
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "table", "output format: table or json")
	cmd.Flags().StringVar(&netns, "netns", "", "inspect the network namespace at this path instead of the current one")
	return cmd
}

// checkHostBeforeStart runs the checks for `node start`: it prints each
// WARN and refuses with every FAIL and its fix.
func checkHostBeforeStart(ctx context.Context, out io.Writer, dockerFirewall bool) error {
	pol := hostPolicy
	pol.DockerUser = dockerFirewall
	rep := checksystem.Evaluate(checksystem.Gather(ctx, checksystem.Options{}), pol)
	fails, warns := rep.With(checksystem.Fail), rep.With(checksystem.Warn)
	if len(fails) == 0 {
		if len(warns) == 0 {
			fmt.Fprintln(out, "ok")
		} else {
			fmt.Fprintf(out, "ok, %d warning(s)\n", len(warns))
		}
		for _, w := range warns {
			fmt.Fprintf(out, "  WARN %s: %s\n", w.Check, w.Detail)
			if w.Fix != "" {
				fmt.Fprintf(out, "       fix: %s\n", w.Fix)
			}
		}
		return nil
	}
	fmt.Fprintln(out, "failed")
	msg := fmt.Sprintf("this host cannot run the calico node (%d check(s) FAIL; `calico node checksystem` shows all checks):", len(fails))
	for _, f := range fails {
		msg += fmt.Sprintf("\n  FAIL %s: %s\n       fix: %s", f.Check, f.Detail, f.Fix)
	}
	return fmt.Errorf("%s", msg)
}
