package space

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"io"
	"slices"

	"github.com/mycelsync/mycel/auth"
	"github.com/mycelsync/mycel/feed"
)

// kvStore keeps a view in a feed.Storage, so that reopening a space reads
// its state instead of replaying its feeds. Everything is sealed
// (XChaCha20-Poly1305 under the device's local key of the space, bound to
// the record's storage key); keys of the space appear in storage keys only
// as a keyed hash. Records, under P = "v" ‖ 8-byte tag of the space:
//
//	P 'm'              meta: the op log's length and checkpoint, feeds
//	                   (applied, clock, clock of the last op), membership
//	                   and rotation op IDs, refusals
//	P 'l' seq          a page of the op log: the ops applied from the
//	                   seq-th on, in the order applied, many to a record
//	P 'o' feed# index  a membership or rotation op
//	P 'r' keyhash      a register snapshot: the seq it reflects, the key's
//	                   name and versions
//
// Applying an op appends it to the page being filled; a flush seals the
// pages and commits them with meta. Registers change in memory and are
// written at a checkpoint, once for all the ops on the key since the last
// one: when the log has grown by checkpointOps since, or the registers
// waiting are too many or too large, or a membership op was applied, or a
// flush finds nothing new to write (the view is quiet: a Close, or a
// Refresh that applied nothing), so that the next open has no tail to
// hold. Reopening reads only the log's tail, the ops after the checkpoint,
// and applies them to each register when it is first read. FORMAT.md has
// the byte layout.
//
// Memory: the registers in memory (dirty ones, and clean ones cached) keep
// what Get and the view's rules need of each version, not its causal
// context (the log has it, for recomputing), and both sets are bounded by
// count and by an estimate of their bytes (kvLimits).
type kvStore struct {
	st      feed.Storage
	key     [auth.KeySize]byte
	prefix  []byte
	rand    io.Reader
	lim     kvLimits
	feedKey []feed.PublicKey
	feedNo  map[feed.PublicKey]uint32
	// counts says whether an op counts under the view's writer set now;
	// its clock's entry for the op's own feed may be stale (countsStale).
	counts func(id OpID, clock Clock) bool

	// The op log. An op's seq is its place in it, from 1.
	seq       uint64       // ops logged, flushed or buffered
	flushed   uint64       // ops in storage (meta's seq)
	ckpt      uint64       // the stored registers reflect every op ≤ ckpt
	tailBytes int          // log bytes since ckpt
	member    bool         // a membership op was logged since ckpt
	page      []byte       // plaintext of the page being filled
	pageN     int          // ops in page
	pageFirst uint64       // seq of page's first op
	pageFeeds []bool       // by feed#: the feed has an op in page
	writes    []feed.Write // sealed pages and special ops not yet committed
	bufBytes  int          // bytes in page and writes
	recent    []*opRec     // ops not yet flushed

	// Registers, with their estimated sizes (regSize) and the sums.
	dirty      map[string]memReg // changed since the checkpoint
	regs       map[string]memReg // clean, cached
	dirtyBytes int
	regsBytes  int
	pending    map[string][]pendOp // tail ops on registers not read since open
	sorted     []string            // names, once loaded
	// stored holds the first 8 bytes of the key hash of every register
	// in storage, once loaded (a key-only scan), so that a key never
	// written costs no storage lookup (a prefix shared by chance costs one
	// lookup). nil until the first write of a register needs it.
	stored *hashSet

	rebuilt  bool      // the registers were recomputed on open
	err      error     // first error; reported by flush
	mac      hash.Hash // HMAC of key names, reused
	lastKey  string    // memo of the last name hashed
	lastHash []byte
}

// kvLimits bounds the buffers, under one storage commit's limits and a
// bounded reopen. Tests make them small.
type kvLimits struct {
	flushBytes   int // buffered log past which the view flushes on its own
	pageBytes    int // a page is closed before an op would take it past this
	commitBytes  int // the largest commit the store makes (with one record more)
	commitWrites int
	// A checkpoint is made at the flush after the log has grown by
	// checkpointOps ops or checkpointBytes since the last one (bounding
	// what reopening reads), or once dirtyMax registers wait.
	checkpointOps   uint64
	checkpointBytes int
	dirtyMax        int
	dirtyBytes      int // estimated (regSize), like regCacheBytes
	// regCacheMax and regCacheBytes bound the clean registers kept
	// decoded in memory; past either, a quarter is evicted.
	regCacheMax   int
	regCacheBytes int
}

var defaultKVLimits = kvLimits{
	flushBytes:      2 << 20,
	pageBytes:       512 << 10,
	commitBytes:     3 << 20,
	commitWrites:    24 << 10,
	checkpointOps:   256 << 10,
	checkpointBytes: 64 << 20,
	dirtyMax:        128 << 10,
	dirtyBytes:      64 << 20,
	regCacheMax:     1 << 16,
	regCacheBytes:   32 << 20,
}

func newKVStore(st feed.Storage, space auth.SpaceID, key [auth.KeySize]byte, rand io.Reader) *kvStore {
	return &kvStore{
		st:      st,
		key:     key,
		prefix:  StorePrefixes(space)[1],
		rand:    rand,
		feedNo:  map[feed.PublicKey]uint32{},
		dirty:   map[string]memReg{},
		regs:    map[string]memReg{},
		pending: map[string][]pendOp{},
		counts:  func(OpID, Clock) bool { return true },
		lim:     defaultKVLimits,
	}
}

func (s *kvStore) failed() error { return s.err }

func (s *kvStore) fail(err error) {
	if s.err == nil {
		s.err = err
	}
}

func (s *kvStore) num(k feed.PublicKey) uint32 {
	n, ok := s.feedNo[k]
	if !ok {
		n = uint32(len(s.feedKey))
		s.feedNo[k] = n
		s.feedKey = append(s.feedKey, k)
	}
	return n
}

func (s *kvStore) recKey(kind byte, parts ...[]byte) []byte {
	k := append(slices.Clone(s.prefix), kind)
	for _, p := range parts {
		k = append(k, p...)
	}
	return k
}

func (s *kvStore) keyHash(name string) []byte {
	if s.lastHash != nil && name == s.lastKey {
		return s.lastHash
	}
	if s.mac == nil {
		s.mac = hmac.New(sha256.New, s.key[:])
	}
	s.mac.Reset()
	s.mac.Write([]byte("mycel/v1/view-key-name\x00"))
	s.mac.Write([]byte(name))
	s.lastKey, s.lastHash = name, s.mac.Sum(nil)[:16]
	return s.lastHash
}

func (s *kvStore) seal(k, plain []byte) feed.Write {
	sealed, err := auth.SealContent(s.key, plain, k, s.rand)
	if err != nil {
		s.fail(err)
	}
	return feed.Write{Key: k, Value: sealed}
}

func (s *kvStore) get(k []byte) ([]byte, error) {
	sealed, err := s.st.Get(k)
	if err != nil {
		return nil, err
	}
	return s.open(k, sealed)
}

func (s *kvStore) open(k, sealed []byte) ([]byte, error) {
	plain, err := auth.OpenContent(s.key, sealed, k)
	if err != nil {
		return nil, fmt.Errorf("space: stored view record: %w", err)
	}
	return plain, nil
}

// drop deletes every record of the view (one of another format version).
func (s *kvStore) drop() error {
	return s.deleteRange(s.prefix, feed.PrefixEnd(s.prefix))
}

func (s *kvStore) deleteRange(start, end []byte) error {
	for {
		var batch []feed.Write
		err := s.st.Scan(start, end, func(k, _ []byte) error {
			batch = append(batch, feed.Write{Key: slices.Clone(k), Delete: true})
			if len(batch) == s.lim.commitWrites {
				return feed.ErrStopScan
			}
			return nil
		})
		if err != nil {
			return err
		}
		if len(batch) == 0 {
			return nil
		}
		if err := s.st.Commit(batch); err != nil {
			return err
		}
	}
}

func uvarint(b []byte) (uint64, []byte, error) {
	v, n := binary.Uvarint(b)
	if n <= 0 {
		return 0, nil, errors.New("bad varint")
	}
	return v, b[n:], nil
}
