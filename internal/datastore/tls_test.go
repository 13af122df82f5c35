package datastore_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/calico-docker/calico/internal/datastore"
)

// writeCert signs a certificate for cn with parent (self-signed when parent
// is nil) and writes cert and key as PEM files in dir.
func writeCert(t *testing.T, dir, cn string, isCA bool, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) (*x509.Certificate, *ecdsa.PrivateKey, string, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	if isCA {
		tmpl.IsCA = true
		tmpl.BasicConstraintsValid = true
		tmpl.KeyUsage |= x509.KeyUsageCertSign
	}
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	kb, _ := x509.MarshalECPrivateKey(key)
	certPath, keyPath := filepath.Join(dir, cn+".pem"), filepath.Join(dir, cn+"-key.pem")
	if err := os.WriteFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		t.Fatal(err)
	}
	return cert, key, certPath, keyPath
}

// TLS settings (ETCD_CA_CERT_FILE, ETCD_CERT_FILE, ETCD_KEY_FILE) against
// a server that requires client certificates.
func TestEtcdTLS(t *testing.T) {
	dir := t.TempDir()
	ca, caKey, caPath, _ := writeCert(t, dir, "ca", true, nil, nil)
	_, _, srvCert, srvKey := writeCert(t, dir, "server", false, ca, caKey)
	_, _, cliCert, cliKey := writeCert(t, dir, "client", false, ca, caKey)
	_, _, _, _ = writeCert(t, dir, "other-ca", true, nil, nil)

	emb, err := datastore.RunEmbedded(context.Background(), datastore.EmbeddedConfig{
		DataDir:          filepath.Join(dir, "etcd"),
		ListenClientURLs: []string{"https://127.0.0.1:0"},
		ListenPeerURLs:   []string{"http://127.0.0.1:0"},
		CertFile:         srvCert,
		KeyFile:          srvKey,
		TrustedCAFile:    caPath,
		ClientCertAuth:   true,
		LogLevel:         "error",
		UnsafeNoFsync:    true,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = emb.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := emb.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	eps := emb.Endpoints()

	st, err := datastore.NewEtcd(ctx, datastore.Config{Endpoints: eps, CACertFile: caPath, CertFile: cliCert, KeyFile: cliKey})
	if err != nil {
		t.Fatalf("TLS client: %v", err)
	}
	defer st.Close()
	if _, err := st.Create(ctx, "/calico/tls", []byte("ok")); err != nil {
		t.Fatal(err)
	}

	for name, cfg := range map[string]datastore.Config{
		"no client certificate": {Endpoints: eps, CACertFile: caPath, DialTimeout: time.Second},
		"unknown server CA":     {Endpoints: eps, CACertFile: filepath.Join(dir, "other-ca.pem"), CertFile: cliCert, KeyFile: cliKey, DialTimeout: time.Second},
	} {
		var te *datastore.TLSError
		if st, err := datastore.NewEtcd(ctx, cfg); err == nil {
			st.Close()
			t.Errorf("%s: connected", name)
		} else if !errors.As(err, &te) {
			t.Errorf("%s: want a TLSError, got %v", name, err)
		}
	}
	if _, err := datastore.NewEtcd(ctx, datastore.Config{Endpoints: eps, CertFile: cliCert}); err == nil {
		t.Error("cert without key accepted")
	}
	if _, err := datastore.NewEtcd(ctx, datastore.Config{Endpoints: eps, CACertFile: filepath.Join(dir, "missing.pem")}); err == nil {
		t.Error("missing CA file accepted")
	}
}
