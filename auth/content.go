package auth

import (
	"fmt"
	"io"

	"golang.org/x/crypto/chacha20poly1305"
)

// Sizes of sealed content: nonce (24) ‖ XChaCha20-Poly1305 ciphertext, whose
// tag adds 16 bytes.
const (
	ContentNonceSize = chacha20poly1305.NonceSizeX
	ContentOverhead  = ContentNonceSize + chacha20poly1305.Overhead
	// MaxContentSize bounds sealed content, overhead included. It equals
	// feed.MaxEntrySize: nothing larger could be stored in one entry.
	MaxContentSize = 1 << 20
)

// SealContent encrypts plaintext with XChaCha20-Poly1305 under key (a
// ContentKey or EphemeralKey), binding additionalData, and returns
// nonce (24 bytes) ‖ ciphertext ‖ tag (16 bytes). The nonce is read from
// rand (crypto/rand when nil); 24 random bytes never repeat in practice, so
// one key can seal any number of messages.
func SealContent(key [KeySize]byte, plaintext, additionalData []byte, rand io.Reader) ([]byte, error) {
	if len(plaintext) > MaxContentSize-ContentOverhead {
		return nil, errorf(ErrTooLarge, "seal content: %d bytes, limit %d", len(plaintext), MaxContentSize-ContentOverhead)
	}
	aead, err := chacha20poly1305.NewX(key[:])
	if err != nil {
		panic("auth: " + err.Error()) // only for a key of the wrong size
	}
	out := make([]byte, ContentNonceSize, ContentOverhead+len(plaintext))
	if _, err := io.ReadFull(orCryptoRand(rand), out); err != nil {
		return nil, fmt.Errorf("auth: seal content: nonce: %w", err)
	}
	return aead.Seal(out, out, plaintext, additionalData), nil
}

// OpenContent decrypts what SealContent sealed under the same key and
// additional data. Input shorter than ContentOverhead is ErrMalformed,
// longer than MaxContentSize ErrTooLarge; anything that does not
// authenticate is ErrDecrypt.
func OpenContent(key [KeySize]byte, sealed, additionalData []byte) ([]byte, error) {
	if len(sealed) > MaxContentSize {
		return nil, errorf(ErrTooLarge, "open content: %d bytes, limit %d", len(sealed), MaxContentSize)
	}
	if len(sealed) < ContentOverhead {
		return nil, errorf(ErrMalformed, "open content: %d bytes, at least %d", len(sealed), ContentOverhead)
	}
	aead, err := chacha20poly1305.NewX(key[:])
	if err != nil {
		panic("auth: " + err.Error())
	}
	nonce, ct := sealed[:ContentNonceSize], sealed[ContentNonceSize:]
	pt, err := aead.Open(nil, nonce, ct, additionalData)
	if err != nil {
		return nil, fmt.Errorf("%w: open content", ErrDecrypt)
	}
	if pt == nil {
		pt = []byte{}
	}
	return pt, nil
}
