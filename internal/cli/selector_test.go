package cli

import (
	"bytes"
	"errors"
	"os/exec"
	"strings"
	"testing"

	"github.com/calico-docker/calico/internal/selector"
	"github.com/calico-docker/calico/internal/testutil"
)

// runRoot runs the command tree in-process with args and returns stdout,
// stderr and the error RunE returned.
func runRoot(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	root := NewRoot()
	var out, errOut bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errOut)
	root.SetArgs(args)
	err := root.Execute()
	return out.String(), errOut.String(), err
}

func TestSelectorMatch(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"role == 'db'", "--labels", "role=db,env=prod"}, "true\n"},
		{[]string{"role == 'db'", "--labels", "role=web"}, "false\n"},
		{[]string{"role != 'db'"}, "true\n"}, // no labels: != matches an absent label
		{[]string{"has(role)", "--labels", ""}, "false\n"},
		{[]string{"tier in {'web','api'} && zone == 'a'", "--labels", "tier=web", "--labels", "zone=a"}, "true\n"},
		{[]string{"projectcalico.org/namespace == 'default'", "--labels", "projectcalico.org/namespace=default"}, "true\n"},
		{[]string{"empty == ''", "--labels", "empty="}, "true\n"},
		{[]string{"a == 'x=y'", "--labels", "a=x=y"}, "true\n"}, // value split at the first '='
		{[]string{"a == 'x' && b == 'y'", "--labels", " a=x , b=y "}, "true\n"},
		{[]string{"", "--labels", "a=b"}, "true\n"},
	}
	for _, tt := range tests {
		out, _, err := runRoot(t, append([]string{"selector", "match"}, tt.args...)...)
		if err != nil {
			t.Errorf("selector match %q: %v", tt.args, err)
			continue
		}
		if out != tt.want {
			t.Errorf("selector match %q printed %q, want %q", tt.args, out, tt.want)
		}
	}
}

func TestSelectorMatchCanonical(t *testing.T) {
	out, errOut, err := runRoot(t, "selector", "match", "(b=='2')&&a in {'1'}", "--canonical", "--labels", "a=1,b=2")
	if err != nil || out != "true\n" || errOut != "canonical: a == \"1\" && b == \"2\"\n" {
		t.Errorf("got %q, %q, %v", out, errOut, err)
	}
}

func TestSelectorMatchErrors(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"role = 'db'", "--labels", "role=db"}, `selector "role = 'db'": at position 5: expected '==' or '!='`},
		{[]string{"role == 'db'", "--labels", "role"}, `invalid --labels entry "role": want key=value`},
		{[]string{"role == 'db'", "--labels", "=db"}, `invalid --labels entry "=db": key "" must be non-empty`},
		{[]string{"role == 'db'", "--labels", "ro le=db"}, `invalid --labels entry "ro le=db"`},
		{[]string{"role == 'db'", "--labels", "a=1,a=2"}, `invalid --labels: key "a" given twice`},
		{[]string{"role", "==", "db"}, "selector match takes exactly one argument, the selector in quotes (got 3)"},
		{[]string{}, "got 0"},
	}
	for _, tt := range tests {
		out, _, err := runRoot(t, append([]string{"selector", "match"}, tt.args...)...)
		if err == nil {
			t.Errorf("selector match %q succeeded with %q", tt.args, out)
			continue
		}
		if !strings.Contains(err.Error(), tt.want) {
			t.Errorf("selector match %q: error %q, want it to contain %q", tt.args, err, tt.want)
		}
		if out != "" {
			t.Errorf("selector match %q printed %q on stdout despite the error", tt.args, out)
		}
	}
	// A bad selector is an ExitError with code 1 wrapping the *ParseError.
	_, _, err := runRoot(t, "selector", "match", "a ==")
	var ee *ExitError
	var pe *selector.ParseError
	if !errors.As(err, &ee) || ee.Code != 1 || !errors.As(err, &pe) || pe.Pos != 4 {
		t.Errorf("bad selector gave %#v", err)
	}
}

// TestSelectorMatchBinary runs the built binary to check exit codes and the
// split between stdout and stderr.
func TestSelectorMatchBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary; skipped with -short")
	}
	bin := testutil.CalicoBin(t)
	tests := []struct {
		args             []string
		code             int
		stdout, inStderr string
	}{
		{[]string{"role == 'db'", "--labels", "role=db"}, 0, "true\n", ""},
		{[]string{"role == 'db'", "--labels", "role=web"}, 0, "false\n", ""},
		{[]string{"role = 'db'"}, 1, "", `error: selector "role = 'db'": at position 5: expected '==' or '!='`},
		{[]string{"role == 'db'", "--labels", "role"}, 1, "", `error: invalid --labels entry "role"`},
	}
	for _, tt := range tests {
		cmd := exec.Command(bin, append([]string{"selector", "match"}, tt.args...)...)
		var out, errOut bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errOut
		err := cmd.Run()
		code := 0
		var xe *exec.ExitError
		if errors.As(err, &xe) {
			code = xe.ExitCode()
		} else if err != nil {
			t.Fatalf("run %q: %v", tt.args, err)
		}
		if code != tt.code || out.String() != tt.stdout || !strings.Contains(errOut.String(), tt.inStderr) {
			t.Errorf("calico selector match %q: exit %d, stdout %q, stderr %q; want exit %d, stdout %q, stderr containing %q",
				tt.args, code, out.String(), errOut.String(), tt.code, tt.stdout, tt.inStderr)
		}
		if tt.code == 0 && errOut.Len() != 0 {
			t.Errorf("calico selector match %q wrote to stderr: %q", tt.args, errOut.String())
		}
	}
}
