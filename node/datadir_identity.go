package node

import (
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/libp2p/go-libp2p/core/crypto"

	"github.com/mycelsync/mycel/auth"
)

// IdentityFile is the node's libp2p key in the data directory. It is
// created with mode 0600 and refused if others can read it.
const IdentityFile = "node.key"

// DeviceKeyFile is the device's HPKE key in the data directory (0600):
// spaces' keyrings are sealed to it, and its local keys seal what the
// spaces store at rest.
const DeviceKeyFile = "device.key"

// LoadIdentity returns the node's key from dir, creating dir and the key on
// first use.
func LoadIdentity(dir string) (crypto.PrivKey, error) {
	data, err := loadSecret(dir, IdentityFile, func() ([]byte, error) {
		key, _, err := crypto.GenerateEd25519Key(rand.Reader)
		if err != nil {
			return nil, err
		}
		return crypto.MarshalPrivateKey(key)
	})
	if err != nil {
		return nil, err
	}
	key, err := crypto.UnmarshalPrivateKey(data)
	if err != nil {
		return nil, fmt.Errorf("node: %s: %w", filepath.Join(dir, IdentityFile), err)
	}
	return key, nil
}

// LoadDeviceKey returns the device key from dir, creating it on first use.
func LoadDeviceKey(dir string) (*auth.DeviceKey, error) {
	data, err := loadSecret(dir, DeviceKeyFile, func() ([]byte, error) {
		k, err := auth.GenerateDeviceKey(rand.Reader)
		if err != nil {
			return nil, err
		}
		return k.Bytes(), nil
	})
	if err != nil {
		return nil, err
	}
	k, err := auth.ParseDeviceKey(data)
	if err != nil {
		return nil, fmt.Errorf("node: %s: %w", filepath.Join(dir, DeviceKeyFile), err)
	}
	return k, nil
}

// loadSecret reads the secret file name in dir, or creates dir and the
// file with what generate returns. It refuses a file others can read.
func loadSecret(dir, name string, generate func() ([]byte, error)) ([]byte, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("node: data directory: %w", err)
	}
	path := filepath.Join(dir, name)
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		if data, err = generate(); err != nil {
			return nil, err
		}
		if err := WriteSecretFile(path, data); err != nil {
			return nil, fmt.Errorf("node: create %s: %w", name, err)
		}
		return data, nil
	}
	if err != nil {
		return nil, fmt.Errorf("node: read %s: %w", name, err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("node: %s is readable by others (mode %v): run chmod 600 %s", path, fi.Mode().Perm(), path)
	}
	return data, nil
}

// WriteSecretFile writes data to path with mode 0600 through a temporary
// file, synced and renamed, so that a crash never leaves half a file.
func WriteSecretFile(path string, data []byte) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
