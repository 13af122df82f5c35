package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// Dir is where a node host keeps its datastore credentials.
const Dir = "/var/lib/calico/pki"

// File names inside the directory.
const (
	CACertFile   = "ca.crt"
	CAKeyFile    = "ca.key"
	CertFile     = "node.crt"
	KeyFile      = "node.key"
	TokensFile   = "tokens.json"
	SocketSAN    = "etcd.sock" // etcd clients verify a unixs:// endpoint by the socket's file name
	caValidity   = 10 * 365 * 24 * time.Hour
	certValidity = 5 * 365 * 24 * time.Hour
)

// Paths are the files of one credentials directory.
type Paths struct{ Dir string }

func (p Paths) CACert() string { return filepath.Join(p.Dir, CACertFile) }
func (p Paths) CAKey() string  { return filepath.Join(p.Dir, CAKeyFile) }
func (p Paths) Cert() string   { return filepath.Join(p.Dir, CertFile) }
func (p Paths) Key() string    { return filepath.Join(p.Dir, KeyFile) }
func (p Paths) Tokens() string { return filepath.Join(p.Dir, TokensFile) }

// HasNodeCert reports whether this host already has its credentials.
func (p Paths) HasNodeCert() bool {
	for _, f := range []string{p.CACert(), p.Cert(), p.Key()} {
		if _, err := os.Stat(f); err != nil {
			return false
		}
	}
	return true
}

// HasCAKey reports whether this host holds the CA key (it can sign joins).
func (p Paths) HasCAKey() bool {
	_, err := os.Stat(p.CAKey())
	return err == nil
}

// CA is a loaded cluster CA that can sign certificates.
type CA struct {
	Cert    *x509.Certificate
	CertPEM []byte
	key     crypto.Signer
}

func newKey() (*ecdsa.PrivateKey, error) { return ecdsa.GenerateKey(elliptic.P256(), rand.Reader) }

func serial() (*big.Int, error) {
	return rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
}

func keyPEM(k *ecdsa.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}), nil
}

func certPEM(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

// writeFile writes atomically (temp file, rename) with mode.
func writeFile(path string, b []byte, mode os.FileMode) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, mode); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Chmod(tmp, mode); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// CreateCA makes a new cluster CA and writes ca.crt and ca.key. It refuses
// to overwrite an existing CA (that would lock every host out).
func CreateCA(p Paths, cluster string) (*CA, error) {
	if _, err := os.Stat(p.CACert()); err == nil {
		return nil, fmt.Errorf("a cluster CA already exists at %s; remove the directory to start a new cluster", p.CACert())
	}
	if err := os.MkdirAll(p.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("create %s: %w", p.Dir, err)
	}
	key, err := newKey()
	if err != nil {
		return nil, err
	}
	sn, err := serial()
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          sn,
		Subject:               pkix.Name{CommonName: "calico datastore CA " + cluster, Organization: []string{"calico-docker"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(caValidity),
		IsCA:                  true,
		BasicConstraintsValid: true,
		MaxPathLenZero:        true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("create CA certificate: %w", err)
	}
	kp, err := keyPEM(key)
	if err != nil {
		return nil, err
	}
	if err := writeFile(p.CAKey(), kp, 0o600); err != nil {
		return nil, err
	}
	cp := certPEM(der)
	if err := writeFile(p.CACert(), cp, 0o644); err != nil {
		return nil, err
	}
	cert, _ := x509.ParseCertificate(der)
	return &CA{Cert: cert, CertPEM: cp, key: key}, nil
}

// LoadCA reads ca.crt and ca.key.
func LoadCA(p Paths) (*CA, error) {
	cp, err := os.ReadFile(p.CACert())
	if err != nil {
		return nil, fmt.Errorf("read cluster CA: %w", err)
	}
	cert, err := ParseCert(cp)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p.CACert(), err)
	}
	kb, err := os.ReadFile(p.CAKey())
	if err != nil {
		return nil, fmt.Errorf("read cluster CA key: %w", err)
	}
	blk, _ := pem.Decode(kb)
	if blk == nil {
		return nil, fmt.Errorf("%s: no PEM key", p.CAKey())
	}
	key, err := x509.ParseECPrivateKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p.CAKey(), err)
	}
	return &CA{Cert: cert, CertPEM: cp, key: key}, nil
}

// ParseCert parses the first PEM certificate in b.
func ParseCert(b []byte) (*x509.Certificate, error) {
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "CERTIFICATE" {
		return nil, errors.New("no PEM certificate")
	}
	return x509.ParseCertificate(blk.Bytes)
}

// Hash is the hex SHA-256 of a CA bundle exactly as served (the k3s token hash).
func Hash(caPEM []byte) string {
	s := sha256.Sum256(caPEM)
	return hex.EncodeToString(s[:])
}

// NodeNames are the names a host's certificate is valid for: the host's
// addresses (other members and clients dial them), loopback and the local
// socket name.
func NodeNames(ips []net.IP) ([]net.IP, []string) {
	all := append([]net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}, ips...)
	return all, []string{"localhost", SocketSAN}
}

// NewCSR makes a key and a certificate request for node (CN node:<name>).
// The key stays with the caller; the request goes to the CA.
func NewCSR(node string, ips []net.IP, dns []string) (csrPEM, keyPEMBytes []byte, err error) {
	key, err := newKey()
	if err != nil {
		return nil, nil, err
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject:     pkix.Name{CommonName: "node:" + node},
		IPAddresses: ips,
		DNSNames:    dns,
	}, key)
	if err != nil {
		return nil, nil, fmt.Errorf("certificate request: %w", err)
	}
	kp, err := keyPEM(key)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}), kp, nil
}

// SignCSR checks a request's self-signature and signs a certificate for it,
// valid as etcd client, server and peer. The subject is taken from node, not
// from the request.
func (ca *CA) SignCSR(csrPEM []byte, node string) ([]byte, error) {
	blk, _ := pem.Decode(csrPEM)
	if blk == nil || blk.Type != "CERTIFICATE REQUEST" {
		return nil, errors.New("csr: no PEM certificate request")
	}
	csr, err := x509.ParseCertificateRequest(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("csr: %w", err)
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, fmt.Errorf("csr: bad signature: %w", err)
	}
	if len(csr.IPAddresses) > 16 || len(csr.DNSNames) > 16 {
		return nil, errors.New("csr: too many names (at most 16 addresses and 16 DNS names)")
	}
	sn, err := serial()
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: sn,
		Subject:      pkix.Name{CommonName: "node:" + node, Organization: []string{"calico-docker"}},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(certValidity),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		IPAddresses:  csr.IPAddresses,
		DNSNames:     csr.DNSNames,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, csr.PublicKey, ca.key)
	if err != nil {
		return nil, fmt.Errorf("sign certificate for %s: %w", node, err)
	}
	return certPEM(der), nil
}

// IssueLocal gives the CA's own host its node certificate.
func (ca *CA) IssueLocal(p Paths, node string, ips []net.IP) error {
	all, dns := NodeNames(ips)
	csr, key, err := NewCSR(node, all, dns)
	if err != nil {
		return err
	}
	cert, err := ca.SignCSR(csr, node)
	if err != nil {
		return err
	}
	return WriteNode(p, ca.CertPEM, cert, key)
}

// WriteNode stores a host's credentials: the CA certificate, its own
// certificate and key. The key is written first so a half-written set is
// never mistaken for a complete one (HasNodeCert checks node.crt).
func WriteNode(p Paths, caPEM, cert, key []byte) error {
	if err := os.MkdirAll(p.Dir, 0o700); err != nil {
		return fmt.Errorf("create %s: %w", p.Dir, err)
	}
	if err := writeFile(p.Key(), key, 0o600); err != nil {
		return err
	}
	if _, err := os.Stat(p.CACert()); err != nil {
		if err := writeFile(p.CACert(), caPEM, 0o644); err != nil {
			return err
		}
	}
	return writeFile(p.Cert(), cert, 0o644)
}

// EndpointsFile remembers the datastore's client URLs across restarts.
const EndpointsFile = "endpoints.json"

// SaveEndpoints records the datastore's client URLs in the directory.
func SaveEndpoints(p Paths, endpoints []string) error {
	if err := os.MkdirAll(p.Dir, 0o700); err != nil {
		return fmt.Errorf("create %s: %w", p.Dir, err)
	}
	b, err := json.Marshal(endpoints)
	if err != nil {
		return err
	}
	return writeFile(filepath.Join(p.Dir, EndpointsFile), b, 0o600)
}

// LoadEndpoints reads what SaveEndpoints recorded (nil if nothing).
func LoadEndpoints(p Paths) []string {
	var eps []string
	if b, err := os.ReadFile(filepath.Join(p.Dir, EndpointsFile)); err == nil {
		_ = json.Unmarshal(b, &eps)
	}
	return eps
}
