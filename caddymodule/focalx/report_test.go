package focalx_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"mime/multipart"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/caddyconfig"

	"github.com/caddy-idv/caddy-idv/caddymodule/session"
	"github.com/caddy-idv/caddy-idv/internal/testcaddy"
)

// reportKey is the damage-report key; distinctive, so logs can be searched.
const reportKey = "fx-report-key-31c4b7e2a9"

// reportConfig is a site with report_key (from the environment) whose
// access log is written, unfiltered, to the default log, beside a sandbox
// that pushes its damage reports to it.
func reportConfig(siteExtra string) string {
	return `
http://127.0.0.1:@@site@@ {
	log
	idv {
		focalx {
			api_url http://127.0.0.1:@@sbx@@
` + block("\t\t\t", map[string]string{"report_key": "{env.FOCALX_TEST_REPORT_KEY}"}) + `
		}
` + siteExtra + `
	}
	respond "frontend"
}
http://127.0.0.1:@@sbx@@ {
	idv_sandbox {
		name reports
		focalx {
` + block("\t\t\t", map[string]string{"report_url": "http://127.0.0.1:@@site@@/api/damage-report", "report_key": "{env.FOCALX_TEST_REPORT_KEY}"}) + `
		}
	}
}
`
}

// storedSession finds the stored session whose ref is ref (in the file
// storage's session database).
func storedSession(t *testing.T, root, ref string) *session.Session {
	t.Helper()
	db, err := session.DumpFileStorage(root)
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range db {
		var s session.Session
		if json.Unmarshal(b, &s) == nil && s.Ref == ref {
			return &s
		}
	}
	return nil
}

// TestDamageReportJourney: a user's token creates an inspection on the
// sandbox (multipart form, as create_inspection.rst's curl example sends
// it); finishing it makes the sandbox push the DamageReport as Focalx does
// (POST <report_url>?x-api-key=<key>, submit_damage_report.rst), and the
// sidecar records it on the inspection's session, once per report.
func TestDamageReportJourney(t *testing.T) {
	t.Setenv("FOCALX_TEST_REPORT_KEY", reportKey)
	in := testcaddy.Start(t, reportConfig(""), testcaddy.Options{LogFile: true})
	tok := mustToken(t, in, "site", "ann@example.test").Token

	var form bytes.Buffer
	mw := multipart.NewWriter(&form)
	for k, v := range map[string]string{"make": "austrianwfgw", "model": "megawala", "year": "2023", "registration_number": "BB20972",
		"mileage": "12345", "body_type": "suv", "process_id": "8H4PKG7XAX18", "meta_data": `""`} {
		_ = mw.WriteField(k, v)
	}
	_ = mw.Close()
	status, _, body := testcaddy.Do(t, http.DefaultClient, "POST", in.URL("sbx", "/createinspection/"), &form,
		"Authorization", "Bearer "+tok, "Content-Type", mw.FormDataContentType())
	var created struct {
		Inspection struct {
			ID string `json:"id"`
		} `json:"inspection"`
	}
	if status != http.StatusOK || json.Unmarshal([]byte(body), &created) != nil || created.Inspection.ID == "" {
		t.Fatalf("create inspection: %d %s", status, body)
	}
	id := created.Inspection.ID
	status, _, body = testcaddy.Do(t, http.DefaultClient, "POST", in.URL("sbx", "/__focalx/finish?damages=2&inspectionId="+id), nil)
	if status != http.StatusAccepted {
		t.Fatalf("finish: %d %s", status, body)
	}
	var s *session.Session
	deadline := time.Now().Add(20 * time.Second)
	for s = storedSession(t, in.Storage, id); s == nil || len(s.Events) == 0; s = storedSession(t, in.Storage, id) {
		if time.Now().After(deadline) {
			t.Fatalf("the damage report was not recorded; logs:\n%s", in.Logs())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if s.Provider != "focalx" || s.Status != "DAMAGE_REPORT_RECEIVED" || len(s.Events) != 1 ||
		s.Meta["registrationNumber"] != "BB20972" || s.Meta["processId"] != "8H4PKG7XAX18" || s.Meta["damages"] != "2" {
		t.Fatalf("recorded session: %+v", s)
	}
	// A second report is pushed (and recorded); delivered again by hand,
	// twice, it is acknowledged each time and recorded once.
	_, _, rep := testcaddy.Do(t, http.DefaultClient, "POST", in.URL("sbx", "/__focalx/finish?damages=0&inspectionId="+id), nil)
	for i := 0; i < 2; i++ {
		status, _, body = testcaddy.Do(t, http.DefaultClient, "POST", in.URL("site", "/api/damage-report?x-api-key="+reportKey), strings.NewReader(rep))
		if status != http.StatusOK || !strings.Contains(body, `"InspectionId":"`+id+`"`) {
			t.Fatalf("delivery %d: %d %s", i, status, body)
		}
	}
	deadline = time.Now().Add(20 * time.Second)
	for s = storedSession(t, in.Storage, id); len(s.Events) != 2; s = storedSession(t, in.Storage, id) {
		if time.Now().After(deadline) || len(s.Events) > 2 {
			t.Fatalf("events %+v: want the first report and the second (identical deliveries once)", s.Events)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// The sandbox logged its deliveries, without the key in their URL.
	logs := in.Logs()
	if !strings.Contains(logs, "sandbox webhook delivered") || strings.Contains(logs, reportKey) {
		t.Fatalf("delivery logs missing, or carrying the key:\n%s", logs)
	}
}

// TestDamageReportAuth: the push is authenticated by its x-api-key query
// parameter, compared with report_key; the route fails closed without one.
// Neither the key nor anything of the request reaches a log line, Caddy's
// access log included (its positive control shows an unfiltered access
// log would have caught it).
func TestDamageReportAuth(t *testing.T) {
	t.Setenv("FOCALX_TEST_REPORT_KEY", reportKey)
	in := testcaddy.Start(t, reportConfig(""), testcaddy.Options{LogFile: true})
	post := func(query, body string, hdr ...string) (int, map[string]any) {
		t.Helper()
		status, _, out := testcaddy.Do(t, http.DefaultClient, "POST", in.URL("site", "/api/damage-report"+query), strings.NewReader(body), hdr...)
		return status, testcaddy.JSON(t, out)
	}
	good := `{"InspectionId":"72e18833-bbc7-48a4-af5a-f25402e7de12","RegistrationNumber":"CTFG18","OrientationResults":[]}`
	for _, tc := range []struct {
		name, query, body string
		hdr               []string
		want              int
	}{
		{"no key", "", good, nil, http.StatusUnauthorized},
		{"wrong key", "?x-api-key=wrong", good, nil, http.StatusUnauthorized},
		{"key with a suffix", "?x-api-key=" + reportKey + "x", good, nil, http.StatusUnauthorized},
		{"key twice", "?x-api-key=" + reportKey + "&x-api-key=" + reportKey, good, nil, http.StatusUnauthorized},
		{"key in a header only", "", good, []string{"X-Api-Key", reportKey}, http.StatusUnauthorized},
		{"no InspectionId", "?x-api-key=" + reportKey, `{"RegistrationNumber":"CTFG18"}`, nil, http.StatusBadRequest},
		{"malformed InspectionId", "?x-api-key=" + reportKey, `{"InspectionId":"../x"}`, nil, http.StatusBadRequest},
		{"not JSON", "?x-api-key=" + reportKey, `{`, nil, http.StatusBadRequest},
		{"good", "?x-api-key=" + reportKey, good, nil, http.StatusOK},
	} {
		status, m := post(tc.query, tc.body, tc.hdr...)
		if status != tc.want {
			t.Errorf("%s: %d %v, want %d", tc.name, status, m, tc.want)
		}
	}
	if status, _, _ := testcaddy.Do(t, http.DefaultClient, "GET", in.URL("site", "/api/damage-report?x-api-key="+reportKey), nil); status != http.StatusMethodNotAllowed {
		t.Errorf("GET: %d, want 405", status)
	}
	// Positive control: the same access log does carry a query it is given.
	const control = "fx-control-value-8e1d"
	testcaddy.Do(t, http.DefaultClient, "GET", in.URL("site", "/other?x-api-key="+control), nil)
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(in.Logs(), control) {
		if time.Now().After(deadline) {
			t.Fatalf("positive control: the access log lacks the control query:\n%s", in.Logs())
		}
		time.Sleep(50 * time.Millisecond)
	}
	logs := in.Logs()
	if strings.Contains(logs, reportKey) {
		t.Fatalf("the report key is in the logs:\n%s", logs)
	}
	if !strings.Contains(logs, `"msg":"focalx damage report"`) || !strings.Contains(logs, `"status":401`) {
		t.Fatalf("the route's own log lines are missing:\n%s", logs)
	}

	// Without report_key: 403, whatever the key.
	t.Setenv("FOCALX_TEST_REPORT_KEY", "")
	if err := in.Reload(reportConfig("")); err != nil {
		t.Fatal(err)
	}
	// The reload closed the server's idle connections: a POST (never
	// retried by the client) must not go out on one of them.
	http.DefaultClient.CloseIdleConnections()
	if status, m := post("?x-api-key="+reportKey, good); status != http.StatusForbidden || !strings.Contains(fmt.Sprint(m["error"]), "report_key") {
		t.Fatalf("without report_key: %d %v, want 403", status, m)
	}
}

// TestLogFiltersDeleteReportKey: the shipped access-log filters
// (examples/log-filters.caddy) delete x-api-key from every logged uri, for
// requests that miss the route (whose own log-skip does not cover them).
func TestLogFiltersDeleteReportKey(t *testing.T) {
	src := "import ../../examples/log-filters.caddy\nhttp://:8080 {\n\timport idv_log_filters\n\trespond ok\n}\n"
	out, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(src), nil)
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		Logging struct {
			Logs map[string]struct {
				Encoder struct {
					Fields map[string]struct {
						Filter  string `json:"filter"`
						Actions []struct {
							Parameter string `json:"parameter"`
							Type      string `json:"type"`
						} `json:"actions"`
					} `json:"fields"`
				} `json:"encoder"`
			} `json:"logs"`
		} `json:"logging"`
	}
	if err := json.Unmarshal(out, &cfg); err != nil {
		t.Fatal(err)
	}
	found := 0
	for _, l := range cfg.Logging.Logs {
		uri, ok := l.Encoder.Fields["request>uri"]
		if !ok {
			continue
		}
		found++
		deleted := false
		for _, a := range uri.Actions {
			deleted = deleted || (a.Parameter == "x-api-key" && a.Type == "delete")
		}
		if uri.Filter != "query" || !deleted {
			t.Fatalf("request>uri filter %+v does not delete x-api-key", uri)
		}
	}
	if found == 0 {
		t.Fatalf("no access log filters request>uri:\n%s", out)
	}
}

// TestUserEmailWarning: a user_email read from the request (a header the
// client can set) logs a WARN at start, unless user_email_trusted declares
// that something in front replaces it, or it reads an authenticated user.
func TestUserEmailWarning(t *testing.T) {
	const warn = "focalx user_email is read from the request"
	for _, tc := range []struct {
		name, api, over string
		warns           bool
	}{
		{"default header", "https://focalx.example.test", "", true},
		{"cookie", "https://focalx.example.test", "user_email {http.request.cookie.email}", true},
		{"declared trusted", "https://focalx.example.test", "user_email_trusted", false},
		{"authenticated user", "https://focalx.example.test", "user_email {http.auth.user.email}", false},
		// the sandbox on this machine has no users to impersonate: INFO
		{"sandbox on loopback", "http://127.0.0.1:9", "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := testcaddy.Start(t, `
http://127.0.0.1:@@site@@ {
	idv {
		focalx {
			api_url `+tc.api+`
`+block("\t\t\t", nil)+"\t\t\t"+tc.over+`
		}
	}
}`, testcaddy.Options{LogFile: true})
			logs := in.Logs()
			if !strings.Contains(logs, "idv handler ready") {
				t.Fatalf("the start-up lines are missing:\n%s", logs)
			}
			got := false
			for _, line := range strings.Split(logs, "\n") {
				got = got || (strings.Contains(line, warn) && strings.Contains(line, `"level":"warn"`))
			}
			if got != tc.warns {
				t.Fatalf("WARN logged: %v, want %v:\n%s", got, tc.warns, logs)
			}
		})
	}
}

// TestRawEncryptionKey: a 32-character key, as Focalx hands keys out, is
// the AES-256 key itself on both sides.
func TestRawEncryptionKey(t *testing.T) {
	raw := map[string]string{"encryption_key": "0123456789abcdef0123456789abcdef"}
	in := testcaddy.Start(t, site("site", "sbx", raw, "")+sandboxSite("sbx", "raw", raw)+
		site("hexside", "sbx", map[string]string{"encryption_key": strings.Repeat("30", 32)}, ""))
	if tok := mustToken(t, in, "site", "raw@example.test"); tok.Token == "" {
		t.Fatal("no token")
	}
	// The same characters read as hex would be another key: refused.
	if status, _ := get(t, in, "hexside", "X-User-Email", "raw@example.test"); status != http.StatusBadGateway {
		t.Fatalf("a different key was accepted: %d", status)
	}
}

// TestEmulatorErrorShape: the emulator's errors, own and injected, are
// Focalx's {"error": ...}, not Incode's shape.
func TestEmulatorErrorShape(t *testing.T) {
	in := testcaddy.Start(t, sandboxSite("sbx", "shape", nil))
	check := func(what string, status int, body string, want int) {
		t.Helper()
		m := testcaddy.JSON(t, body)
		if status != want || fmt.Sprint(m["error"]) == "" || len(m) != 1 {
			t.Fatalf("%s: %d %s, want %d {\"error\": ...}", what, status, body, want)
		}
	}
	status, _, body := testcaddy.Do(t, http.DefaultClient, "GET", in.URL("sbx", "/GetToken?clientKey=wrong"), nil)
	check("wrong client key", status, body, http.StatusUnauthorized)
	status, _, body = testcaddy.Do(t, http.DefaultClient, "POST", in.URL("sbx", "/Create-Inspection"), nil)
	check("inspection without a token", status, body, http.StatusUnauthorized)
	testcaddy.Fault(t, in.URL("sbx", ""), map[string]any{"provider": "focalx", "op": "GetToken", "status": 500, "times": 1})
	status, _, body = testcaddy.Do(t, http.DefaultClient, "GET", in.URL("sbx", "/GetToken?clientKey="+clientKey), nil)
	check("injected fault", status, body, http.StatusInternalServerError)
}
