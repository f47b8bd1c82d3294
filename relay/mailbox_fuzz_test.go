package relay

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"testing"
	"time"

	"github.com/mycelsync/mycel/auth"
	"github.com/mycelsync/mycel/feed"
)

// TestMailboxCodec: requests and replies round-trip.
func TestMailboxCodec(t *testing.T) {
	id := randomSpace()
	a := newDevice()
	envs := [][]byte{member(t, id, a, time.Now(), "one"), member(t, id, a, time.Now(), "two")}
	b, err := encodeDeposit(id, envs)
	if err != nil {
		t.Fatal(err)
	}
	req, err := decodeMailboxRequest(bytes.NewReader(b))
	if err != nil || req.op != opDeposit || req.space != id || len(req.envs) != 2 || !bytes.Equal(req.envs[1], envs[1]) {
		t.Fatalf("deposit: %+v %v", req, err)
	}
	if _, err := encodeDeposit(id, nil); err == nil {
		t.Fatal("an empty deposit encodes")
	}
	var ch [ChallengeSize]byte
	rand.Read(ch[:])
	req, err = decodeMailboxRequest(bytes.NewReader(encodeFetch(id, a.priv, "relay", "self", ch)))
	if err != nil || req.op != opFetch || feed.PublicKey(req.key) != a.key() || !verifyFetch(req, "relay", "self", ch) {
		t.Fatalf("fetch: %+v %v", req, err)
	}
	if verifyFetch(req, "relay", "someone else", ch) {
		t.Fatal("a fetch proof verifies for another peer")
	}
	got, more, err := decodeFetchReply(bytes.NewReader(encodeFetchReply(envs, true)))
	if err != nil || !more || len(got) != 2 || !bytes.Equal(got[0], envs[0]) {
		t.Fatalf("fetch reply: %d %v %v", len(got), more, err)
	}
	errs, err := decodeDepositReply(bytes.NewReader(encodeDepositReply([]byte{codeOK, codeFull, codeDuplicate})), 3)
	if err != nil || errs[0] != nil || errs[2] != nil || mailboxCode(errs[1]) != codeFull {
		t.Fatalf("deposit reply: %v %v", errs, err)
	}
	if _, err := decodeDepositReply(bytes.NewReader([]byte{codeBusy}), 1); mailboxCode(err) != codeBusy {
		t.Fatalf("busy reply: %v", err)
	}
	e := mbEnv{expires: 42, sender: a.key(), signin: true, keyID: [16]byte{9}, byGuest: true, seen: [16]byte{3}}
	de, raw, err := decodeEnvRecord(encodeEnvRecord(e, envs[0]))
	de.size = 0
	if err != nil || de != e || !bytes.Equal(raw, envs[0]) {
		t.Fatalf("envelope record: %+v %v", de, err)
	}
	p := &mbPtr{seq: 7, guest: true, expires: 99, keyIDs: [][16]byte{{1}, {2}}}
	dp, err := decodePtrRecord(encodePtrRecord(p))
	if err != nil || dp.seq != 7 || !dp.guest || dp.expires != 99 || len(dp.keyIDs) != 2 || dp.keyIDs[1] != p.keyIDs[1] {
		t.Fatalf("pointer record: %+v %v", dp, err)
	}
}

// FuzzMailboxRequest: the relay's decoder of peers' requests never
// panics, never returns more than its bounds, and what it accepts
// re-encodes to the same bytes.
func FuzzMailboxRequest(f *testing.F) {
	id := auth.SpaceID{1}
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	dep, _ := encodeDeposit(id, [][]byte{[]byte("abc"), []byte("de")})
	f.Add(dep)
	f.Add(encodeFetch(id, priv, "r", "s", [ChallengeSize]byte{}))
	f.Add([]byte{1, 1})
	f.Add(append(append([]byte{1, 1}, id[:]...), 1, 0xff, 0xff, 0xff, 0xff))
	f.Fuzz(func(t *testing.T, b []byte) {
		req, err := decodeMailboxRequest(bytes.NewReader(b))
		if err != nil {
			return
		}
		switch req.op {
		case opDeposit:
			if len(req.envs) == 0 || len(req.envs) > MaxDepositCount {
				t.Fatalf("%d envelopes", len(req.envs))
			}
			again, err := encodeDeposit(req.space, req.envs)
			if err != nil || !bytes.HasPrefix(b, again) {
				t.Fatalf("deposit does not re-encode: %v", err)
			}
		case opFetch:
		default:
			t.Fatalf("op %d accepted", req.op)
		}
	})
}

// FuzzMailboxFetchReply: the daemon's decoder of a relay's fetch reply.
func FuzzMailboxFetchReply(f *testing.F) {
	f.Add(encodeFetchReply([][]byte{[]byte("abc"), []byte("de")}, true))
	f.Add(encodeFetchReply(nil, false))
	f.Add([]byte{codeForbidden})
	f.Add([]byte{0, 0, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		envs, more, err := decodeFetchReply(bytes.NewReader(b))
		if err != nil {
			return
		}
		if len(envs) > MaxFetchCount {
			t.Fatalf("%d envelopes", len(envs))
		}
		if again := encodeFetchReply(envs, more); !bytes.HasPrefix(b, again) {
			t.Fatal("fetch reply does not re-encode")
		}
	})
}

// FuzzMailboxDepositReply: the daemon's decoder of a deposit's reply.
func FuzzMailboxDepositReply(f *testing.F) {
	f.Add(encodeDepositReply([]byte{0, 5, 9}), 3)
	f.Add([]byte{codeBusy}, 1)
	f.Fuzz(func(t *testing.T, b []byte, n int) {
		if n < 0 || n > MaxDepositCount {
			return
		}
		errs, err := decodeDepositReply(bytes.NewReader(b), n)
		if err == nil && len(errs) != n {
			t.Fatalf("%d errors for %d envelopes", len(errs), n)
		}
	})
}

// FuzzMailboxRecords: the decoders of the mailbox's stored records (read
// back at start-up; a damaged store must give an error, not a panic).
func FuzzMailboxRecords(f *testing.F) {
	f.Add(encodeEnvRecord(mbEnv{expires: 1, signin: true}, []byte("envelope")))
	f.Add(encodePtrRecord(&mbPtr{seq: 3, guest: true, keyIDs: [][16]byte{{1}}}))
	f.Fuzz(func(t *testing.T, b []byte) {
		if e, raw, err := decodeEnvRecord(b); err == nil && !bytes.Equal(encodeEnvRecord(e, raw), b) {
			t.Fatal("envelope record does not re-encode")
		}
		if p, err := decodePtrRecord(b); err == nil && !bytes.Equal(encodePtrRecord(p), b) {
			t.Fatal("pointer record does not re-encode")
		}
	})
}
