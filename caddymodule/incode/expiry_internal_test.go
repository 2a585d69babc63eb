package incode

import (
	"encoding/base64"
	"testing"
	"time"
)

func jwtWith(payload string) string {
	enc := base64.RawURLEncoding.EncodeToString
	return enc([]byte(`{"alg":"HS256"}`)) + "." + enc([]byte(payload)) + ".sig"
}

func TestJWTExpiry(t *testing.T) {
	for _, tc := range []struct {
		tok  string
		want time.Time
		ok   bool
	}{
		{jwtWith(`{"exp":1800000000}`), time.Unix(1800000000, 0).UTC(), true},
		{jwtWith(`{"exp":1800000000.7}`), time.Unix(1800000000, 0).UTC(), true},
		{jwtWith(`{"sub":"x"}`), time.Time{}, false},
		{jwtWith(`{"exp":"soon"}`), time.Time{}, false},
		{jwtWith(`{"exp":-5}`), time.Time{}, false},
		{jwtWith(`not json`), time.Time{}, false},
		{"a.b", time.Time{}, false},
		{"a.!!!.c", time.Time{}, false},
		{"", time.Time{}, false},
	} {
		got, ok := jwtExpiry(tc.tok)
		if ok != tc.ok || !got.Equal(tc.want) {
			t.Errorf("jwtExpiry(%q) = %v %v, want %v %v", tc.tok, got, ok, tc.want, tc.ok)
		}
	}
}
