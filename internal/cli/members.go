package cli

import (
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/calico-docker/calico/internal/datastore"
)

func newDatastoreMemberCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "member",
		Short: "List or remove the members of the etcd cluster",
	}
	cfg := addDatastoreFlags(cmd)
	list := &cobra.Command{
		Use:   "list",
		Short: "List the etcd members (voting members and learners)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			m, err := openMembers(cmd, cfg)
			if err != nil {
				return err
			}
			defer m.Close()
			ms, err := m.List(cmd.Context())
			if err != nil {
				return err
			}
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "NAME\tID\tROLE\tPEER URLS\tCLIENT URLS")
			for _, x := range ms {
				role := "voter"
				if x.Learner {
					role = "learner"
				}
				name := x.Name
				if name == "" {
					name = "(not started)"
				}
				fmt.Fprintf(w, "%s\t%x\t%s\t%s\t%s\n", name, x.ID, role, strings.Join(x.PeerURLs, ","), strings.Join(x.ClientURLs, ","))
			}
			return w.Flush()
		},
	}
	remove := &cobra.Command{
		Use:   "remove NAME",
		Short: "Remove a member (by node name, or hex ID): its host stays a datastore client",
		Long: `Remove a member from the etcd cluster. Its etcd stops; when its node restarts
it keeps the old data aside and runs as a datastore client. The last voting
member cannot be removed.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			m, err := openMembers(cmd, cfg)
			if err != nil {
				return err
			}
			defer m.Close()
			x, err := m.Remove(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "member %s (%x) removed\n", x.Name, x.ID)
			return nil
		},
	}
	cmd.AddCommand(list, remove)
	return cmd
}

// openMembers checks that the datastore answers (clear errors for a wrong
// endpoint or TLS), then opens the membership API.
func openMembers(cmd *cobra.Command, cfg *datastore.Config) (*datastore.Members, error) {
	st, err := openStore(cmd.Context(), cfg)
	if err != nil {
		return nil, err
	}
	st.Close()
	return datastore.NewMembers(*cfg)
}
