package nodectl

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/moby/moby/client"
)

// Current returns the spec the existing calico-node container was created
// with (running or not); ok is false when there is no such container or it
// was not created by Start.
func Current(ctx context.Context, c *client.Client) (s Spec, ok bool, err error) {
	res, err := c.ContainerInspect(ctx, ContainerName, client.ContainerInspectOptions{})
	if err != nil {
		if strings.Contains(strings.ToLower(err.Error()), "no such container") {
			return Spec{}, false, nil
		}
		return Spec{}, false, fmt.Errorf("inspect %s: %w", ContainerName, err)
	}
	if res.Container.Config == nil {
		return Spec{}, false, nil
	}
	label, found := res.Container.Config.Labels[specLabel]
	if !found || json.Unmarshal([]byte(label), &s) != nil {
		return Spec{}, false, nil
	}
	return s, true, nil
}

// ArgValue returns the value of --flag in args ("--flag value" or
// "--flag=value"), or "".
func ArgValue(args []string, flag string) string {
	for i, a := range args {
		if a == flag && i+1 < len(args) {
			return args[i+1]
		}
		if v, ok := strings.CutPrefix(a, flag+"="); ok {
			return v
		}
	}
	return ""
}
