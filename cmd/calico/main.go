// Command calico is the operator's tool and the node daemon of calico-docker.
package main

import (
	"os"

	"github.com/calico-docker/calico/internal/cli"
)

func main() {
	os.Exit(cli.Execute())
}
