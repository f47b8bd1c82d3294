package api

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
)

// Files of the data directory that the daemon and the CLI share.
const (
	// TokenFile holds the API's bearer token: 64 hex digits, mode 0600.
	TokenFile = "api.token"
	// EndpointFile holds the host:port the running daemon's API listens
	// on. The daemon writes it once it listens and removes it when it
	// stops cleanly; after a crash it stays, and the CLI finds nobody
	// listening there.
	EndpointFile = "api.addr"
)

// tokenBytes is the entropy of a token: 32 random bytes, hex-encoded.
const tokenBytes = 32

// LoadOrCreateToken returns the API token from dir, creating dir and the
// token on first use. It refuses a token file others can read.
func LoadOrCreateToken(dir string) (string, error) {
	tok, err := ReadToken(dir)
	if !errors.Is(err, os.ErrNotExist) {
		return tok, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("api: data directory: %w", err)
	}
	b := make([]byte, tokenBytes)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	tok = hex.EncodeToString(b)
	if err := writeFileAtomic(filepath.Join(dir, TokenFile), []byte(tok+"\n")); err != nil {
		return "", fmt.Errorf("api: create %s: %w", TokenFile, err)
	}
	return tok, nil
}

// ReadToken returns the API token from dir without creating it: the
// error wraps os.ErrNotExist when there is none. It refuses a token file
// others can read, and one that is not 64 hex digits.
func ReadToken(dir string) (string, error) {
	path := filepath.Join(dir, TokenFile)
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("api: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return "", fmt.Errorf("api: %w", err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return "", fmt.Errorf("api: %s is readable by others (mode %v): run chmod 600 %s", path, fi.Mode().Perm(), path)
	}
	buf := make([]byte, 2*tokenBytes+2) // bounded: the token and a newline
	n, _ := f.Read(buf)
	tok := strings.TrimSpace(string(buf[:n]))
	if b, err := hex.DecodeString(tok); err != nil || len(b) != tokenBytes {
		return "", fmt.Errorf("api: %s is not a token (%d hex digits); remove it and restart the daemon", path, 2*tokenBytes)
	}
	return tok, nil
}

// WriteEndpoint records in dir the host:port the API listens on.
func WriteEndpoint(dir, addr string) error {
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return fmt.Errorf("api: endpoint %q: %w", addr, err)
	}
	if err := writeFileAtomic(filepath.Join(dir, EndpointFile), []byte(addr+"\n")); err != nil {
		return fmt.Errorf("api: write %s: %w", EndpointFile, err)
	}
	return nil
}

// ReadEndpoint returns the host:port WriteEndpoint recorded in dir; the
// error wraps os.ErrNotExist when there is none (no daemon ran, or it
// stopped cleanly).
func ReadEndpoint(dir string) (string, error) {
	path := filepath.Join(dir, EndpointFile)
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("api: %w", err)
	}
	defer f.Close()
	buf := make([]byte, 512) // a host:port is far shorter
	n, _ := f.Read(buf)
	addr := strings.TrimSpace(string(buf[:n]))
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return "", fmt.Errorf("api: %s: %q is not host:port", path, addr)
	}
	return addr, nil
}

// RemoveEndpoint removes the record of WriteEndpoint; no record is fine.
func RemoveEndpoint(dir string) error {
	err := os.Remove(filepath.Join(dir, EndpointFile))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("api: %w", err)
	}
	return nil
}

// writeFileAtomic writes data to path with mode 0600 through a temporary
// file in the same directory, synced and renamed, so that a reader never
// sees half a file.
func writeFileAtomic(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	fail := func(err error) error {
		f.Close()
		os.Remove(tmp)
		return err
	}
	if err := f.Chmod(0o600); err != nil {
		return fail(err)
	}
	if _, err := f.Write(data); err != nil {
		return fail(err)
	}
	if err := f.Sync(); err != nil {
		return fail(err)
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}
