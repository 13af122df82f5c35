package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"text/template"

	"github.com/spf13/cobra"

	"github.com/calico-docker/calico/internal/api"
	"github.com/calico-docker/calico/internal/datastore"
)

// calicoctl's commands and formats: patch, label, the go-template and
// custom-columns outputs of get, and the command tree a binary invoked as
// "calicoctl" shows.

func init() {
	register(newPatchCmd)
	register(newLabelCmd)
}

// printWarnings prints each document's no-effect warnings (see
// api.ValidateWarn) to w.
func printWarnings(w io.Writer, docs []api.Document) {
	for _, d := range docs {
		for _, msg := range d.Warnings {
			fmt.Fprintf(w, "warning: %s: %s\n", api.Ident(d.Resource), msg)
		}
	}
}

// checkOutputFormat accepts calicoctl's output formats of get.
func checkOutputFormat(output string) error {
	switch output {
	case "ps", "wide", "yaml", "json", "name":
		return nil
	}
	key, val, _ := strings.Cut(output, "=")
	switch key {
	case "go-template":
		if val == "" {
			return errors.New("-o go-template=TEMPLATE: need to specify a template")
		}
		return nil
	case "go-template-file":
		if val == "" {
			return errors.New("-o go-template-file=FILE: need to specify a template file")
		}
		return nil
	case "custom-columns":
		if val == "" {
			return errors.New("-o custom-columns=COL,...: need to specify at least one column")
		}
		return nil
	}
	return fmt.Errorf("unknown output format %q: want ps, wide, yaml, json, name, custom-columns=COLS, go-template=TEMPLATE or go-template-file=FILE", output)
}

// templateList is what a go-template sees for a listing: the Go field
// names of Calico's list types (.Items, .ListMeta.ResourceVersion).
type templateList struct {
	api.TypeMeta
	ListMeta struct{ ResourceVersion string }
	Items    []api.Resource
}

// printCalicoctlFormat prints the custom-columns and go-template outputs;
// handled is false for any other format.
func printCalicoctlFormat(ctx context.Context, w io.Writer, st datastore.Store, q getQuery, items []api.Resource, rev int64, output string) (handled bool, err error) {
	key, val, _ := strings.Cut(output, "=")
	switch key {
	case "go-template", "go-template-file":
		text := val
		if key == "go-template-file" {
			b, err := os.ReadFile(val)
			if err != nil {
				return true, fmt.Errorf("-o go-template-file: %w", err)
			}
			text = string(b)
		}
		return true, executeTemplate(ctx, w, st, q, items, rev, text)
	case "custom-columns":
		return true, printCustomColumns(ctx, w, st, q, items, strings.Split(val, ","))
	}
	return false, nil
}

// executeTemplate runs a go-template as calicoctl does: on a list of the
// resources got by name, or of one list when none was named.
func executeTemplate(ctx context.Context, w io.Writer, st datastore.Store, q getQuery, items []api.Resource, rev int64, text string) error {
	funcs := template.FuncMap{
		"join":            func(items any, sep string) string { return joinAndTruncate(items, sep, 0) },
		"joinAndTruncate": joinAndTruncate,
		"config": func(name string) (string, error) {
			if strings.EqualFold(name, "asnumber") {
				return clusterASNumber(ctx, st), nil
			}
			return "", fmt.Errorf("config %q: only \"asnumber\" is known", name)
		},
	}
	tmpl, err := template.New("get").Funcs(funcs).Parse(text)
	if err != nil {
		return fmt.Errorf("-o go-template: %w", err)
	}
	var data []any
	if len(q.names) > 0 {
		for _, r := range items {
			data = append(data, r)
		}
	} else {
		l := &templateList{TypeMeta: api.TypeMeta{Kind: q.kind.Kind + "List", APIVersion: api.APIVersion}, Items: items}
		l.ListMeta.ResourceVersion = strconv.FormatInt(rev, 10)
		data = []any{l}
	}
	// Execute into a buffer: a template that fails half way prints nothing.
	var buf bytes.Buffer
	if err := tmpl.Execute(&buf, data); err != nil {
		return fmt.Errorf("-o go-template: %w", err)
	}
	_, err = w.Write(buf.Bytes())
	return err
}

// joinAndTruncate joins a list (or a map, as sorted key=value) with sep,
// cutting the result to maxLen characters with "..." when maxLen > 0.
func joinAndTruncate(items any, sep string, maxLen int) string {
	if items == nil {
		return ""
	}
	v := reflect.ValueOf(items)
	var parts []string
	switch v.Kind() {
	case reflect.Map:
		for _, k := range v.MapKeys() {
			parts = append(parts, fmt.Sprintf("%v=%v", k.Interface(), v.MapIndex(k).Interface()))
		}
		sort.Strings(parts)
	case reflect.Slice, reflect.Array:
		for i := 0; i < v.Len(); i++ {
			parts = append(parts, fmt.Sprint(v.Index(i).Interface()))
		}
	default:
		parts = []string{fmt.Sprint(items)}
	}
	s := strings.Join(parts, sep)
	if maxLen > 3 && len(s) > maxLen {
		s = s[:maxLen-3] + "..."
	}
	return s
}

// printCustomColumns prints the named columns of the kind's ps and wide
// tables.
func printCustomColumns(ctx context.Context, w io.Writer, st datastore.Store, q getQuery, items []api.Resource, names []string) error {
	byHeader := map[string]column{}
	var valid []string
	for _, wide := range []bool{false, true} {
		for _, c := range tableColumns(ctx, st, q.kind.Kind, wide) {
			if _, ok := byHeader[c.header]; !ok {
				valid = append(valid, c.header)
			}
			byHeader[c.header] = c
		}
	}
	var cols []column
	if q.kind.Namespaced && q.all {
		cols = append(cols, column{"NAMESPACE", func(r api.Resource) string { return r.GetObjectMeta().Namespace }})
	}
	for _, n := range names {
		c, ok := byHeader[strings.ToUpper(strings.TrimSpace(n))]
		if !ok {
			return fmt.Errorf("unknown heading %s, valid values are: %s", n, strings.Join(valid, ", "))
		}
		cols = append(cols, c)
	}
	return writeTable(w, cols, items)
}

// getOne reads one resource by the name a user gives.
func getOne(ctx context.Context, st datastore.Store, ki api.KindInfo, namespace, name string) (api.Resource, error) {
	q := getQuery{kind: ki, names: []string{name}, namespace: namespace}
	items, _, err := getResources(ctx, st, q)
	if err != nil {
		return nil, err
	}
	if len(items) != 1 {
		return nil, fmt.Errorf("%s %s not found", ki.Kind, name)
	}
	return items[0], nil
}

// replaceFromJSON validates a whole resource given as JSON and replaces
// the stored one with it (its resourceVersion guards against a concurrent
// change).
func replaceFromJSON(ctx context.Context, st datastore.Store, data []byte) ([]api.Document, error) {
	docs, err := api.DecodeAndValidate(data)
	if err != nil {
		return nil, err
	}
	if _, err := writeResources(ctx, st, docs, modeReplace, false); err != nil {
		return nil, err
	}
	return docs, nil
}

func newPatchCmd() *cobra.Command {
	var patch, patchType, namespace string
	cmd := &cobra.Command{
		Use:   "patch KIND NAME -p PATCH",
		Short: "Change fields of one resource in place (a JSON merge patch)",
		Long: `Change fields of one resource in place, as calicoctl patch does: PATCH is a
JSON object merged into the resource (RFC 7386: objects merge, lists and
values replace, null removes a field), e.g.

  calico patch node node-0 -p '{"spec":{"bgp":{"routeReflectorClusterID":"224.0.0.1"}}}'

The result is validated like a manifest, and written only if the resource
did not change meanwhile. --type strategic (calicoctl's default) and merge
are the same for Calico's resources; json (RFC 6902) is not implemented,
as in calicoctl.`,
		Args: cobra.ExactArgs(2),
	}
	cmd.Flags().StringVarP(&patch, "patch", "p", "", "the JSON merge patch")
	cmd.Flags().StringVarP(&patchType, "type", "t", "strategic", "patch type: strategic or merge (the same here)")
	cmd.Flags().StringVarP(&namespace, "namespace", "n", api.DefaultNamespace, "namespace of namespaced kinds")
	cfg := addDatastoreFlags(cmd)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		ki, err := api.LookupKind(args[0])
		if err != nil {
			return err
		}
		switch patchType {
		case "strategic", "merge":
		case "json":
			return errors.New("--type json (JSON Patch, RFC 6902) is not implemented (nor is it in calicoctl): use a merge patch")
		default:
			return fmt.Errorf("--type %q: want strategic or merge", patchType)
		}
		if strings.TrimSpace(patch) == "" {
			return errors.New("--patch is required: a JSON object such as '{\"spec\":{...}}'")
		}
		p, err := parseJSON([]byte(patch))
		if err != nil {
			return fmt.Errorf("--patch: invalid JSON: %w", err)
		}
		if _, ok := p.(map[string]any); !ok {
			return errors.New("--patch: want a JSON object")
		}
		st, err := openStoreForWrite(cmd.Context(), cfg)
		if err != nil {
			return err
		}
		defer st.Close()
		r, err := getOne(cmd.Context(), st, ki, namespace, args[1])
		if err != nil {
			return err
		}
		cur, err := api.MarshalResource(r)
		if err != nil {
			return err
		}
		tree, err := parseJSON(cur)
		if err != nil {
			return err
		}
		orig, _ := parseJSON(cur) // mergePatch changes tree in place
		merged := mergePatch(tree, p)
		if err := sameIdentity(orig, merged); err != nil {
			return fmt.Errorf("--patch: %w", err)
		}
		data, err := json.Marshal(merged)
		if err != nil {
			return err
		}
		docs, err := replaceFromJSON(cmd.Context(), st, data)
		if err != nil {
			return fmt.Errorf("failed to patch %s: %w", api.Ident(r), err)
		}
		fmt.Fprintf(cmd.OutOrStdout(), "Successfully patched 1 '%s' resource\n", ki.Kind)
		printWarnings(cmd.ErrOrStderr(), docs)
		return nil
	}
	return cmd
}

func parseJSON(b []byte) (any, error) {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return nil, err
	}
	if d.More() {
		return nil, errors.New("more than one JSON value")
	}
	return v, nil
}

// mergePatch applies an RFC 7386 merge patch to target.
func mergePatch(target, patch any) any {
	p, ok := patch.(map[string]any)
	if !ok {
		return patch
	}
	t, ok := target.(map[string]any)
	if !ok {
		t = map[string]any{}
	}
	for k, v := range p {
		if v == nil {
			delete(t, k)
			continue
		}
		t[k] = mergePatch(t[k], v)
	}
	return t
}

// sameIdentity refuses a patch that changes what the resource is.
func sameIdentity(before, after any) error {
	b, _ := before.(map[string]any)
	a, _ := after.(map[string]any)
	for _, k := range []string{"kind", "apiVersion"} {
		if !reflect.DeepEqual(a[k], b[k]) {
			return fmt.Errorf("%s cannot be changed", k)
		}
	}
	bm, _ := b["metadata"].(map[string]any)
	am, _ := a["metadata"].(map[string]any)
	for _, k := range []string{"name", "namespace"} {
		if !reflect.DeepEqual(am[k], bm[k]) {
			return fmt.Errorf("metadata.%s cannot be changed", k)
		}
	}
	return nil
}

func newLabelCmd() *cobra.Command {
	var namespace string
	var overwrite, remove bool
	cmd := &cobra.Command{
		Use:   "label KIND NAME (KEY=VALUE [--overwrite] | KEY --remove | KEY-)",
		Short: "Set, change or remove a label of one resource",
		Long: `Set, change or remove a label of one resource, as calicoctl label does:

  calico label nodes node1 cluster=frontend          (fails if cluster is set to another value)
  calico label nodes node1 cluster=backend --overwrite
  calico label nodes node1 cluster --remove          (or: cluster-)`,
		Args: cobra.ExactArgs(3),
	}
	cmd.Flags().StringVarP(&namespace, "namespace", "n", api.DefaultNamespace, "namespace of namespaced kinds")
	cmd.Flags().BoolVar(&overwrite, "overwrite", false, "replace the value of a label that is already set")
	cmd.Flags().BoolVar(&remove, "remove", false, "remove the label KEY")
	cfg := addDatastoreFlags(cmd)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		kindArg, name, arg := args[0], args[1], args[2]
		ki, err := api.LookupKind(kindArg)
		if err != nil {
			return err
		}
		if overwrite && remove {
			return errors.New("--overwrite and --remove cannot be used together")
		}
		var key, value string
		switch {
		case remove:
			key = arg
			if strings.Contains(key, "=") {
				return fmt.Errorf("--remove takes a label key, not %q", arg)
			}
		case !strings.Contains(arg, "=") && strings.HasSuffix(arg, "-"):
			remove, key = true, strings.TrimSuffix(arg, "-")
		default:
			kv := strings.Split(arg, "=")
			if len(kv) != 2 {
				return fmt.Errorf("invalid label %s: want KEY=VALUE, KEY --remove or KEY-", arg)
			}
			key, value = kv[0], kv[1]
		}
		st, err := openStoreForWrite(cmd.Context(), cfg)
		if err != nil {
			return err
		}
		defer st.Close()
		r, err := getOne(cmd.Context(), st, ki, namespace, name)
		if err != nil {
			return err
		}
		m := r.GetObjectMeta()
		if m.Labels == nil {
			m.Labels = map[string]string{}
		}
		old, had := m.Labels[key]
		switch {
		case remove && !had:
			return fmt.Errorf("cannot remove label of %s %s, key %s does not exist", kindArg, name, key)
		case remove:
			delete(m.Labels, key)
		case had && old != value && !overwrite:
			return fmt.Errorf("failed to update label of %s %s, key %s is already present. please use '--overwrite' to set a new value", kindArg, name, key)
		default:
			m.Labels[key] = value
		}
		data, err := api.MarshalResource(r)
		if err != nil {
			return err
		}
		if _, err := replaceFromJSON(cmd.Context(), st, data); err != nil {
			return fmt.Errorf("failed to update %s %s, label not changed: %w", kindArg, name, err)
		}
		out := cmd.OutOrStdout()
		switch {
		case remove:
			fmt.Fprintf(out, "Successfully removed label %s from %s %s\n", key, kindArg, name)
		case had:
			fmt.Fprintf(out, "Successfully updated label %s on %s %s\n", key, kindArg, name)
		default:
			fmt.Fprintf(out, "Successfully set label %s on %s %s\n", key, kindArg, name)
		}
		return nil
	}
	return cmd
}

// ---- calicoctl mode ----

// calicoctlTree is calicoctl's command tree: its top-level commands and,
// where this project's command has more, the subcommands calicoctl has.
var calicoctlTree = map[string][]string{
	"create": nil, "replace": nil, "apply": nil, "delete": nil, "get": nil,
	"patch": nil, "label": nil, "validate": nil, "version": nil,
	"ipam": {"check", "release", "show", "configure"},
	"node": {"run", "status", "diags", "checksystem"},
}

// IsCalicoctl reports whether the program was invoked as calicoctl (its
// argv[0] basename, e.g. through a symlink).
func IsCalicoctl(argv0 string) bool {
	base := argv0
	if i := strings.LastIndexByte(base, '/'); i >= 0 {
		base = base[i+1:]
	}
	return base == "calicoctl"
}

// NewCalicoctlRoot is the command tree of the binary invoked as calicoctl:
// calicoctl's commands with calicoctl's flags; this project's own commands
// (lab, container, datastore, selector, ...) are left out.
func NewCalicoctlRoot() *cobra.Command {
	root := &cobra.Command{
		Use:           "calicoctl",
		Short:         "calicoctl: manage Calico resources and IPAM in the etcd datastore",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	for _, f := range registered {
		c := f()
		subs, ok := calicoctlTree[c.Name()]
		if !ok {
			continue
		}
		if subs != nil {
			for _, sc := range c.Commands() {
				if !contains(subs, sc.Name()) {
					c.RemoveCommand(sc)
				}
			}
		}
		root.AddCommand(c)
	}
	return root
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
