package cli

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"
)

// Version is set at build time with -ldflags "-X .../internal/cli.Version=...".
var Version = "dev"

var registered []func() *cobra.Command

// register adds a top-level command constructor; call it from init().
func register(f func() *cobra.Command) { registered = append(registered, f) }

// NewRoot builds the full command tree.
func NewRoot() *cobra.Command {
	root := &cobra.Command{
		Use:           "calico",
		Short:         "Calico-style container networking for Docker",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	for _, f := range registered {
		root.AddCommand(f())
	}
	return root
}

// ExitError carries a specific exit code with an optional message.
type ExitError struct {
	Code int
	Err  error
}

func (e *ExitError) Error() string {
	if e.Err == nil {
		return fmt.Sprintf("exit status %d", e.Code)
	}
	return e.Err.Error()
}

func (e *ExitError) Unwrap() error { return e.Err }

// Execute runs the command line and returns the process exit code.
func Execute() int {
	root := NewRoot()
	if IsCalicoctl(os.Args[0]) {
		root = NewCalicoctlRoot()
	}
	err := root.Execute()
	if err == nil {
		return 0
	}
	var ee *ExitError
	if errors.As(err, &ee) {
		if ee.Err != nil {
			fmt.Fprintln(os.Stderr, "error:", ee.Err)
		}
		return ee.Code
	}
	fmt.Fprintln(os.Stderr, "error:", err)
	return 1
}
