package node

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/mycelsync/mycel/feed"
	"github.com/mycelsync/mycel/node/space"
)

var errViewFault = errors.New("injected fault in the view's commits")

// viewFault fails the commits that write a space's view while on.
type viewFault struct {
	feed.Storage
	mu     sync.Mutex
	prefix []byte // of the view's records in the node's store
	on     bool
	failed int
}

func (f *viewFault) set(prefix []byte, on bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.prefix, f.on = prefix, on
}

func (f *viewFault) Commit(ws []feed.Write) error {
	f.mu.Lock()
	fail := false
	for _, w := range ws {
		fail = fail || f.on && bytes.HasPrefix(w.Key, f.prefix)
	}
	if fail {
		f.failed++
	}
	f.mu.Unlock()
	if fail {
		return errViewFault
	}
	return f.Storage.Commit(ws)
}

// TestPutAnswersFailedViewWrite: when the view's records cannot be
// committed, a Put whose write of the view fails answers the storage's
// error (it was dropped, and the view went on from records it had not
// stored); reads refuse while the view cannot be read again; once the
// storage heals, writes and reads work and every key written is there.
func TestPutAnswersFailedViewWrite(t *testing.T) {
	n, err := New(loopbackConfig(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	// No space is open yet: nothing reads the store meanwhile.
	fault := &viewFault{Storage: n.kept.Storage}
	n.kept.Storage = fault
	ctx := context.Background()
	info, err := n.CreateSpace(ctx, "s")
	if err != nil {
		t.Fatal(err)
	}
	m, err := n.opened(info.ID)
	if err != nil {
		t.Fatal(err)
	}
	id := m.sp.ID()
	fault.set(append(spacePrefix(id), space.StorePrefixes(id)[1]...), true)
	// Values of 512 KiB: the view flushes on its own past 2 MiB.
	big := bytes.Repeat([]byte("x"), space.MaxValueSize)
	var putErr error
	written := 0
	for i := 0; putErr == nil && i < 20; i++ {
		putErr = n.Put(ctx, info.ID, fmt.Sprint("k", i), big)
		written++
	}
	if !errors.Is(putErr, space.ErrViewStorage) || !errors.Is(putErr, errViewFault) {
		t.Fatalf("Put while the view's commits fail: %v, want the storage's error", putErr)
	}
	t.Logf("Put %d: %v", written, putErr)
	if _, err := n.Get(info.ID, "k0"); !errors.Is(err, errViewFault) || !strings.Contains(err.Error(), "mycel check") {
		t.Fatalf("Get while the view cannot be stored: %v, want the storage's error", err)
	}
	fault.set(nil, false)
	if err := n.Put(ctx, info.ID, "after", []byte("v")); err != nil {
		t.Fatalf("Put once the storage healed: %v", err)
	}
	for i := range written {
		e, err := n.Get(info.ID, fmt.Sprint("k", i))
		if err != nil || len(e.Versions) != 1 || !bytes.Equal(e.Versions[0].Value, big) {
			t.Fatalf("k%d after the storage healed: %d versions, %v", i, len(e.Versions), err)
		}
	}
	page, err := n.List(info.ID, "", "", 100)
	if err != nil || len(page.Entries) != written+1 {
		t.Fatalf("List after the storage healed: %d keys, %v; want %d", len(page.Entries), err, written+1)
	}
}
