package caddymodule

import "testing"

// TestWithoutParam: only our uniqueId is removed from a forwarded query.
func TestWithoutParam(t *testing.T) {
	for in, want := range map[string]string{
		"uniqueId=1":               "",
		"a=1&uniqueId=2&b=%20+x":   "a=1&b=%20+x",
		"uniqueId=1&uniqueId=2&c":  "c",
		"unique%49d=1&uniqueIds=3": "uniqueIds=3",
		"z=uniqueId&uniqueId":      "z=uniqueId",
	} {
		if got := withoutParam(in, "uniqueId"); got != want {
			t.Errorf("%q: got %q, want %q", in, got, want)
		}
	}
}
