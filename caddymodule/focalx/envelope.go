package focalx

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// The auth header is "AES-256 encrypted JSON"; Focalx publishes neither the
// mode, nor the IV handling, nor the padding, nor the key encoding. The
// envelope is therefore configurable, and the sandbox opens it with exactly
// the same code, so the two sides can only agree by construction.

// Mode is the AES mode of the auth envelope.
type Mode string

const (
	// CBC (the default) is AES-256-CBC with PKCS#7 padding and a random
	// 16-byte IV before the ciphertext, all standard base64.
	CBC Mode = "cbc"
	// GCM is AES-256-GCM with a random 12-byte nonce before the ciphertext
	// and the 16-byte tag after it, all standard base64.
	GCM Mode = "gcm"
)

// KeySize is the length of an AES-256 key.
const KeySize = 32

// ErrEnvelope is returned by Open for anything it cannot open. Every cause
// wraps it with a short reason.
var ErrEnvelope = errors.New("cannot open the auth envelope")

// ParseMode reads the cipher option: "cbc" (also the empty default) or
// "gcm", case-insensitive.
func ParseMode(s string) (Mode, error) {
	switch m := Mode(strings.ToLower(strings.TrimSpace(s))); m {
	case "", CBC:
		return CBC, nil
	case GCM:
		return GCM, nil
	}
	return "", fmt.Errorf("cipher must be cbc or gcm, got %q", s)
}

// ParseKey decodes the encryption_key option into the 32-byte AES-256 key.
// The three accepted forms have different lengths, so a key is never read
// two ways: 64 characters are hex, 32 characters are the key's own bytes
// (raw, as Focalx hands keys out: "0123...", a UUID without dashes, any
// text), and anything else is base64 (standard or URL alphabet, padded or
// not, 43 or 44 characters) of exactly 32 bytes. Spaces at either end are
// trimmed first. The error never quotes the key.
func ParseKey(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	switch len(s) {
	case 2 * KeySize:
		if b, err := hex.DecodeString(s); err == nil {
			return b, nil
		}
	case KeySize:
		return []byte(s), nil
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			if len(b) == KeySize {
				return b, nil
			}
			return nil, fmt.Errorf("encryption_key must decode to %d bytes (AES-256), got %d: give 64 hex characters, base64 of 32 bytes, or the 32-character key itself", KeySize, len(b))
		}
	}
	return nil, fmt.Errorf("encryption_key must be %d bytes written as 64 hex characters, as base64, or as the 32 characters themselves (got %d characters)", KeySize, len(s))
}

func newBlock(key []byte) (cipher.Block, error) {
	if len(key) != KeySize {
		return nil, fmt.Errorf("the key must be %d bytes, got %d", KeySize, len(key))
	}
	return aes.NewCipher(key)
}

// Seal encrypts plaintext with key in mode and returns the base64 envelope
// sent as the auth header.
func Seal(mode Mode, key, plaintext []byte) (string, error) {
	block, err := newBlock(key)
	if err != nil {
		return "", err
	}
	switch mode {
	case CBC:
		pad := aes.BlockSize - len(plaintext)%aes.BlockSize // 1..16: PKCS#7 always pads
		buf := make([]byte, aes.BlockSize+len(plaintext)+pad)
		iv, body := buf[:aes.BlockSize], buf[aes.BlockSize:]
		_, _ = rand.Read(iv) // never fails (crypto/rand since Go 1.24)
		copy(body, plaintext)
		for i := len(plaintext); i < len(body); i++ {
			body[i] = byte(pad)
		}
		cipher.NewCBCEncrypter(block, iv).CryptBlocks(body, body)
		return base64.StdEncoding.EncodeToString(buf), nil
	case GCM:
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return "", err
		}
		nonce := make([]byte, aead.NonceSize(), aead.NonceSize()+len(plaintext)+aead.Overhead())
		_, _ = rand.Read(nonce)
		return base64.StdEncoding.EncodeToString(aead.Seal(nonce, nonce, plaintext, nil)), nil
	}
	return "", fmt.Errorf("unknown cipher mode %q", mode)
}

// Open decrypts an envelope made by Seal with the same mode and key. Any
// malformed input (bad base64, too short, not whole blocks, bad padding, a
// failed GCM tag) is an error wrapping ErrEnvelope, never a panic.
func Open(mode Mode, key []byte, b64 string) ([]byte, error) {
	block, err := newBlock(key)
	if err != nil {
		return nil, err
	}
	raw, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return nil, fmt.Errorf("%w: not base64", ErrEnvelope)
	}
	switch mode {
	case CBC:
		if len(raw) < 2*aes.BlockSize || len(raw)%aes.BlockSize != 0 {
			return nil, fmt.Errorf("%w: not an IV and whole blocks", ErrEnvelope)
		}
		out := make([]byte, len(raw)-aes.BlockSize)
		cipher.NewCBCDecrypter(block, raw[:aes.BlockSize]).CryptBlocks(out, raw[aes.BlockSize:])
		n, ok := unpad(out)
		if !ok {
			return nil, fmt.Errorf("%w: bad padding", ErrEnvelope)
		}
		return out[:n], nil
	case GCM:
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, err
		}
		if len(raw) < aead.NonceSize()+aead.Overhead() {
			return nil, fmt.Errorf("%w: too short", ErrEnvelope)
		}
		out, err := aead.Open(nil, raw[:aead.NonceSize()], raw[aead.NonceSize():], nil)
		if err != nil {
			return nil, fmt.Errorf("%w: authentication failed", ErrEnvelope)
		}
		return out, nil
	}
	return nil, fmt.Errorf("unknown cipher mode %q", mode)
}

// unpad checks PKCS#7 padding on a non-empty buffer and returns the
// plaintext length. Only the sandbox opens envelopes, so a padding oracle's
// timing is not a concern here.
func unpad(b []byte) (int, bool) {
	pad := int(b[len(b)-1])
	if pad < 1 || pad > aes.BlockSize || pad > len(b) {
		return 0, false
	}
	for _, c := range b[len(b)-pad:] {
		if int(c) != pad {
			return 0, false
		}
	}
	return len(b) - pad, true
}
