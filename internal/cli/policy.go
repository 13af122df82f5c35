package cli

import (
	"fmt"
	"net/netip"

	"github.com/calico-docker/calico/internal/datastore"
	"github.com/calico-docker/calico/internal/trace"
	"github.com/spf13/cobra"
)

func init() { register(newPolicyCmd) }

func newPolicyCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "policy",
		Short: "Explain policy: trace a packet, or show who can reach whom",
	}
	cfg := addDatastoreFlags(cmd)
	cmd.AddCommand(newPolicyTraceCmd(cfg), newPolicyMatrixCmd(cfg))
	return cmd
}

// loadTracer reads the datastore into a trace.Tracer.
func loadTracer(cmd *cobra.Command, cfg *datastore.Config) (*trace.Tracer, error) {
	st, err := openStore(cmd.Context(), cfg)
	if err != nil {
		return nil, err
	}
	defer st.Close()
	return trace.Load(cmd.Context(), st)
}

// packetFlags parses --protocol/--port: the protocol defaults to tcp when
// a port is given, else icmp (a ping).
func packetProto(protocol string, port int, portSet bool) (uint8, uint16, error) {
	if port < 0 || port > 65535 {
		return 0, 0, fmt.Errorf("--port %d: want 1-65535", port)
	}
	if protocol == "" {
		if portSet {
			protocol = "tcp"
		} else {
			protocol = "icmp"
		}
	}
	p, err := trace.ParseProto(protocol)
	if err != nil {
		return 0, 0, fmt.Errorf("--protocol: %w", err)
	}
	switch p {
	case 6, 17, 132:
		if !portSet {
			return 0, 0, fmt.Errorf("--port is needed with --protocol %s", protocol)
		}
	default:
		if portSet {
			return 0, 0, fmt.Errorf("--port needs --protocol tcp, udp or sctp, not %s", protocol)
		}
	}
	return p, uint16(port), nil
}

func newPolicyTraceCmd(cfg *datastore.Config) *cobra.Command {
	var src, dst, protocol, output string
	var port, srcPort, icmpType, icmpCode int
	cmd := &cobra.Command{
		Use:   "trace --src EP|IP --dst EP|IP [--protocol P] [--port N]",
		Short: "Show every policy, profile and rule a packet meets, and the verdict",
		Long: `Trace the first packet of a connection through the rules the hosts program:
the egress side of the source endpoint, then the ingress side of the
destination endpoint, computed by the same calculation the node uses.
EP is a container name, an endpoint name or ID (namespace/name); IP may
be any address (one outside the cluster has no side of its own).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if output != "table" && output != "json" {
				return fmt.Errorf("-o %q: want table or json", output)
			}
			if src == "" || dst == "" {
				return fmt.Errorf("--src and --dst are both needed (a container, an endpoint or an IP address)")
			}
			proto, dport, err := packetProto(protocol, port, cmd.Flags().Changed("port"))
			if err != nil {
				return err
			}
			if srcPort < 0 || srcPort > 65535 {
				return fmt.Errorf("--src-port %d: want 0-65535", srcPort)
			}
			if icmpType < -1 || icmpType > 255 || icmpCode < 0 || icmpCode > 255 {
				return fmt.Errorf("--icmp-type/--icmp-code: want 0-255")
			}
			t, err := loadTracer(cmd, cfg)
			if err != nil {
				return err
			}
			se, sa, err := t.Find(src)
			if err != nil {
				return fmt.Errorf("--src: %w", err)
			}
			de, da, err := t.Find(dst)
			if err != nil {
				return fmt.Errorf("--dst: %w", err)
			}
			// An endpoint given by name uses its address of the other side's family.
			if se != nil && !isAddr(src) && de != nil && !isAddr(dst) {
				if a, b, ok := trace.CommonFamily(se, de); ok {
					sa, da = a, b
				}
			} else if se != nil && !isAddr(src) {
				if a, ok := trace.AddrFor(se, da); ok {
					sa = a
				}
			} else if de != nil && !isAddr(dst) {
				if a, ok := trace.AddrFor(de, sa); ok {
					da = a
				}
			}
			if sa.Is4() != da.Is4() {
				return fmt.Errorf("--src %s and --dst %s are of different IP families", sa, da)
			}
			pkt := trace.Packet{Src: sa, Dst: da, Protocol: proto, SrcPort: uint16(srcPort), DstPort: dport}
			if proto == 1 && da.Is6() {
				pkt.Protocol = 58
			}
			if pkt.Protocol == 1 || pkt.Protocol == 58 {
				pkt.ICMPType = 8
				if pkt.Protocol == 58 {
					pkt.ICMPType = 128
				}
				if icmpType >= 0 {
					pkt.ICMPType = uint8(icmpType)
				}
				pkt.ICMPCode = uint8(icmpCode)
			}
			r := t.Trace(pkt)
			if output == "json" {
				return writeJSON(cmd.OutOrStdout(), r)
			}
			r.WriteText(cmd.OutOrStdout())
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&src, "src", "", "source: container, endpoint or IP address")
	f.StringVar(&dst, "dst", "", "destination: container, endpoint or IP address")
	f.StringVar(&protocol, "protocol", "", "tcp, udp, sctp, icmp, icmpv6 or a number (default tcp with --port, else icmp)")
	f.IntVar(&port, "port", 0, "destination port")
	f.IntVar(&srcPort, "src-port", 0, "source port (default unknown: rules on source ports do not match)")
	f.IntVar(&icmpType, "icmp-type", -1, "ICMP type (default echo request)")
	f.IntVar(&icmpCode, "icmp-code", 0, "ICMP code")
	f.StringVarP(&output, "output", "o", "table", "table or json")
	return cmd
}

func isAddr(s string) bool {
	_, err := netip.ParseAddr(s)
	return err == nil
}

func newPolicyMatrixCmd(cfg *datastore.Config) *cobra.Command {
	var network, protocol, output string
	var port int
	cmd := &cobra.Command{
		Use:   "matrix [--network N] [--protocol P] [--port N]",
		Short: "Show which endpoints can reach which (a trace per pair)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if output != "table" && output != "json" {
				return fmt.Errorf("-o %q: want table or json", output)
			}
			proto, dport, err := packetProto(protocol, port, cmd.Flags().Changed("port"))
			if err != nil {
				return err
			}
			t, err := loadTracer(cmd, cfg)
			if err != nil {
				return err
			}
			m := t.Matrix(network, proto, dport)
			if output == "json" {
				return writeJSON(cmd.OutOrStdout(), m)
			}
			if len(m.Endpoints) == 0 {
				fmt.Fprintln(cmd.OutOrStdout(), "no endpoints")
				return nil
			}
			return m.WriteTable(cmd.OutOrStdout())
		},
	}
	f := cmd.Flags()
	f.StringVar(&network, "network", "", "only endpoints of this network (profile)")
	f.StringVar(&protocol, "protocol", "", "tcp, udp, sctp, icmp or a number (default tcp with --port, else icmp)")
	f.IntVar(&port, "port", 0, "destination port")
	f.StringVarP(&output, "output", "o", "table", "table or json")
	return cmd
}
