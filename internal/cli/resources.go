package cli

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	yaml "go.yaml.in/yaml/v2"

	"github.com/calico-docker/calico/internal/api"
	"github.com/calico-docker/calico/internal/datastore"
	"github.com/calico-docker/calico/internal/resources"
)

// The resource commands follow calicoctl: apply, create, replace, delete,
// get and validate, on projectcalico.org/v3 manifests. Every write is all or
// nothing: the whole manifest is decoded, defaulted and validated before the
// datastore is contacted, then every change goes into one transaction whose
// conditions (key absent, or mod revision unchanged since it was read) make
// a concurrent writer fail it rather than interleave with it.

func init() {
	register(func() *cobra.Command { return newWriteCmd(modeApply) })
	register(func() *cobra.Command { return newWriteCmd(modeCreate) })
	register(func() *cobra.Command { return newWriteCmd(modeReplace) })
	register(newDeleteCmd)
	register(newGetCmd)
	register(newValidateCmd)
}

type writeMode int

const (
	modeApply   = writeMode(resources.ModeApply)
	modeCreate  = writeMode(resources.ModeCreate)
	modeReplace = writeMode(resources.ModeReplace)
)

func (m writeMode) verb() string { return [...]string{"apply", "create", "replace"}[m] }
func (m writeMode) past() string { return [...]string{"applied", "created", "replaced"}[m] }

// readManifest reads -f FILE, or standard input for "-".
func readManifest(cmd *cobra.Command, file string) ([]byte, error) {
	if file == "" {
		return nil, errors.New("a manifest is required: -f FILE, or -f - for standard input")
	}
	if file == "-" {
		data, err := io.ReadAll(cmd.InOrStdin())
		if err != nil {
			return nil, fmt.Errorf("read standard input: %w", err)
		}
		return data, nil
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("read manifest: %w", err)
	}
	return data, nil
}

func newWriteCmd(mode writeMode) *cobra.Command {
	var file string
	var skipExists bool
	short := map[writeMode]string{
		modeApply:   "Create or update resources from a manifest",
		modeCreate:  "Create resources from a manifest (fails if any exists)",
		modeReplace: "Replace existing resources from a manifest (fails if any is missing)",
	}[mode]
	cmd := &cobra.Command{
		Use:   mode.verb() + " -f FILE",
		Short: short,
		Long: short + `.

The manifest is YAML (documents separated by "---") or JSON, and may hold a
List or <Kind>List. Every document is validated first; then all changes are
written in one transaction, so either all of them take effect or none does.
A resource that carries metadata.resourceVersion is only written if it still
has that version in the datastore.`,
		Args: cobra.NoArgs,
	}
	cmd.Flags().StringVarP(&file, "filename", "f", "", `manifest to read ("-" for standard input)`)
	if mode == modeCreate {
		cmd.Flags().BoolVar(&skipExists, "skip-exists", false, "skip resources that already exist instead of failing")
	}
	cfg := addDatastoreFlags(cmd)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		data, err := readManifest(cmd, file)
		if err != nil {
			return err
		}
		docs, err := api.DecodeAndValidate(data)
		if err != nil {
			return err
		}
		st, err := openStoreForWrite(cmd.Context(), cfg)
		if err != nil {
			return err
		}
		defer st.Close()
		res, err := writeResources(cmd.Context(), st, docs, mode, skipExists)
		if err != nil {
			return err
		}
		fmt.Fprintln(cmd.OutOrStdout(), summary(res, mode.past()))
		printWarnings(cmd.ErrOrStderr(), docs)
		return nil
	}
	return cmd
}

// summary prints calicoctl's line: "Successfully applied 3 'NetworkPolicy'
// resource(s)" when one kind was involved, without the kind otherwise.
func summary(r *resources.Result, past string) string {
	var s string
	if len(r.Kinds) == 1 {
		for k := range r.Kinds {
			s = fmt.Sprintf("Successfully %s %d '%s' resource(s)", past, r.Handled, k)
		}
	} else {
		s = fmt.Sprintf("Successfully %s %d resource(s)", past, r.Handled)
	}
	if r.Skipped > 0 {
		s += fmt.Sprintf(" (%d skipped)", r.Skipped)
	}
	return s
}

// writeResources applies validated documents in one transaction (see
// resources.Client.Write).
func writeResources(ctx context.Context, st datastore.Store, docs []api.Document, mode writeMode, skipExists bool) (*resources.Result, error) {
	return resources.New(st).Write(ctx, docs, resources.Mode(mode), skipExists)
}

// ---- delete ----

func newDeleteCmd() *cobra.Command {
	var file, namespace string
	var skipNotExists bool
	cmd := &cobra.Command{
		Use:   "delete (-f FILE | KIND NAME...)",
		Short: "Delete resources named in a manifest or on the command line",
		Long: `Delete resources named in a manifest (-f FILE, "-" for standard input) or
given as KIND NAME... (calicoctl's kind names: ippool, gnp, wep, ...). All
deletions happen in one transaction; a missing resource is an error unless
--skip-not-exists is given.`,
	}
	cmd.Flags().StringVarP(&file, "filename", "f", "", `manifest naming the resources to delete ("-" for standard input)`)
	cmd.Flags().StringVarP(&namespace, "namespace", "n", api.DefaultNamespace, "namespace of namespaced resources named on the command line")
	cmd.Flags().BoolVar(&skipNotExists, "skip-not-exists", false, "succeed for resources that do not exist")
	cfg := addDatastoreFlags(cmd)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		var docs []api.Document
		switch {
		case file != "" && len(args) > 0:
			return errors.New("give either -f FILE or KIND NAME..., not both")
		case file != "":
			data, err := readManifest(cmd, file)
			if err != nil {
				return err
			}
			decoded, err := api.DecodeDocuments(data)
			if err != nil {
				return err
			}
			for _, d := range decoded {
				api.Default(d.Resource)
				if d.Resource.GetObjectMeta().Name == "" {
					return d.Error(errors.New("metadata.name: name is required"))
				}
			}
			docs = decoded
		case len(args) >= 2:
			ki, err := api.LookupKind(args[0])
			if err != nil {
				return err
			}
			for i, name := range args[1:] {
				r, _ := api.New(ki.Kind)
				r.GetObjectMeta().Name = name
				if ki.Namespaced {
					r.GetObjectMeta().Namespace = namespace
				}
				docs = append(docs, api.Document{Resource: r, Document: i + 1})
			}
		default:
			return errors.New("give -f FILE, or a kind and at least one name (e.g. delete gnp allow-web)")
		}
		st, err := openStoreForWrite(cmd.Context(), cfg)
		if err != nil {
			return err
		}
		defer st.Close()
		res, err := deleteResources(cmd.Context(), st, docs, skipNotExists, file == "")
		if err != nil {
			return err
		}
		fmt.Fprintln(cmd.OutOrStdout(), summary(res, "deleted"))
		return nil
	}
	return cmd
}

// deleteResources deletes in one transaction, each key only at the revision
// it was read at (or the one the manifest names).
func deleteResources(ctx context.Context, st datastore.Store, docs []api.Document, skipNotExists, fromArgs bool) (*resources.Result, error) {
	return resources.New(st).DeleteAll(ctx, docs, skipNotExists, fromArgs)
}

// ---- get ----

func newGetCmd() *cobra.Command {
	var namespace, output string
	var allNamespaces bool
	cmd := &cobra.Command{
		Use:   "get KIND [NAME...]",
		Short: "Show resources",
		Long: `Show resources of one kind, all of them or those named. KIND is any of
calicoctl's names (ippool, ippools, pool, profile, networkpolicy, policy, np,
globalnetworkpolicy, gnp, workloadendpoint, wep, hostendpoint, hep, node,
bgppeer, bgpconfig, felixconfig, ...), case-insensitive.

Output (-o): ps (a table, the default), wide (a table with more columns),
yaml, json (a <Kind>List when listing; applies back unchanged), name,
custom-columns=NAME,CIDR,... (the named columns of the ps and wide tables),
go-template=TEMPLATE and go-template-file=FILE (as calicoctl: the template
gets a list of one value, the resource or a list with .Items, and the Go
field names: {{range .}}{{range .Items}}{{.ObjectMeta.Name}} {{end}}{{end}};
functions join, joinAndTruncate and config "asnumber").`,
		Args: cobra.MinimumNArgs(1),
	}
	cmd.Flags().StringVarP(&namespace, "namespace", "n", api.DefaultNamespace, "namespace of namespaced kinds")
	cmd.Flags().BoolVarP(&allNamespaces, "all-namespaces", "A", false, "list namespaced kinds across all namespaces")
	cmd.Flags().StringVarP(&output, "output", "o", "ps", "output format: ps, wide, yaml, json, name, custom-columns=COL,..., go-template=TEMPLATE or go-template-file=FILE")
	cfg := addDatastoreFlags(cmd)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		ki, err := api.LookupKind(args[0])
		if err != nil {
			return err
		}
		if err := checkOutputFormat(output); err != nil {
			return err
		}
		names := args[1:]
		if allNamespaces && len(names) > 0 && ki.Namespaced {
			return errors.New("a resource cannot be retrieved by name across all namespaces: use -n NAMESPACE")
		}
		st, err := openStore(cmd.Context(), cfg)
		if err != nil {
			return err
		}
		defer st.Close()
		q := getQuery{kind: ki, names: names, namespace: namespace, all: allNamespaces}
		items, rev, err := getResources(cmd.Context(), st, q)
		if err != nil {
			return err
		}
		sortAsCalicoctl(ki.Kind, items)
		w := bufio.NewWriter(cmd.OutOrStdout())
		if err := printResources(cmd.Context(), w, st, q, items, rev, output); err != nil {
			return err
		}
		return w.Flush()
	}
	return cmd
}

type getQuery struct {
	kind      api.KindInfo
	names     []string
	namespace string
	all       bool
}

// getResources reads the named resources, or lists the kind (in one
// namespace, or all of them). rev is the store revision of a listing.
func getResources(ctx context.Context, st datastore.Store, q getQuery) ([]api.Resource, int64, error) {
	c := resources.New(st)
	ns := ""
	if q.kind.Namespaced {
		ns = q.namespace
	}
	if len(q.names) > 0 {
		var items []api.Resource
		var missing []string
		var rev int64
		for _, name := range q.names {
			r, err := c.Get(ctx, q.kind.Kind, ns, name)
			if errors.Is(err, datastore.ErrNotFound) {
				id := name
				if ns != "" {
					id = ns + "/" + name
				}
				missing = append(missing, fmt.Sprintf("%s %s not found", q.kind.Kind, id))
				continue
			}
			if err != nil {
				return nil, 0, err
			}
			if v, err := strconv.ParseInt(r.GetObjectMeta().ResourceVersion, 10, 64); err == nil && !builtinProfile(r) {
				rev = max(rev, v)
			}
			items = append(items, r)
		}
		if len(missing) > 0 {
			return nil, 0, errors.New(strings.Join(missing, "\n"))
		}
		return items, rev, nil
	}
	if q.all {
		ns = ""
	}
	return c.List(ctx, q.kind.Kind, ns)
}

// sortAsCalicoctl puts a listing in calicoctl's order where it is not the
// key order: tiers by order, those without one last, so the list reads in
// the order policies are evaluated.
func sortAsCalicoctl(kind string, items []api.Resource) {
	if kind != api.KindTier {
		return
	}
	slices.SortStableFunc(items, func(a, b api.Resource) int {
		oa, ob := a.(*api.Tier).Spec.Order, b.(*api.Tier).Spec.Order
		switch {
		case oa == nil && ob == nil:
			return 0
		case oa == nil:
			return 1
		case ob == nil:
			return -1
		}
		return cmp.Compare(*oa, *ob)
	})
}

func printResources(ctx context.Context, w io.Writer, st datastore.Store, q getQuery, items []api.Resource, rev int64, output string) error {
	switch output {
	case "yaml", "json":
		// Each resource with every field it was stored with (api.MarshalResource).
		raws := make([]json.RawMessage, len(items))
		for i, r := range items {
			b, err := api.MarshalResource(r)
			if err != nil {
				return fmt.Errorf("encode %s: %w", api.Ident(r), err)
			}
			raws[i] = b
		}
		var obj any
		if len(q.names) == 1 {
			obj = raws[0]
		} else {
			obj = struct {
				APIVersion string            `json:"apiVersion"`
				Kind       string            `json:"kind"`
				Metadata   map[string]any    `json:"metadata"`
				Items      []json.RawMessage `json:"items"`
			}{api.APIVersion, q.kind.Kind + "List", map[string]any{"resourceVersion": strconv.FormatInt(rev, 10)}, raws}
		}
		var out []byte
		var err error
		if output == "json" {
			out, err = json.MarshalIndent(obj, "", "  ")
			out = append(out, '\n')
		} else {
			out, err = marshalYAML(obj)
		}
		if err != nil {
			return err
		}
		_, err = w.Write(out)
		return err
	case "name":
		for _, r := range items {
			fmt.Fprintf(w, "%s/%s\n", strings.ToLower(q.kind.Kind), r.GetObjectMeta().Name)
		}
		return nil
	}
	if handled, err := printCalicoctlFormat(ctx, w, st, q, items, rev, output); handled {
		return err
	}
	cols := tableColumns(ctx, st, q.kind.Kind, output == "wide")
	if q.kind.Namespaced && q.all {
		cols = append([]column{{"NAMESPACE", func(r api.Resource) string { return r.GetObjectMeta().Namespace }}}, cols...)
	}
	return writeTable(w, cols, items)
}

// writeTable prints items as a table of cols, as calicoctl aligns them.
func writeTable(w io.Writer, cols []column, items []api.Resource) error {
	tw := tabwriter.NewWriter(w, 0, 8, 3, ' ', 0)
	heads := make([]string, len(cols))
	for i, c := range cols {
		heads[i] = c.header
	}
	fmt.Fprintln(tw, strings.Join(heads, "\t"))
	for _, r := range items {
		vals := make([]string, len(cols))
		for i, c := range cols {
			vals[i] = c.value(r)
		}
		fmt.Fprintln(tw, strings.Join(vals, "\t"))
	}
	return tw.Flush()
}

type column struct {
	header string
	value  func(api.Resource) string
}

func nameCol() column {
	return column{"NAME", func(r api.Resource) string { return r.GetObjectMeta().Name }}
}

func orderString(o *float64) string {
	if o == nil {
		return ""
	}
	return strconv.FormatFloat(*o, 'f', -1, 64)
}

// tableColumns are calicoctl's columns for each kind (ps and wide).
func tableColumns(ctx context.Context, st datastore.Store, kind string, wide bool) []column {
	join := func(s []string) string { return strings.Join(s, ",") }
	switch kind {
	case api.KindIPPool:
		pool := func(r api.Resource) *api.IPPoolSpec { return &r.(*api.IPPool).Spec }
		mode := func(m string) string {
			if m == "" {
				return api.EncapNever
			}
			return m
		}
		cidr := column{"CIDR", func(r api.Resource) string { return pool(r).CIDR }}
		sel := column{"SELECTOR", func(r api.Resource) string { return pool(r).NodeSelector }}
		if !wide {
			return []column{nameCol(), cidr, sel}
		}
		return []column{nameCol(), cidr,
			{"NAT", func(r api.Resource) string { return strconv.FormatBool(pool(r).NATOutgoing) }},
			{"IPIPMODE", func(r api.Resource) string { return mode(pool(r).IPIPMode) }},
			{"VXLANMODE", func(r api.Resource) string { return mode(pool(r).VXLANMode) }},
			{"DISABLED", func(r api.Resource) string { return strconv.FormatBool(pool(r).Disabled) }},
			{"DISABLEBGPEXPORT", func(r api.Resource) string { return strconv.FormatBool(pool(r).DisableBGPExport) }},
			sel,
			{"ASSIGNMENTMODE", func(r api.Resource) string { return pool(r).AssignmentMode }}}
	case api.KindProfile:
		if !wide {
			return []column{nameCol()}
		}
		return []column{nameCol(), {"LABELS", func(r api.Resource) string {
			return labelString(r.(*api.Profile).Spec.LabelsToApply)
		}}}
	case api.KindNetworkPolicy, api.KindGlobalNetworkPolicy:
		spec := func(r api.Resource) *api.PolicySpec {
			if np, ok := r.(*api.NetworkPolicy); ok {
				return &np.Spec
			}
			return &r.(*api.GlobalNetworkPolicy).Spec
		}
		tier := column{"TIER", func(r api.Resource) string {
			if t := spec(r).Tier; t != "" {
				return t
			}
			return api.DefaultTier
		}}
		if !wide {
			return []column{nameCol(), tier}
		}
		return []column{nameCol(), tier,
			{"ORDER", func(r api.Resource) string { return orderString(spec(r).Order) }},
			{"SELECTOR", func(r api.Resource) string { return spec(r).Selector }}}
	case api.KindWorkloadEndpoint:
		wep := func(r api.Resource) *api.WorkloadEndpointSpec { return &r.(*api.WorkloadEndpoint).Spec }
		cols := []column{nameCol(),
			{"WORKLOAD", func(r api.Resource) string {
				if w := wep(r).Workload; w != "" {
					return w
				}
				return wep(r).Pod
			}},
			{"NODE", func(r api.Resource) string { return wep(r).Node }},
			{"NETWORKS", func(r api.Resource) string { return join(wep(r).IPNetworks) }},
			{"INTERFACE", func(r api.Resource) string { return wep(r).InterfaceName }}}
		if !wide {
			// calicoctl's short table has no NAME column for endpoints.
			return cols[1:]
		}
		return append(cols,
			column{"PROFILES", func(r api.Resource) string { return join(wep(r).Profiles) }},
			column{"NATS", func(r api.Resource) string { return joinAndTruncate(wep(r).IPNATs, ",", 0) }})
	case api.KindHostEndpoint:
		hep := func(r api.Resource) *api.HostEndpointSpec { return &r.(*api.HostEndpoint).Spec }
		cols := []column{nameCol(), {"NODE", func(r api.Resource) string { return hep(r).Node }}}
		if wide {
			cols = append(cols,
				column{"INTERFACE", func(r api.Resource) string { return hep(r).InterfaceName }},
				column{"IPS", func(r api.Resource) string { return join(hep(r).ExpectedIPs) }},
				column{"PROFILES", func(r api.Resource) string { return join(hep(r).Profiles) }})
		}
		return cols
	case api.KindNode:
		if !wide {
			return []column{nameCol()}
		}
		defaultAS := clusterASNumber(ctx, st)
		bgp := func(r api.Resource) *api.NodeBGPSpec {
			if b := r.(*api.Node).Spec.BGP; b != nil {
				return b
			}
			return &api.NodeBGPSpec{}
		}
		return []column{nameCol(),
			{"ASN", func(r api.Resource) string {
				if a := bgp(r).ASNumber; a != nil {
					return strconv.FormatUint(uint64(*a), 10)
				}
				if r.(*api.Node).Spec.BGP == nil {
					return ""
				}
				return "(" + defaultAS + ")"
			}},
			{"IPV4", func(r api.Resource) string { return bgp(r).IPv4Address }},
			{"IPV6", func(r api.Resource) string { return bgp(r).IPv6Address }}}
	case api.KindBGPPeer:
		peer := func(r api.Resource) *api.BGPPeerSpec { return &r.(*api.BGPPeer).Spec }
		return []column{nameCol(),
			{"PEERIP", func(r api.Resource) string { return peer(r).PeerIP }},
			{"NODE", func(r api.Resource) string {
				switch p := peer(r); {
				case p.Node != "":
					return p.Node
				case p.NodeSelector != "":
					return p.NodeSelector
				}
				return "(global)"
			}},
			{"ASN", func(r api.Resource) string {
				if a := peer(r).ASNumber; a != 0 {
					return strconv.FormatUint(uint64(a), 10)
				}
				return ""
			}}}
	case api.KindTier:
		return []column{nameCol(), {"ORDER", func(r api.Resource) string {
			if o := r.(*api.Tier).Spec.Order; o != nil {
				return fmt.Sprint(*o) // as calicoctl's template prints it: 1e+06
			}
			return "<nil>"
		}}}
	case api.KindGlobalNetworkSet, api.KindNetworkSet:
		if !wide {
			return []column{nameCol()}
		}
		return []column{nameCol(), {"NETS", func(r api.Resource) string {
			if g, ok := r.(*api.GlobalNetworkSet); ok {
				return joinAndTruncate(g.Spec.Nets, ",", 80)
			}
			return joinAndTruncate(r.(*api.NetworkSet).Spec.Nets, ",", 80)
		}}}
	case api.KindIPReservation:
		if !wide {
			return []column{nameCol()}
		}
		return []column{nameCol(), {"CIDRS", func(r api.Resource) string {
			return joinAndTruncate(r.(*api.IPReservation).Spec.ReservedCIDRs, ",", 80)
		}}}
	case api.KindBGPConfiguration:
		bc := func(r api.Resource) *api.BGPConfigurationSpec { return &r.(*api.BGPConfiguration).Spec }
		return []column{nameCol(),
			{"LOGSEVERITY", func(r api.Resource) string { return bc(r).LogSeverityScreen }},
			{"MESHENABLED", func(r api.Resource) string {
				if m := bc(r).NodeToNodeMeshEnabled; m != nil {
					return strconv.FormatBool(*m)
				}
				return "-"
			}},
			{"ASNUMBER", func(r api.Resource) string {
				if a := bc(r).ASNumber; a != nil {
					return strconv.FormatUint(uint64(*a), 10)
				}
				return "-"
			}}}
	}
	return []column{nameCol()}
}

// clusterASNumber is the AS number nodes without their own use: the
// default BGPConfiguration's, else Calico's default 64512.
func clusterASNumber(ctx context.Context, st datastore.Store) string {
	if r, err := resources.New(st).Get(ctx, api.KindBGPConfiguration, "", "default"); err == nil {
		if a := r.(*api.BGPConfiguration).Spec.ASNumber; a != nil {
			return strconv.FormatUint(uint64(*a), 10)
		}
	}
	return strconv.Itoa(api.DefaultASNumber)
}

func labelString(labels map[string]string) string {
	keys := make([]string, 0, len(labels))
	for k := range labels {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + labels[k]
	}
	return strings.Join(parts, ",")
}

// ---- validate ----

func newValidateCmd() *cobra.Command {
	var file string
	cmd := &cobra.Command{
		Use:   "validate -f FILE",
		Short: "Check a manifest without writing it (no datastore needed)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			data, err := readManifest(cmd, file)
			if err != nil {
				return err
			}
			docs, err := api.DecodeAndValidate(data)
			if err != nil {
				return err
			}
			printWarnings(cmd.ErrOrStderr(), docs)
			fmt.Fprintf(cmd.OutOrStdout(), "Successfully validated %d resource(s)\n", len(docs))
			return nil
		},
	}
	cmd.Flags().StringVarP(&file, "filename", "f", "", `manifest to check ("-" for standard input)`)
	return cmd
}

// marshalYAML writes v as YAML exactly as sigs.k8s.io/yaml.Marshal does
// (JSON field names, sorted keys, integers kept), but converts the JSON with
// encoding/json instead of running it through the YAML parser, which is
// several times slower for long listings.
func marshalYAML(v any) ([]byte, error) {
	j, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	d := json.NewDecoder(bytes.NewReader(j))
	d.UseNumber()
	var tree any
	if err := d.Decode(&tree); err != nil {
		return nil, err
	}
	return yaml.Marshal(yamlValue(tree))
}

func yamlValue(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			x[k] = yamlValue(e)
		}
		return x
	case []any:
		for i, e := range x {
			x[i] = yamlValue(e)
		}
		return x
	case json.Number:
		if i, err := x.Int64(); err == nil {
			return i
		}
		if u, err := strconv.ParseUint(string(x), 10, 64); err == nil {
			return u
		}
		f, _ := x.Float64()
		return f
	}
	return v
}
