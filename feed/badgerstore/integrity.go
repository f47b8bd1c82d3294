package badgerstore

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/options"
	"github.com/dgraph-io/badger/v4/table"
	"github.com/dgraph-io/ristretto/v2/z"

	"github.com/mycelsync/mycel/feed"
)

// ErrDamaged is wrapped by the errors of Open (and of reads) that found
// the store's files damaged: missing, cut short, or failing badger's
// checksums. Nothing was changed on disk when Open returns it.
var ErrDamaged = errors.New("store damaged")

// DamageError says what Open found damaged in a store.
type DamageError struct {
	Dir     string // the store's directory
	Problem string // what is damaged, for a person
	Err     error  // badger's error, if it found the damage
}

func (e *DamageError) Error() string {
	s := fmt.Sprintf("badgerstore: %s: %v: %s", e.Dir, ErrDamaged, e.Problem)
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *DamageError) Unwrap() []error { return []error{ErrDamaged, e.Err} }

func damaged(dir, format string, args ...any) *DamageError {
	return &DamageError{Dir: dir, Problem: fmt.Sprintf(format, args...)}
}

// CleanCloseFile is written into the store's directory by Close, after
// badger closed: the name and size of every file badger left. Open checks
// the files against it (a file missing or of another size is damage) and
// removes it before badger starts changing the files. It is absent after
// a crash.
const CleanCloseFile = "MYCEL-CLOSED"

type cleanClose struct {
	Files map[string]int64 `json:"files"`
}

// badger's log file layout (value log and memtable WAL; badger v4
// value.go, memtable.go, structs.go): a 20-byte header (key ID, base IV),
// then entries: meta, user meta, uvarint key length, uvarint value
// length, uvarint expiry, key (with an 8-byte version suffix), value, and
// a big-endian CRC-32C of all of the preceding bytes of the entry. Entries
// of a transaction carry bitTxn and are followed by one bitFinTxn entry
// whose value is the decimal commit timestamp.
const (
	logHeaderSize = 20
	bitTxn        = 1 << 6
	bitFinTxn     = 1 << 7
	maxLogKey     = 1 << 16
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// logScan is what walking a log file found.
type logScan struct {
	size     int64
	validEnd int64  // end of the last committed entry: badger cuts the file here when it opens it
	stop     int64  // where the walk stopped: the first entry that does not read whole and intact
	entryEnd int64  // where that entry would end, by its header (stop if unreadable)
	stopKlen uint64 // the key length that entry's header reads (0: its first bytes are not written)
	// cutData: a byte that is not zero lies in what badger would cut,
	// [validEnd, size). tornOnly: those bytes are at most the complete
	// entries of an unfinished transaction and one torn entry (maxTorn)
	// after them, as a crash in the middle of a commit leaves.
	cutData, tornOnly bool
}

// scanLog walks a badger log file as badger does when it opens one.
func scanLog(path string) (logScan, error) {
	f, err := os.Open(path)
	if err != nil {
		return logScan{}, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return logScan{}, err
	}
	s := logScan{size: fi.Size(), validEnd: logHeaderSize, stop: logHeaderSize}
	if s.size < logHeaderSize {
		s.validEnd, s.stop, s.entryEnd = 0, 0, 0
		return s, s.classify(f)
	}
	r := bufio.NewReaderSize(io.NewSectionReader(f, logHeaderSize, s.size-logHeaderSize), 256<<10)
	off := int64(logHeaderSize)
	var txnTs uint64
	inTxn := false
	var kv []byte
	for {
		s.stop, s.entryEnd = off, off
		h := crc32.New(castagnoli)
		tr := &countReader{r: r, h: h}
		meta, err1 := tr.ReadByte()
		_, err2 := tr.ReadByte()
		klen, err3 := binary.ReadUvarint(tr)
		vlen, err4 := binary.ReadUvarint(tr)
		_, err5 := binary.ReadUvarint(tr)
		s.stopKlen = klen
		if err := errors.Join(err1, err2, err3, err4, err5); err != nil || klen > maxLogKey || vlen > math.MaxUint32 {
			break
		}
		n := int64(klen + vlen)
		s.entryEnd = off + tr.n + n + 4
		if n > s.size {
			break
		}
		kv = slices.Grow(kv[:0], int(n))[:n]
		if _, err := io.ReadFull(tr, kv); err != nil {
			break
		}
		var sum [4]byte
		if _, err := io.ReadFull(r, sum[:]); err != nil {
			break
		}
		if binary.BigEndian.Uint32(sum[:]) != h.Sum32() || klen == 0 {
			break
		}
		off = s.entryEnd
		key, value := kv[:klen], kv[klen:]
		switch {
		case meta&bitTxn != 0:
			ts := parseTs(key)
			if !inTxn {
				txnTs, inTxn = ts, true
			}
			if ts != txnTs {
				s.stop = off - (tr.n + n + 4)
				s.entryEnd = off
				return s, s.classify(f)
			}
		case meta&bitFinTxn != 0:
			ts, err := strconv.ParseUint(string(value), 10, 64)
			if err != nil || !inTxn || ts != txnTs {
				s.stop = off - (tr.n + n + 4)
				return s, s.classify(f)
			}
			inTxn = false
			s.validEnd = off
		default:
			if inTxn {
				s.stop = off - (tr.n + n + 4)
				return s, s.classify(f)
			}
			s.validEnd = off
		}
	}
	return s, s.classify(f)
}

func parseTs(key []byte) uint64 {
	if len(key) <= 8 {
		return 0
	}
	return math.MaxUint64 - binary.BigEndian.Uint64(key[len(key)-8:])
}

// maxTorn bounds the bytes a crash can leave half-written at the end of
// a log: badger copies one entry at a time into the mapped file, and
// Go's memmove may store an entry's end before its start, so a torn
// entry is any pattern of its bytes. An entry is at most a header, a key
// and a value, and mycel's values fit in one commit.
const maxTorn = 22 + maxLogKey + 8 + feed.MaxCommitBytes + 4

// classify sets cutData and tornOnly.
func (s *logScan) classify(f *os.File) error {
	nz, err := firstNonZero(f, s.validEnd, s.size)
	if err != nil {
		return err
	}
	s.cutData = nz < s.size
	if !s.cutData {
		return nil
	}
	// The entry at stop: whole but of an unfinished transaction, or
	// torn. A torn entry has its own bytes or zeros: a header that reads
	// gives its end; a header whose first bytes are still zeros leaves
	// maxTorn bytes that may be its rest. Go's memmove of more than 256
	// bytes stores the first 32 last, after a loop from an aligned
	// address up to 31 bytes in, so a torn entry's header may be zeros up
	// to a point and its key's bytes after: it reads as a key of length 0,
	// which no entry has (the crash test met it once in ~600 kills).
	var end int64
	switch hz, err := firstNonZero(f, s.stop, min(s.stop+22, s.size)); {
	case err != nil:
		return err
	case hz >= min(s.stop+22, s.size), s.stopKlen == 0:
		end = min(s.stop+maxTorn, s.size)
	case s.entryEnd > s.stop && s.entryEnd <= s.size:
		end = s.entryEnd
	default:
		return nil // a header that does not read, or an entry cut off
	}
	nz, err = firstNonZero(f, end, s.size)
	s.tornOnly = nz >= s.size
	return err
}

// firstNonZero returns the offset of the first byte in [from, size) of f
// that is not zero, or size. Holes of a sparse file (badger preallocates
// its logs, 2 × ValueLogFileSize) are skipped without reading them
// (nextData), and each chunk read is compared whole with zeros before it
// is searched, so that a store's open does not walk 256 MiB a byte at a
// time.
func firstNonZero(f *os.File, from, size int64) (int64, error) {
	buf := make([]byte, 256<<10)
	zeros := make([]byte, len(buf))
	for off := from; off < size; {
		if data, ok := nextData(f, off); ok {
			if data >= size {
				return size, nil
			}
			off = max(off, data)
		}
		n, err := f.ReadAt(buf[:min(int64(len(buf)), size-off)], off)
		if !bytes.Equal(buf[:n], zeros[:n]) {
			for i, b := range buf[:n] {
				if b != 0 {
					return off + int64(i), nil
				}
			}
		}
		off += int64(n)
		if err != nil && !errors.Is(err, io.EOF) {
			return 0, err
		}
		if n == 0 {
			break
		}
	}
	return size, nil
}

type countReader struct {
	r  *bufio.Reader
	h  io.Writer
	n  int64
	b1 [1]byte
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.h.Write(p[:n])
	c.n += int64(n)
	return n, err
}

func (c *countReader) ReadByte() (byte, error) {
	b, err := c.r.ReadByte()
	if err != nil {
		return 0, err
	}
	c.b1[0] = b
	c.h.Write(c.b1[:])
	c.n++
	return b, nil
}

// storeFiles lists the files of badger's in dir: name → size.
func storeFiles(dir string) (map[string]int64, error) {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	out := make(map[string]int64)
	for _, e := range ents {
		name := e.Name()
		if e.IsDir() || name == CleanCloseFile || name == "LOCK" || strings.HasSuffix(name, ".tmp") {
			continue
		}
		fi, err := e.Info()
		if err != nil {
			return nil, err
		}
		out[name] = fi.Size()
	}
	return out, nil
}

func fidOf(name, ext string) (uint64, bool) {
	s, ok := strings.CutSuffix(name, ext)
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseUint(s, 10, 32)
	return n, err == nil
}

// preflight checks dir before badger opens it read-write, so that badger
// never cuts or drops data that damage made it unable to read: every file
// the last clean close left is there at its size, the MANIFEST is there
// whenever tables or logs are, and every value log and memtable log reads
// to its end — except, after a crash (no clean-close record), a torn last
// entry followed only by zeros, which badger's recovery drops. It removes
// the clean-close record last, once the files passed.
func preflight(dir string, bo badger.Options) error {
	readOnly := bo.ReadOnly
	files, err := storeFiles(dir)
	if err != nil {
		return fmt.Errorf("badgerstore: %s: %w", dir, err)
	}
	recPath := filepath.Join(dir, CleanCloseFile)
	var rec *cleanClose
	if data, err := os.ReadFile(recPath); err == nil {
		rec = new(cleanClose)
		if err := json.Unmarshal(data, rec); err != nil {
			return damaged(dir, "%s is unreadable (%v)", CleanCloseFile, err)
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("badgerstore: %w", err)
	}
	if rec != nil {
		names := make([]string, 0, len(rec.Files))
		for name := range rec.Files {
			names = append(names, name)
		}
		slices.Sort(names)
		for _, name := range names {
			want := rec.Files[name]
			got, ok := files[name]
			switch {
			case !ok:
				return damaged(dir, "file %s is missing (it was there, %d bytes, when the store was last closed)", name, want)
			case got != want:
				return damaged(dir, "file %s is %d bytes; it was %d bytes when the store was last closed", name, got, want)
			}
		}
	}
	var logs, tables []string
	var maxVlog uint64
	data := false
	for name := range files {
		if _, ok := fidOf(name, ".vlog"); ok {
			logs = append(logs, name)
			data = true
		}
		if id, ok := fidOf(name, ".vlog"); ok && id > maxVlog {
			maxVlog = id
		}
		if _, ok := fidOf(name, ".mem"); ok {
			logs = append(logs, name)
		}
		if _, ok := fidOf(name, ".sst"); ok {
			data = true
		}
	}
	if _, ok := files["MANIFEST"]; !ok && data {
		return damaged(dir, "file MANIFEST is missing, so the tables and logs there cannot be read")
	}
	if _, ok := files["MANIFEST"]; ok {
		// The tables the MANIFEST names; others are left over from a
		// compaction a crash interrupted, and badger removes them.
		m, err := readManifest(filepath.Join(dir, "MANIFEST"), bo)
		if err != nil {
			return &DamageError{Dir: dir, Problem: "file MANIFEST does not read", Err: err}
		}
		for id := range m.Tables {
			name := fmt.Sprintf("%06d.sst", id)
			if _, ok := files[name]; !ok {
				return damaged(dir, "table %s, which the MANIFEST lists, is missing", name)
			}
			tables = append(tables, name)
		}
	}
	slices.Sort(tables)
	for _, name := range tables {
		if err := verifyTable(filepath.Join(dir, name), bo); err != nil {
			return &DamageError{Dir: dir, Problem: fmt.Sprintf("table %s fails its checks", name), Err: err}
		}
	}
	slices.Sort(logs)
	for _, name := range logs {
		s, err := scanLog(filepath.Join(dir, name))
		if err != nil {
			return fmt.Errorf("badgerstore: %s: %w", dir, err)
		}
		// A value log other than the newest was closed whole by badger
		// when it moved on to the next; only the newest log and the
		// memtable logs can hold a crash's torn tail.
		id, isVlog := fidOf(name, ".vlog")
		last := !isVlog || id == maxVlog
		switch {
		case s.size < logHeaderSize:
			return damaged(dir, "file %s is cut short (%d bytes)", name, s.size)
		case s.cutData && (rec != nil || !last || !s.tornOnly):
			// Badger would cut data it cannot read. After a crash in
			// the middle of a commit, the newest logs end in that
			// commit's entries, maybe torn, then zeros: never
			// acknowledged, badger drops them. Anything else there is
			// damage.
			return damaged(dir, "file %s does not read past byte %d of %d (an entry there fails its checksum or is cut off)", name, s.stop, s.size)
		}
	}
	if rec != nil && !readOnly {
		if err := os.Remove(recPath); err != nil {
			return fmt.Errorf("badgerstore: %w", err)
		}
		if err := syncDir(dir); err != nil {
			return fmt.Errorf("badgerstore: %w", err)
		}
	}
	return nil
}

// writeCleanClose records the files badger left in dir.
func writeCleanClose(dir string) error {
	files, err := storeFiles(dir)
	if err != nil {
		return err
	}
	data, err := json.Marshal(cleanClose{Files: files})
	if err != nil {
		return err
	}
	path := filepath.Join(dir, CleanCloseFile)
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	return syncDir(dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

func readManifest(path string, bo badger.Options) (m badger.Manifest, err error) {
	f, err := os.Open(path)
	if err != nil {
		return m, err
	}
	defer f.Close()
	defer func() {
		if recover() != nil {
			err = errors.New("its records do not read")
		}
	}()
	m, _, err = badger.ReplayManifestFile(f, bo.ExternalMagicVersion, bo)
	return m, err
}

// verifyTable reads every block of the table at path with badger's own
// table reader and checks its checksums, without changing the file.
// Badger does the same when it opens a table with OnTableRead, but on
// goroutines of its own, where a damaged table panics the process (a nil
// block in Table.VerifyChecksum; readNoFail on a table cut short); here
// a panic is recovered and reported as damage.
func verifyTable(path string, bo badger.Options) (err error) {
	mf, err := z.OpenMmapFile(path, os.O_RDONLY, 0)
	if err != nil && !errors.Is(err, z.NewFile) {
		return err
	}
	defer func() {
		if recover() != nil {
			// Badger's reader fails this way on a block whose checksum
			// does not match (it dereferences the nil block) and on a
			// table cut short (readNoFail).
			err = errors.New("a block does not read (bad checksum) or the table is cut off")
		}
		mf.Close(-1)
	}()
	t, err := table.OpenTable(mf, table.Options{
		ReadOnly:           true,
		TableSize:          uint64(bo.BaseTableSize),
		BlockSize:          bo.BlockSize,
		BloomFalsePositive: bo.BloomFalsePositive,
		ChkMode:            options.OnBlockRead,
		Compression:        bo.Compression,
	})
	if err != nil {
		return err
	}
	return t.VerifyChecksum()
}
