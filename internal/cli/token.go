package cli

import (
	"fmt"
	"net"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/calico-docker/calico/internal/agent"
	"github.com/calico-docker/calico/internal/pki"
)

func hostIPForJoin(flag string) (net.IP, error) { return agent.HostIPv4(flag) }

// newNodeTokenCmd manages join tokens on the first host (the one holding
// the cluster CA key).
func newNodeTokenCmd() *cobra.Command {
	var dir string
	cmd := &cobra.Command{
		Use:   "token",
		Short: "Create, list and revoke the tokens other hosts join the datastore with (on the first host)",
		Long: `A join token has the form K10<sha256 of the cluster CA>::<id>:<secret>. A joining
host pins the CA by that hash before it sends the secret, and receives its own
client certificate signed by the cluster CA. Only a hash of the secret is
stored (` + pki.Dir + `/` + pki.TokensFile + `); revoking a token stops new joins with it
(hosts that already joined keep their certificates).`,
	}
	cmd.PersistentFlags().StringVar(&dir, "pki-dir", pki.Dir, "the datastore credentials directory")
	var desc string
	var ttl time.Duration
	create := &cobra.Command{
		Use:   "create",
		Short: "Create a join token and print it (the secret is shown only this once)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if ttl < 0 {
				return fmt.Errorf("invalid --ttl %v: want 0 (no expiry) or a positive duration", ttl)
			}
			t, err := pki.CreateToken(pki.Paths{Dir: dir}, desc, ttl)
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), t.String())
			return nil
		},
	}
	create.Flags().StringVar(&desc, "description", "", "what the token is for")
	create.Flags().DurationVar(&ttl, "ttl", 0, "how long the token is valid (0: until revoked)")
	list := &cobra.Command{
		Use:   "list",
		Short: "List the join tokens (ids, not secrets)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ts, err := pki.ListTokens(pki.Paths{Dir: dir})
			if err != nil {
				return err
			}
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "ID\tCREATED\tEXPIRES\tDESCRIPTION")
			for _, t := range ts {
				exp := "never"
				if !t.Expires.IsZero() {
					exp = t.Expires.Format(time.RFC3339)
				}
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", t.ID, t.Created.Format(time.RFC3339), exp, t.Description)
			}
			return w.Flush()
		},
	}
	revoke := &cobra.Command{
		Use:   "revoke ID",
		Short: "Revoke a join token: joins with it are refused from now on",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := pki.RevokeToken(pki.Paths{Dir: dir}, args[0]); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "token %s revoked\n", args[0])
			return nil
		},
	}
	cmd.AddCommand(create, list, revoke)
	return cmd
}
