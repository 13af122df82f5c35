package e2e

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/calico-docker/calico/internal/flows"
	"github.com/calico-docker/calico/internal/testutil"
)

// flowLogsOn is the FelixConfiguration switch of flow logs.
const flowLogsOn = `apiVersion: projectcalico.org/v3
kind: FelixConfiguration
metadata: {name: default}
spec: {flowLogsFileEnabled: true}
`

// eventuallyFlow runs `calico flows -o json args...` on host until a
// record satisfies want, calling traffic before each try (the first
// packets may pass before the node logs flows). It returns that record.
func (l *Lab) eventuallyFlow(t *testing.T, host string, traffic func(), want func(r flows.Record) bool, args ...string) flows.Record {
	t.Helper()
	var got flows.Record
	testutil.Eventually(t, 60*time.Second, func() error {
		traffic()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		cmd := l.Cmd(ctx, host, append([]string{l.Bin, "flows", "-o", "json"}, args...)...)
		var stderr strings.Builder
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			return fmt.Errorf("calico flows %s on %s: %v: %s", strings.Join(args, " "), host, err, stderr.String())
		}
		var recs []flows.Record
		if err := json.Unmarshal(out, &recs); err != nil {
			return fmt.Errorf("calico flows -o json: %v: %s", err, out)
		}
		for _, r := range recs {
			if want(r) {
				got = r
				return nil
			}
		}
		return fmt.Errorf("no such flow among %d records (stderr %q):\n%s", len(recs), stderr.String(), out)
	})
	return got
}

// diagsFiles runs `calico node diags` on host and returns the archive's
// files by name.
func (l *Lab) diagsFiles(t *testing.T, host string) map[string]string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "h16-diags.tar.gz")
	l.Calico(host, "node", "diags", "-o", path)
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]string{}
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		files[h.Name] = string(b)
	}
	return files
}

// fileEndingIn returns the content of the one file whose name ends in
// suffix (the archive may put everything under a top directory).
func fileEndingIn(files map[string]string, suffix string) (string, bool) {
	for n, b := range files {
		if strings.HasSuffix(n, suffix) {
			return b, true
		}
	}
	return "", false
}
