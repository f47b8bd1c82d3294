package node

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/mycelsync/mycel/auth"
	"github.com/mycelsync/mycel/feed"
)

// KeysDir holds, in the data directory, a copy of the store's small
// records that hold keys: each space's record ("ns": this device's feed
// key in the space) and keyring ("sk" in the space's namespace, or at the
// top of a store of the older layout: the space secrets sealed to the
// device key). Everything else in the store can be fetched back from
// peers; these cannot, so they must survive a damaged store. Each record
// is a file (0600) named by its store key in hex, holding the record as
// sealed in the store; it is written before the store's commit.
const KeysDir = "keys"

// keptPrefixes are the store keys copied to KeysDir.
var keptPrefixes = [][]byte{[]byte("ns"), []byte("sk")}

func isKept(key []byte) bool {
	if len(key) > len(spacePrefix(auth.SpaceID{})) && key[0] == spacePrefix(auth.SpaceID{})[0] {
		key = key[len(spacePrefix(auth.SpaceID{})):] // a key in a space's namespace
	}
	for _, p := range keptPrefixes {
		if bytes.HasPrefix(key, p) {
			return true
		}
	}
	return false
}

// keptStore is the store with the kept records copied to KeysDir as they
// are written.
type keptStore struct {
	feed.Storage
	dir string // the KeysDir
}

func (k *keptStore) Commit(writes []feed.Write) error {
	for _, w := range writes {
		if !isKept(w.Key) {
			continue
		}
		path := filepath.Join(k.dir, hex.EncodeToString(w.Key))
		if w.Delete {
			if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
				return fmt.Errorf("node: keys: %w", err)
			}
			continue
		}
		if err := WriteSecretFile(path, w.Value); err != nil {
			return fmt.Errorf("node: keys: %w", err)
		}
	}
	return k.Storage.Commit(writes)
}

// syncKeys makes the store and KeysDir agree: a record only in KeysDir
// (a store rebuilt after damage), or newer there (the files are written
// first), goes into the store; a record only in the store (a data
// directory from before KeysDir) gets its file.
func syncKeys(st feed.Storage, dir string) (restored int, err error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return 0, fmt.Errorf("node: keys: %w", err)
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return 0, fmt.Errorf("node: keys: %w", err)
	}
	files := make(map[string]bool)
	var writes []feed.Write
	for _, e := range ents {
		if e.IsDir() || strings.HasSuffix(e.Name(), ".tmp") {
			continue
		}
		key, err := hex.DecodeString(e.Name())
		if err != nil || !isKept(key) {
			continue
		}
		files[string(key)] = true
		val, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			return 0, fmt.Errorf("node: keys: %w", err)
		}
		have, err := st.Get(key)
		switch {
		case errors.Is(err, feed.ErrNotFound), err == nil && !bytes.Equal(have, val):
			writes = append(writes, feed.Write{Key: key, Value: val})
		case err != nil:
			return 0, err
		}
	}
	if len(writes) > 0 {
		if err := st.Commit(writes); err != nil {
			return 0, err
		}
	}
	// Records only in the store: the space records, the keyrings at the
	// top (older layout) and in each recorded space's namespace.
	keep := func(k, v []byte) error {
		if files[string(k)] {
			return nil
		}
		return WriteSecretFile(filepath.Join(dir, hex.EncodeToString(k)), v)
	}
	var inSpaces [][]byte
	for _, p := range keptPrefixes {
		err := st.Scan(p, feed.PrefixEnd(p), func(k, v []byte) error {
			if bytes.HasPrefix(k, []byte("ns")) {
				if id, err := auth.SpaceIDFromBytes(k[2:]); err == nil {
					inSpaces = append(inSpaces, append(spacePrefix(id), append([]byte("sk"), id[:]...)...))
				}
			}
			return keep(k, v)
		})
		if err != nil {
			return 0, fmt.Errorf("node: keys: %w", err)
		}
	}
	for _, k := range inSpaces {
		v, err := st.Get(k)
		if errors.Is(err, feed.ErrNotFound) {
			continue
		}
		if err == nil {
			err = keep(k, v)
		}
		if err != nil {
			return 0, fmt.Errorf("node: keys: %w", err)
		}
	}
	return len(writes), nil
}
