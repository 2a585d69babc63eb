package focalx

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
)

var testKey = bytes.Repeat([]byte{0x42}, KeySize)

func TestSealOpenRoundTrip(t *testing.T) {
	for _, mode := range []Mode{CBC, GCM} {
		for _, n := range []int{0, 1, 15, 16, 17, 32, 100} {
			pt := bytes.Repeat([]byte{'x'}, n)
			env, err := Seal(mode, testKey, pt)
			if err != nil {
				t.Fatalf("%s Seal(%d bytes): %v", mode, n, err)
			}
			got, err := Open(mode, testKey, env)
			if err != nil || !bytes.Equal(got, pt) {
				t.Fatalf("%s Open(Seal(%d bytes)) = %q, %v", mode, n, got, err)
			}
			// A fresh IV or nonce every time: the same input never seals the same.
			again, _ := Seal(mode, testKey, pt)
			if again == env {
				t.Fatalf("%s sealed %d bytes twice to the same envelope", mode, n)
			}
		}
	}
}

func TestSealLayout(t *testing.T) {
	pt := []byte(`{"client_key":"k"}`) // 18 bytes: CBC pads to 32
	env, _ := Seal(CBC, testKey, pt)
	raw, err := base64.StdEncoding.DecodeString(env)
	if err != nil || len(raw) != 16+32 {
		t.Fatalf("CBC envelope: %d bytes, %v; want IV + 2 blocks", len(raw), err)
	}
	// Decrypt by hand: IV first, PKCS#7 padding of 14 bytes of 14.
	block, _ := aes.NewCipher(testKey)
	out := make([]byte, 32)
	cipher.NewCBCDecrypter(block, raw[:16]).CryptBlocks(out, raw[16:])
	if !bytes.Equal(out[:18], pt) || !bytes.Equal(out[18:], bytes.Repeat([]byte{14}, 14)) {
		t.Fatalf("CBC layout: %x", out)
	}

	env, _ = Seal(GCM, testKey, pt)
	raw, _ = base64.StdEncoding.DecodeString(env)
	if len(raw) != 12+len(pt)+16 {
		t.Fatalf("GCM envelope: %d bytes; want nonce + %d + tag", len(raw), len(pt))
	}
	aead, _ := cipher.NewGCM(block)
	if got, err := aead.Open(nil, raw[:12], raw[12:], nil); err != nil || !bytes.Equal(got, pt) {
		t.Fatalf("GCM layout: %q, %v", got, err)
	}
}

// cbcRaw encrypts blocks (already a whole number of blocks) with a zero IV,
// to build envelopes with chosen padding.
func cbcRaw(plain []byte) string {
	block, _ := aes.NewCipher(testKey)
	buf := make([]byte, 16+len(plain))
	copy(buf[16:], plain)
	cipher.NewCBCEncrypter(block, buf[:16]).CryptBlocks(buf[16:], buf[16:])
	return base64.StdEncoding.EncodeToString(buf)
}

func TestOpenRejects(t *testing.T) {
	cbc, _ := Seal(CBC, testKey, []byte("hello, focalx"))
	gcm, _ := Seal(GCM, testKey, []byte("hello, focalx"))
	flip := func(env string, i int) string {
		raw, _ := base64.StdEncoding.DecodeString(env)
		raw[i] ^= 1
		return base64.StdEncoding.EncodeToString(raw)
	}
	short := func(env string, n int) string {
		raw, _ := base64.StdEncoding.DecodeString(env)
		return base64.StdEncoding.EncodeToString(raw[:n])
	}
	block := bytes.Repeat([]byte{'a'}, 16)
	for _, tc := range []struct {
		name string
		mode Mode
		env  string
	}{
		{"cbc empty", CBC, ""},
		{"cbc not base64", CBC, "not base64!"},
		{"cbc url alphabet", CBC, strings.NewReplacer("+", "-", "/", "_").Replace(cbc) + "-_"},
		{"cbc IV only", CBC, short(cbc, 16)},
		{"cbc not whole blocks", CBC, short(cbc, 31)},
		{"cbc pad 0", CBC, cbcRaw(append(block[:15:15], 0))},
		{"cbc pad 17", CBC, cbcRaw(append(block[:15:15], 17))},
		{"cbc pad 255", CBC, cbcRaw(append(block[:15:15], 255))},
		{"cbc pad bytes differ", CBC, cbcRaw(append(append(block[:13:13], 2, 3), 3))},
		{"cbc IV tampered under the padding", CBC, flip(cbc, 15)}, // 13 bytes + 3,3,3 becomes 3,3,2
		{"gcm empty", GCM, ""},
		{"gcm nonce only", GCM, short(gcm, 12)},
		{"gcm one byte short of a tag", GCM, short(gcm, 27)},
		{"gcm ciphertext tampered", GCM, flip(gcm, 13)},
		{"gcm nonce tampered", GCM, flip(gcm, 0)},
		{"gcm tag tampered", GCM, flip(gcm, 12+13+15)},
		{"gcm envelope opened as cbc", CBC, gcm},
		{"cbc envelope opened as gcm", GCM, cbc},
	} {
		got, err := Open(tc.mode, testKey, tc.env)
		if err == nil {
			t.Errorf("%s: opened to %q", tc.name, got)
		} else if !errors.Is(err, ErrEnvelope) {
			t.Errorf("%s: error %v does not wrap ErrEnvelope", tc.name, err)
		}
	}
	// A wrong key: GCM always notices; CBC notices through the padding (or
	// the JSON the sandbox then fails to parse).
	other := bytes.Repeat([]byte{0x43}, KeySize)
	if _, err := Open(GCM, other, gcm); err == nil {
		t.Error("GCM opened with another key")
	}
	// Valid padding, the right plaintext: exercise the good path of unpad.
	if got, err := Open(CBC, testKey, cbcRaw(append(block[:14:14], 2, 2))); err != nil || !bytes.Equal(got, block[:14]) {
		t.Errorf("two bytes of padding: %q, %v", got, err)
	}
	if got, err := Open(CBC, testKey, cbcRaw(bytes.Repeat([]byte{16}, 16))); err != nil || len(got) != 0 {
		t.Errorf("a whole block of padding: %q, %v", got, err)
	}
}

func TestKeyAndMode(t *testing.T) {
	hexKey := strings.Repeat("0f", 32)
	b64 := base64.StdEncoding.EncodeToString(testKey)
	for _, s := range []string{hexKey, strings.ToUpper(hexKey), b64, strings.TrimRight(b64, "="),
		base64.URLEncoding.EncodeToString(bytes.Repeat([]byte{0xfb}, 32)), base64.RawURLEncoding.EncodeToString(bytes.Repeat([]byte{0xfb}, 32)), " " + hexKey + " "} {
		if k, err := ParseKey(s); err != nil || len(k) != KeySize {
			t.Errorf("ParseKey(%q) = %d bytes, %v", s, len(k), err)
		}
	}
	if k, _ := ParseKey(hexKey); k[0] != 0x0f {
		t.Errorf("64 hex characters must be read as hex, got %x", k)
	}
	// Raw keys: 32 characters are the key's bytes, whatever they look like
	// (hex-looking or not); never decoded (issue 9, point 6).
	for _, s := range []string{strings.Repeat("0f", 16), "0123456789abcdef0123456789abcdeg", strings.Repeat("z", 32), " " + strings.Repeat("z", 32)} {
		if k, err := ParseKey(s); err != nil || string(k) != strings.TrimSpace(s) {
			t.Errorf("ParseKey(%q) = %q, %v: want the 32 characters as the key", s, k, err)
		}
	}
	for _, s := range []string{"", "short", strings.Repeat("0f", 33), strings.Repeat("z", 31), strings.Repeat("z", 33), strings.Repeat("g", 64),
		base64.StdEncoding.EncodeToString(make([]byte, 16))} {
		if _, err := ParseKey(s); err == nil {
			t.Errorf("ParseKey(%q) accepted", s)
		} else if s != "" && strings.Contains(err.Error(), s) {
			t.Errorf("ParseKey error quotes the key: %v", err)
		}
	}
	for in, want := range map[string]Mode{"": CBC, "cbc": CBC, "CBC": CBC, " gcm ": GCM} {
		if m, err := ParseMode(in); err != nil || m != want {
			t.Errorf("ParseMode(%q) = %q, %v", in, m, err)
		}
	}
	if _, err := ParseMode("ctr"); err == nil {
		t.Error("ParseMode(ctr) accepted")
	}
	if _, err := Seal(CBC, testKey[:16], nil); err == nil {
		t.Error("Seal with an AES-128 key accepted")
	}
	if _, err := Open(GCM, testKey[:24], ""); err == nil {
		t.Error("Open with an AES-192 key accepted")
	}
}

func TestUserHash(t *testing.T) {
	// md5("a@b.c"), as `printf a@b.c | md5sum` gives it
	const want = "5d60d4e28066df254d5452f92c910092"
	for _, in := range []string{"a@b.c", " A@B.C ", "a@B.c\t"} {
		if got := UserHash(in); got != want {
			t.Errorf("UserHash(%q) = %s, want %s", in, got, want)
		}
	}
}

// FuzzOpen: Open never panics on any input, and Open(Seal(x)) == x in both
// modes with any key.
func FuzzOpen(f *testing.F) {
	cbc, _ := Seal(CBC, testKey, []byte(`{"client_key":"k","client_secret":"s","user_hash":"h"}`))
	gcm, _ := Seal(GCM, testKey, []byte("x"))
	for _, s := range []string{"", "AAAA", cbc, gcm, cbc[:len(cbc)-4], "////////////////////////////////////////////8=", "not base64"} {
		f.Add([]byte("k"), []byte("plaintext"), s)
	}
	f.Add([]byte{}, []byte{}, "")
	f.Add(testKey, bytes.Repeat([]byte{16}, 16), cbc)
	f.Fuzz(func(t *testing.T, keySeed, plain []byte, junk string) {
		sum := sha256.Sum256(keySeed)
		key := sum[:]
		for _, mode := range []Mode{CBC, GCM} {
			_, _ = Open(mode, key, junk)
			_, _ = Open(mode, testKey, junk)
			env, err := Seal(mode, key, plain)
			if err != nil {
				t.Fatalf("%s Seal: %v", mode, err)
			}
			got, err := Open(mode, key, env)
			if err != nil || !bytes.Equal(got, plain) {
				t.Fatalf("%s Open(Seal(%q)) = %q, %v", mode, plain, got, err)
			}
		}
	})
}
