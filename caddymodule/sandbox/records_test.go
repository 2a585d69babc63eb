package sandbox

import (
	"maps"
	"net/http/httptest"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

// splitMatch is match as it was (splitting both paths), the reference for
// the segment-by-segment one.
func splitMatch(pattern, path string) (map[string]string, bool) {
	if prefix, ok := strings.CutSuffix(pattern, "/*"); ok {
		rest, ok := strings.CutPrefix(path, prefix+"/")
		if !ok {
			return nil, false
		}
		return map[string]string{"*": rest}, true
	}
	ps, xs := strings.Split(pattern, "/"), strings.Split(path, "/")
	if len(ps) != len(xs) {
		return nil, false
	}
	var params map[string]string
	for i, p := range ps {
		if strings.HasPrefix(p, "{") && strings.HasSuffix(p, "}") {
			if xs[i] == "" {
				return nil, false
			}
			if params == nil {
				params = map[string]string{}
			}
			params[p[1:len(p)-1]] = xs[i]
			continue
		}
		if p != xs[i] {
			return nil, false
		}
	}
	return params, true
}

func TestMatchAsSplitting(t *testing.T) {
	patterns := []string{"/omni/start", "/0/omni/onboarding-url", "/v1/things/{id}/state", "/api/sessions/{id}",
		"/api/sessions/", "/{a}/{b}", "/", "", "/omni/*", "/incode/flow/*", "/x/{id}"}
	paths := []string{"/omni/start", "/omni/start/", "/omni/startx", "/0/omni/onboarding-url", "/v1/things/abc/state",
		"/v1/things//state", "/v1/things/abc", "/v1/things/abc/state/x", "/api/sessions/", "/api/sessions/42",
		"/api/sessions", "/a/b", "/a/", "//b", "/", "", "/omni/", "/omni/x/y", "/incode/flow/", "/x/%2F", "/x/y"}
	for _, pat := range patterns {
		for _, p := range paths {
			gp, gok := match(pat, p)
			wp, wok := splitMatch(pat, p)
			if gok != wok || !maps.Equal(gp, wp) || (gp == nil) != (wp == nil) {
				t.Errorf("match(%q, %q) = %v %v, want %v %v", pat, p, gp, gok, wp, wok)
			}
		}
	}
}

func TestRequestLogKeepsTheLastInOrder(t *testing.T) {
	var l RequestLog
	if got := l.Snapshot(); got == nil || len(got) != 0 {
		t.Fatalf("empty log: %#v", got)
	}
	for i := range MaxRequests + 750 {
		l.Record("p", httptest.NewRequest("GET", "/r/"+strconv.Itoa(i), nil), i%2 == 0, false)
		if i == MaxRequests-1 || i == MaxRequests+749 {
			rs := l.Snapshot()
			if len(rs) != MaxRequests || rs[0].Path != "/r/"+strconv.Itoa(i+1-MaxRequests) || rs[len(rs)-1].Path != "/r/"+strconv.Itoa(i) {
				t.Fatalf("after %d: %d entries, %v ... %v", i+1, len(rs), rs[0], rs[len(rs)-1])
			}
			for j := 1; j < len(rs); j++ {
				a, _ := strconv.Atoi(strings.TrimPrefix(rs[j-1].Path, "/r/"))
				b, _ := strconv.Atoi(strings.TrimPrefix(rs[j].Path, "/r/"))
				if b != a+1 || rs[j].APIKey != (b%2 == 0) {
					t.Fatalf("out of order at %d: %v %v", j, rs[j-1], rs[j])
				}
			}
		}
	}
	l.Reset()
	l.Record("p", httptest.NewRequest("GET", "/again", nil), false, true)
	if rs := l.Snapshot(); len(rs) != 1 || rs[0].Path != "/again" || !rs[0].Executive || rs[0].Host != "example.com" {
		t.Fatalf("after a reset: %v", rs)
	}
}

func TestCallsSnapshotJoinsKeys(t *testing.T) {
	c := NewCalls()
	c.Record("incode", "omni/start", CredAPIKey)
	c.Record("incode", "omni/start", CredAPIKey)
	c.Record("p", "a b", "c") // joins as "p a b c", as does the next
	c.Record("p", "a", "b c")
	want := map[string]int{"incode omni/start api_key": 2, "p a b c": 2}
	if got := c.Snapshot(); !reflect.DeepEqual(got, want) {
		t.Fatalf("%v, want %v", got, want)
	}
	c.Reset()
	if got := c.Snapshot(); got == nil || len(got) != 0 {
		t.Fatalf("after a reset: %#v", got)
	}
}

func TestFaultsFastPathFollowsRules(t *testing.T) {
	var f Faults
	if f.take("p", "op") != nil {
		t.Fatal("a rule without rules")
	}
	f.Add(Fault{Provider: "p", Status: 500, Times: 2})
	f.Add(Fault{Provider: "q", Status: 503})
	for i := range 2 {
		if r := f.take("p", "op"); r == nil || r.Status != 500 {
			t.Fatalf("take #%d: %v", i, r)
		}
	}
	if r := f.take("p", "op"); r != nil {
		t.Fatalf("a used-up rule applied: %v", r)
	}
	if r := f.take("q", "op"); r == nil || r.Status != 503 {
		t.Fatalf("the remaining rule: %v", r)
	}
	f.Clear()
	if f.take("q", "op") != nil {
		t.Fatal("a cleared rule applied")
	}
	f.Add(Fault{Status: 502, Times: 1})
	if r := f.take("any", "op"); r == nil || r.Status != 502 {
		t.Fatalf("a rule added after a clear: %v", r)
	}
	if f.take("any", "op") != nil || f.some.Load() {
		t.Fatal("the last rule used up, still some")
	}
}
