package cli

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/spf13/cobra"

	"github.com/calico-docker/calico/internal/agent"
	"github.com/calico-docker/calico/internal/api"
	"github.com/calico-docker/calico/internal/datastore"
	"github.com/calico-docker/calico/internal/flows"
	"github.com/calico-docker/calico/internal/nodectl"
	"github.com/calico-docker/calico/internal/trace"
	"github.com/calico-docker/calico/internal/ui"
)

func init() { register(newUICmd) }

func newUICmd() *cobra.Command {
	var listen, healthAddr, flowsSocket string
	var ds *datastore.Config
	cmd := &cobra.Command{
		Use:   "ui [--listen 127.0.0.1:9400]",
		Short: "Serve a read-only web view of the cluster on loopback",
		Long: `Serve a read-only web view: hosts and BGP sessions, networks and endpoints
with labels, policies in evaluation order, the reachability matrix (each
cell explains its verdict) and this host's denied flows. Everything is
served from the binary. The view listens on loopback only.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := ui.CheckListen(listen); err != nil {
				return err
			}
			st, err := openStore(cmd.Context(), ds)
			if err != nil {
				return err
			}
			defer st.Close()
			src := ui.Source{
				Load: func(ctx context.Context) (*trace.Tracer, *api.FelixConfigurationSpec, error) {
					t, err := trace.Load(ctx, st)
					return t, nil, err
				},
				Health:      func(ctx context.Context) (nodectl.Health, error) { return nodectl.ReadHealth(ctx, healthAddr) },
				FlowsSocket: flowsSocket,
			}
			ln, err := net.Listen("tcp", listen)
			if err != nil {
				return fmt.Errorf("--listen %s: %w", listen, err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Serving the view on http://%s/ (Ctrl-C stops)\n", ln.Addr())
			srv := &http.Server{Handler: ui.Handler(src), ReadHeaderTimeout: 5 * time.Second}
			go func() {
				<-cmd.Context().Done()
				_ = srv.Close()
			}()
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				return err
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&listen, "listen", "127.0.0.1:9400", "loopback address and port to serve on")
	f.StringVar(&healthAddr, "health-addr", agent.DefaultHealthAddr, "this host's node health address (BGP sessions)")
	f.StringVar(&flowsSocket, "flows-socket", flows.DefaultSocket, "this host's node flows socket (denied flows)")
	ds = addDatastoreFlags(cmd)
	return cmd
}
