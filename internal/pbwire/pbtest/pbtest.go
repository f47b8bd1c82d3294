// Package pbtest checks the hand-written protobuf codecs of the message
// packages against their golden vectors (what protoc-gen-go's code did with
// the same inputs, recorded before it was removed) and fuzzes their
// decoders. Only tests import it.
package pbtest

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"os"
	"sort"
	"strings"
	"testing"
)

// Codec is what every message of the packages has.
type Codec interface {
	Marshal() ([]byte, error)
	Unmarshal([]byte) error
	Size() int
}

// Vector is one golden line ("Type input want", hex, "." for no bytes): a
// message type, an input, and the encoding of what the generated code
// decoded from it (Want), or nil ("-") where it refused the input.
type Vector struct {
	Type string
	In   []byte
	Want []byte
}

// Read reads a golden file (testdata/golden.txt).
func Read(t testing.TB, path string) []Vector {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var vs []Vector
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fields := strings.Fields(line)
		if len(fields) != 3 {
			t.Fatalf("%s: bad line %q", path, line)
		}
		v := Vector{Type: fields[0]}
		if v.In, err = unhex(fields[1]); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if fields[2] != "-" {
			if v.Want, err = unhex(fields[2]); err != nil {
				t.Fatalf("%s: %v", path, err)
			}
		}
		vs = append(vs, v)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return vs
}

// unhex decodes a hex field of a golden line; "." is no bytes.
func unhex(s string) ([]byte, error) {
	if s == "." {
		return []byte{}, nil
	}
	return hex.DecodeString(s)
}

// Golden checks every vector of path: the input decodes (or is refused) as
// the generated code did, what it decodes to encodes to the same bytes,
// with the same size, and those bytes decode and encode to themselves.
func Golden(t *testing.T, path string, news map[string]func() Codec) {
	vs := Read(t, path)
	seen := map[string]int{}
	for i, v := range vs {
		newMsg, ok := news[v.Type]
		if !ok {
			t.Fatalf("vector %d: no message %s", i, v.Type)
		}
		seen[v.Type]++
		m := newMsg()
		err := m.Unmarshal(v.In)
		if v.Want == nil {
			if err == nil {
				t.Errorf("vector %d (%s %x): decoded what the generated code refused", i, v.Type, v.In)
			}
			continue
		}
		if err != nil {
			t.Errorf("vector %d (%s %x): %v", i, v.Type, v.In, err)
			continue
		}
		got, err := m.Marshal()
		if err != nil || !bytes.Equal(got, v.Want) {
			t.Errorf("vector %d (%s %x):\nencoded   %x (%v)\ngenerated %x", i, v.Type, v.In, got, err, v.Want)
			continue
		}
		if m.Size() != len(got) {
			t.Errorf("vector %d (%s): size %d, encoding of %d bytes", i, v.Type, m.Size(), len(got))
		}
		again := newMsg()
		if err := again.Unmarshal(v.Want); err != nil {
			t.Errorf("vector %d (%s): its encoding: %v", i, v.Type, err)
		} else if b, _ := again.Marshal(); !bytes.Equal(b, v.Want) {
			t.Errorf("vector %d (%s): its encoding re-encodes as %x", i, v.Type, b)
		}
	}
	for name := range news {
		if seen[name] == 0 {
			t.Errorf("no vector of %s", name)
		}
	}
}

// Fuzz fuzzes the decoders of news: the first byte of the input picks the
// message, the rest is decoded. Nothing panics; what decodes encodes with
// its Size, to no more bytes than the input, and that encoding decodes and
// encodes to itself. The golden inputs of path seed it.
func Fuzz(f *testing.F, path string, news map[string]func() Codec) {
	names := make([]string, 0, len(news))
	for name := range news {
		names = append(names, name)
	}
	sort.Strings(names)
	index := map[string]byte{}
	for i, name := range names {
		index[name] = byte(i)
	}
	for _, v := range Read(f, path) {
		if len(v.In) < 4096 {
			f.Add(append([]byte{index[v.Type]}, v.In...))
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) == 0 {
			return
		}
		newMsg := news[names[int(data[0])%len(names)]]
		in := data[1:]
		m := newMsg()
		if m.Unmarshal(in) != nil {
			return
		}
		enc, err := m.Marshal()
		if err != nil {
			t.Fatalf("decoded, but encoding fails: %v", err)
		}
		if len(enc) != m.Size() {
			t.Fatalf("size %d, encoding of %d bytes", m.Size(), len(enc))
		}
		if len(enc) > len(in) {
			t.Fatalf("%d bytes re-encode as %d", len(in), len(enc))
		}
		again := newMsg()
		if err := again.Unmarshal(enc); err != nil {
			t.Fatalf("encoding does not decode: %v", err)
		}
		if b, _ := again.Marshal(); !bytes.Equal(b, enc) {
			t.Fatalf("encoding %x re-encodes as %x", enc, b)
		}
	})
}
