package pki

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"time"
)

// tokenPrefix is k3s's token version prefix.
const tokenPrefix = "K10"

// Token is a parsed join token K10<caHash>::<id>:<secret>.
type Token struct {
	CAHash string
	ID     string
	Secret string
}

func (t Token) String() string { return tokenPrefix + t.CAHash + "::" + t.ID + ":" + t.Secret }

var (
	hashRE   = regexp.MustCompile(`^[0-9a-f]{64}$`)
	idRE     = regexp.MustCompile(`^[a-z0-9]{6}$`)
	secretRE = regexp.MustCompile(`^[0-9a-f]{32,128}$`)
)

// ErrBadToken is returned for a token that does not parse.
var ErrBadToken = errors.New(`invalid join token: want K10<64 hex digits>::<id>:<secret>, as printed by "calico node token create"`)

// ParseToken parses a join token.
func ParseToken(s string) (Token, error) {
	s = strings.TrimSpace(s)
	rest, ok := strings.CutPrefix(s, tokenPrefix)
	if !ok {
		return Token{}, ErrBadToken
	}
	hash, cred, ok := strings.Cut(rest, "::")
	if !ok {
		return Token{}, ErrBadToken
	}
	id, secret, ok := strings.Cut(cred, ":")
	if !ok || !hashRE.MatchString(hash) || !idRE.MatchString(id) || !secretRE.MatchString(secret) {
		return Token{}, ErrBadToken
	}
	return Token{CAHash: hash, ID: id, Secret: secret}, nil
}

// TokenInfo is a stored token: the secret only as a hash.
type TokenInfo struct {
	ID          string    `json:"id"`
	SecretHash  string    `json:"secretSHA256"`
	Description string    `json:"description,omitempty"`
	Created     time.Time `json:"created"`
	// Expires is zero for a token that does not expire.
	Expires time.Time `json:"expires,omitzero"`
}

func hashSecret(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

func randHex(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return hex.EncodeToString(b), nil
}

func randID() (string, error) {
	const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, 6)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b), nil
}

// lockTokens serialises writers of tokens.json (the CLI on the host and the
// node in its container share the file).
func lockTokens(p Paths) (func(), error) {
	f, err := os.OpenFile(p.Tokens()+".lock", os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock tokens: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock tokens: %w", err)
	}
	return func() { _ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN); f.Close() }, nil
}

// ListTokens reads the stored tokens, oldest first.
func ListTokens(p Paths) ([]TokenInfo, error) {
	b, err := os.ReadFile(p.Tokens())
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read tokens: %w", err)
	}
	var ts []TokenInfo
	if err := json.Unmarshal(b, &ts); err != nil {
		return nil, fmt.Errorf("parse %s: %w", p.Tokens(), err)
	}
	return ts, nil
}

func saveTokens(p Paths, ts []TokenInfo) error {
	b, err := json.MarshalIndent(ts, "", "  ")
	if err != nil {
		return err
	}
	return writeFile(p.Tokens(), b, 0o600)
}

// CreateToken makes a new join token, stores its hash and returns the full
// token (the only time the secret is seen). ttl 0: no expiry.
func CreateToken(p Paths, description string, ttl time.Duration) (Token, error) {
	if !p.HasCAKey() {
		return Token{}, fmt.Errorf("no cluster CA key in %s: tokens are made on the first host (the one that ran the embedded datastore first)", p.Dir)
	}
	caPEM, err := os.ReadFile(p.CACert())
	if err != nil {
		return Token{}, fmt.Errorf("read cluster CA: %w", err)
	}
	unlock, err := lockTokens(p)
	if err != nil {
		return Token{}, err
	}
	defer unlock()
	ts, err := ListTokens(p)
	if err != nil {
		return Token{}, err
	}
	id, err := randID()
	if err != nil {
		return Token{}, err
	}
	secret, err := randHex(16)
	if err != nil {
		return Token{}, err
	}
	info := TokenInfo{ID: id, SecretHash: hashSecret(secret), Description: description, Created: time.Now().UTC().Truncate(time.Second)}
	if ttl > 0 {
		info.Expires = info.Created.Add(ttl)
	}
	if err := saveTokens(p, append(ts, info)); err != nil {
		return Token{}, err
	}
	return Token{CAHash: Hash(caPEM), ID: id, Secret: secret}, nil
}

// RevokeToken deletes a token by id; revoking an unknown id is an error
// (a typo must not look like success).
func RevokeToken(p Paths, id string) error {
	unlock, err := lockTokens(p)
	if err != nil {
		return err
	}
	defer unlock()
	ts, err := ListTokens(p)
	if err != nil {
		return err
	}
	i := slices.IndexFunc(ts, func(t TokenInfo) bool { return t.ID == id })
	if i < 0 {
		return fmt.Errorf("no join token with id %q (see calico node token list)", id)
	}
	return saveTokens(p, slices.Delete(ts, i, i+1))
}

// ErrTokenRefused is returned for an unknown, revoked, expired or wrong token.
var ErrTokenRefused = errors.New("join token refused (unknown, revoked, expired or wrong secret)")

// CheckToken verifies id and secret against the stored hashes in constant
// time per entry.
func CheckToken(p Paths, id, secret string, now time.Time) error {
	ts, err := ListTokens(p)
	if err != nil {
		return err
	}
	want := hashSecret(secret)
	ok := false
	for _, t := range ts {
		match := subtle.ConstantTimeCompare([]byte(t.SecretHash), []byte(want)) == 1
		if t.ID == id && match && (t.Expires.IsZero() || now.Before(t.Expires)) {
			ok = true
		}
	}
	if !ok {
		return ErrTokenRefused
	}
	return nil
}
