package node

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/mycelsync/mycel/auth"
	"github.com/mycelsync/mycel/feed"
	"github.com/mycelsync/mycel/feed/badgerstore"
	"github.com/mycelsync/mycel/node/api"
)

// ErrStoreDamaged is wrapped by New's error when the store's files are
// damaged (badgerstore.ErrDamaged): the node refuses to start rather than
// serve part of the data as if it were all.
var ErrStoreDamaged = errors.New("the store is damaged")

// RepairPendingFile, in the data directory, marks a repair that has not
// finished: the store is being rebuilt from peers, and this device's own
// feeds may still lack entries it signed. New refuses to start while it
// is there, so that nothing is appended to those feeds (which would fork
// them); Repair removes it once it holds back what its peers hold.
const RepairPendingFile = "repair.pending"

// openStore opens the store of the data directory, turning damage into an
// error that says what to do.
func openStore(dataDir string, log *slog.Logger) (*badgerstore.Store, error) {
	dir := filepath.Join(dataDir, StoreDir)
	st, err := badgerstore.Open(dir, badgerstore.WithLogger(log))
	if errors.Is(err, badgerstore.ErrDamaged) {
		return nil, fmt.Errorf("node: %w: %w\n"+
			"Nothing was changed or deleted. Every entry is signed and held by your other devices: "+
			"with the daemon stopped, run\n  mycel repair --data %s --peer <address of another device>\n"+
			"to set the damaged store aside (kept as %s.damaged-<time>) and fetch it back from them; "+
			"your keys, in %s, are kept", ErrStoreDamaged, err, dataDir, dir, filepath.Join(dataDir, KeysDir))
	}
	if err != nil {
		return nil, fmt.Errorf("node: open store: %w", err)
	}
	return st, nil
}

func checkNoRepairPending(dataDir string) error {
	path := filepath.Join(dataDir, RepairPendingFile)
	if _, err := os.Stat(path); err == nil {
		return fmt.Errorf("node: a repair of %s has not finished (%s is there): run mycel repair again, "+
			"so that this device holds back its own entries from its peers before it writes", dataDir, path)
	}
	return nil
}

// RepairProgress is what Repair reports as it goes.
type RepairProgress struct {
	Spaces  int    // spaces recorded in the kept keys
	Peers   int    // peers replicating with this node
	Entries uint64 // entries held
	Want    uint64 // entries held plus those the peers still have to send
	Done    bool   // caught up with every peer of every space
}

// Repair rebuilds the store of cfg.DataDir from peers. The damaged store
// (if any) is renamed to store.damaged-<UTC time>, never deleted; a fresh
// store gets the kept key records (KeysDir); a node then replicates every
// space with the static peers, with appends to its feeds held
// (feed.WithoutAppends), until every space has a peer and nothing is left
// to fetch from any, holding steady for settle. Only then is
// RepairPendingFile removed and the daemon may start and write again. It
// returns the path the damaged store was moved to ("" if there was
// none). progress, if not nil, is called every second.
func Repair(ctx context.Context, cfg *Config, log *slog.Logger, settle time.Duration, progress func(RepairProgress)) (aside string, err error) {
	if addr, err := api.ReadEndpoint(cfg.DataDir); err == nil {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			return "", fmt.Errorf("node: a daemon is running on %s (API on %s): stop it first", cfg.DataDir, addr)
		}
	}
	if len(cfg.Peers) == 0 && len(cfg.Relays) == 0 && (cfg.MDNS == nil || !*cfg.MDNS) {
		return "", fmt.Errorf("node: repair needs peers to fetch the data from: give --peer (or peers in %s)", ConfigFile)
	}
	pending := filepath.Join(cfg.DataDir, RepairPendingFile)
	store := filepath.Join(cfg.DataDir, StoreDir)
	if recs, _ := filepath.Glob(filepath.Join(cfg.DataDir, KeysDir, hex.EncodeToString([]byte("ns"))+"*")); len(recs) == 0 {
		return "", fmt.Errorf("node: %s holds no space record: there is no space to fetch back "+
			"(a data directory from before %s existed kept its keys only in the store, which was left as it is)",
			filepath.Join(cfg.DataDir, KeysDir), KeysDir)
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return "", err
	}
	if _, err := os.Stat(pending); errors.Is(err, os.ErrNotExist) {
		// The mark goes first: a crash after the rename must not let the
		// daemon start on the empty store and write.
		if err := WriteSecretFile(pending, []byte(time.Now().UTC().Format(time.RFC3339)+"\n")); err != nil {
			return "", err
		}
		if _, err := os.Stat(store); err == nil {
			aside = fmt.Sprintf("%s.damaged-%s", store, time.Now().UTC().Format("20060102T150405Z"))
			if err := os.Rename(store, aside); err != nil {
				return "", fmt.Errorf("node: set the store aside: %w", err)
			}
			if err := syncDir(cfg.DataDir); err != nil {
				return "", err
			}
		}
	}
	// Else a repair was interrupted: the store there is its partial
	// rebuild, and it goes on from it.
	n, err := newNode(cfg, log, true)
	if err != nil {
		return aside, err
	}
	defer func() {
		if cerr := n.Close(); err == nil && cerr != nil {
			err = cerr
		}
		if err == nil {
			err = os.Remove(pending)
		}
	}()
	t := time.NewTicker(time.Second)
	defer t.Stop()
	var steady time.Time
	for {
		p := n.repairProgress()
		if progress != nil {
			progress(p)
		}
		switch {
		case !p.Done:
			steady = time.Time{}
		case steady.IsZero():
			steady = time.Now()
		case time.Since(steady) >= settle:
			return aside, nil
		}
		select {
		case <-ctx.Done():
			return aside, fmt.Errorf("node: repair stopped before it caught up (run mycel repair again): %w", ctx.Err())
		case <-t.C:
		}
	}
}

// repairProgress sums the replication progress: done when every approved
// space has a session with a peer that has shown its heads, and nothing
// is left to fetch.
func (n *Node) repairProgress() RepairProgress {
	ms := n.openSpaces()
	p := RepairProgress{Spaces: len(ms), Done: len(ms) > 0}
	sessions := make(map[string]bool)
	peers := make(map[string]bool)
	for _, fp := range n.repl.Progress() {
		sessions[fp.Space.String()] = true
		peers[fp.Peer.String()] = true
		p.Want += fp.Want - fp.Have
		if fp.Have < fp.Want {
			p.Done = false
		}
	}
	p.Peers = len(peers)
	for _, m := range ms {
		for _, k := range m.sp.Feeds() {
			p.Entries += m.sp.Held(k)
		}
		if m.sp.Approved() && !sessions[m.sp.ID().String()] {
			p.Done = false
		}
	}
	p.Want += p.Entries
	return p
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// CheckReport is what CheckStore found.
type CheckReport struct {
	Feeds    int    // feeds in the store
	Entries  uint64 // entries held
	Verified uint64 // entries hashed into a root their signed head matched
	Views    []ViewCheck
	Damaged  []string
}

// CheckStore verifies the store of a data directory whose daemon is
// stopped, without changing it: badger's files (see badgerstore.Open),
// then every space's feeds, in its namespace, against their signed heads
// (feed.Feed.Verify), then every space's stored view against one rebuilt
// from the feeds. progress, if not nil, is told of each feed checked.
func CheckStore(dataDir string, progress func(done, total int, rep CheckReport)) (CheckReport, error) {
	var rep CheckReport
	dir := filepath.Join(dataDir, StoreDir)
	if _, err := os.Stat(dir); err != nil {
		return rep, fmt.Errorf("node: no store in %s: %w", dataDir, err)
	}
	st, err := badgerstore.Open(dir, badgerstore.ReadOnly())
	if errors.Is(err, badgerstore.ErrDamaged) {
		rep.Damaged = append(rep.Damaged, err.Error())
		return rep, nil
	}
	if err != nil {
		return rep, fmt.Errorf("node: open store (is the daemon running? stop it first): %w", err)
	}
	defer st.Close()
	device, err := LoadDeviceKey(dataDir)
	if err != nil {
		return rep, err
	}
	n := &Node{store: st, device: device}
	ids, err := n.recordedSpaces()
	if err != nil {
		rep.Damaged = append(rep.Damaged, err.Error())
		return rep, nil
	}
	if old, err := n.hasLayout1(ids); err != nil {
		rep.Damaged = append(rep.Damaged, err.Error())
		return rep, nil
	} else if old {
		return rep, fmt.Errorf("node: the store in %s has the layout of an older version: start the daemon once to move it, then check it", dataDir)
	}
	// Each space's feeds live in its namespace (spacePrefix).
	type spaceFeeds struct {
		id   auth.SpaceID
		ns   feed.Storage
		db   *feed.DB
		keys []feed.PublicKey
	}
	var all []spaceFeeds
	total := 0
	for _, id := range ids {
		ns := feed.Prefixed(st, spacePrefix(id))
		db, err := feed.Open(ns, feed.WithoutAppends())
		if err != nil {
			return rep, err
		}
		defer db.Close()
		keys, err := db.Feeds()
		if err != nil {
			rep.Damaged = append(rep.Damaged, fmt.Sprintf("space %s: %v", id, err))
			continue
		}
		all = append(all, spaceFeeds{id, ns, db, keys})
		total += len(keys)
	}
	rep.Feeds = total
	done := 0
	for _, s := range all {
		for _, k := range s.keys {
			done++
			f, err := s.db.Feed(k)
			if err != nil {
				rep.Damaged = append(rep.Damaged, fmt.Sprintf("space %s, feed %x: %v", s.id, k[:8], err))
				continue
			}
			fr, err := f.Verify(nil)
			rep.Entries += fr.Held
			rep.Verified += fr.Verified
			if err != nil {
				rep.Damaged = append(rep.Damaged, fmt.Sprintf("space %s: %v", s.id, err))
			}
			if progress != nil {
				progress(done, total, rep)
			}
		}
	}
	for _, s := range all {
		v, err := n.checkView(s.id, s.ns, s.db)
		if err != nil {
			rep.Damaged = append(rep.Damaged, fmt.Sprintf("space %s: view: %v", s.id, err))
			continue
		}
		rep.Views = append(rep.Views, v)
		if v.Stored != v.Built || len(v.Differ) > 0 {
			rep.Damaged = append(rep.Damaged, fmt.Sprintf("space %s: the stored view (digest %x) differs from the view rebuilt from the feeds (%x) at keys %q", v.Space, v.Stored[:8], v.Built[:8], v.Differ))
		}
	}
	return rep, nil
}
