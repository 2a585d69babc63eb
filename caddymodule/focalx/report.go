package focalx

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/caddy-idv/caddy-idv/caddymodule/provider"
	"github.com/caddy-idv/caddy-idv/caddymodule/session"
)

// ReportKeyParam is the query parameter Focalx's damage-report push
// carries its key in (pritamfocal/document, submit_damage_report.rst:
// POST /DamageReport?x-api-key={{api-key}}).
const ReportKeyParam = "x-api-key"

// StatusReportReceived is the session status a damage report records.
const StatusReportReceived = "DAMAGE_REPORT_RECEIVED"

// DamageReport is the part of Focalx's damage-report body the sidecar reads
// (field names as documented; the rest is accepted and not stored).
type DamageReport struct {
	InspectionID       string `json:"InspectionId"`
	ProcessID          string `json:"ProcessId,omitempty"`
	RegistrationNumber string `json:"RegistrationNumber,omitempty"`
	StartTime          string `json:"StartTime,omitempty"`
	EndTime            string `json:"EndTime,omitempty"`
	OrientationResults []struct {
		Damages []json.RawMessage `json:"Damages"`
	} `json:"OrientationResults,omitempty"`
}

// inspectionIDRe bounds an InspectionId (a UUID in Focalx's examples): it
// becomes a session reference and a log field.
var inspectionIDRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$`)

// ParseDamageReport reads a damage-report body (untrusted: it comes from
// the network with a key). Errors are 400 *provider.Error naming the field.
func ParseDamageReport(raw []byte) (DamageReport, error) {
	var rep DamageReport
	if err := json.Unmarshal(raw, &rep); err != nil {
		return rep, provider.Errorf(http.StatusBadRequest, "the damage report must be a JSON object whose fields are strings (InspectionId, RegistrationNumber, ...) and OrientationResults a list")
	}
	if err := provider.RequireString("InspectionId", rep.InspectionID); err != nil {
		return rep, err
	}
	if !inspectionIDRe.MatchString(rep.InspectionID) {
		return rep, provider.Errorf(http.StatusBadRequest, "malformed InspectionId")
	}
	return rep, nil
}

// sameKey compares keys in constant time whatever their lengths (digests
// of equal length are compared).
func sameKey(got, want string) bool {
	a, b := sha256.Sum256([]byte(got)), sha256.Sum256([]byte(want))
	return subtle.ConstantTimeCompare(a[:], b[:]) == 1 && want != ""
}

// serveDamageReport receives Focalx's result push, POST
// <prefix>/damage-report?x-api-key=<report_key> with a DamageReport body,
// and records it on the session of its InspectionId (creating that session
// the first time an inspection reports). It fails closed: 403 without a
// report_key, 401 for a missing or wrong key.
//
// The key rides in the query string, which Caddy's access log writes as
// "uri". Caddy copies the request for its access log before any handler
// runs, so no handler can edit that copy: the route marks its request as
// skipped by the access log and writes its own line (without the query)
// through the redacting logger instead. The key is also a registered
// secret (Secrets), and examples/log-filters.caddy deletes x-api-key from
// every logged uri. Nothing of the request is forwarded anywhere.
func (p *Focalx) serveDamageReport(w http.ResponseWriter, r *http.Request) (err error) {
	caddyhttp.SetVar(r.Context(), caddyhttp.LogSkipVar, true)
	var inspection string
	start := time.Now()
	defer func() {
		status := http.StatusOK
		var pe *provider.Error
		if errors.As(err, &pe) {
			status = pe.Status
		} else if err != nil {
			status = http.StatusInternalServerError
		}
		ip, _, _ := net.SplitHostPort(r.RemoteAddr)
		p.host.Logger.Info("focalx damage report", zap.String("method", r.Method), zap.String("path", r.URL.Path),
			zap.Int("status", status), zap.String("remote_ip", ip), zap.String("inspectionId", inspection),
			zap.Duration("duration", time.Since(start)))
	}()
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		return provider.Errorf(http.StatusMethodNotAllowed, "method %s is not allowed on %s/damage-report", r.Method, p.host.Prefix)
	}
	if p.reportKey == "" {
		p.host.Count(provider.CountWebhooks, "rejected")
		return provider.Errorf(http.StatusForbidden, "damage reports are disabled: no report_key is configured")
	}
	keys := r.URL.Query()[ReportKeyParam]
	if len(keys) != 1 || !sameKey(keys[0], p.reportKey) {
		p.host.Count(provider.CountWebhooks, "rejected")
		return provider.Errorf(http.StatusUnauthorized, "the %s query parameter is missing or wrong", ReportKeyParam)
	}
	p.host.Count(provider.CountWebhooks, "received")
	var raw json.RawMessage
	if err := provider.DecodeJSON(r, &raw, true); err != nil {
		return err
	}
	rep, err := ParseDamageReport(raw)
	if err != nil {
		return err
	}
	inspection = rep.InspectionID
	// A redelivery of the same report is recorded once; a corrected one
	// (another body) is a new event. The first report of an inspection
	// creates its session, with an id derived from the inspection and this
	// account's secrets, under the storage lock: concurrent first reports
	// all land.
	sum := sha256.Sum256(raw)
	ev := provider.KitEvent{Event: provider.Event{Ref: rep.InspectionID, Key: "damage-report:" + hex.EncodeToString(sum[:12]),
		Status: StatusReportReceived}}
	create := &session.Session{UniqueID: inspectionUniqueID(p.account+"\x00"+p.reportKey, rep.InspectionID),
		Status: StatusReportReceived, Meta: reportMeta(rep)}
	s, isNew, err := p.host.Record(context.WithoutCancel(r.Context()), []provider.KitEvent{ev}, create)
	if errors.Is(err, provider.ErrOtherProvider) {
		return provider.Errorf(http.StatusConflict, "InspectionId names another provider's session")
	}
	if err != nil {
		return err
	}
	if isNew {
		p.host.Logger.Info("focalx damage report recorded", zap.String("inspectionId", rep.InspectionID),
			zap.String("session", session.LogID(s.UniqueID)), zap.Int("damages", countDamages(rep)))
	}
	provider.WriteJSON(w, http.StatusOK, map[string]any{"success": true, "InspectionId": rep.InspectionID})
	return nil
}

func countDamages(rep DamageReport) int {
	n := 0
	for _, o := range rep.OrientationResults {
		n += len(o.Damages)
	}
	return n
}

// inspectionUniqueID is a UUIDv4-shaped id from a keyed digest.
func inspectionUniqueID(secret, inspection string) string {
	sum := sha256.Sum256([]byte("caddy-idv focalx inspection\x00" + secret + "\x00" + inspection))
	b := sum[:16]
	b[6] = (b[6] & 0x0f) | 0x40 // version 4
	b[8] = (b[8] & 0x3f) | 0x80 // RFC 4122 variant
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// reportMeta keeps a short summary of the report on the session (the full
// report holds signed image URLs and personal data: it is not stored).
func reportMeta(rep DamageReport) map[string]string {
	m := map[string]string{"damages": fmt.Sprint(countDamages(rep))}
	for k, v := range map[string]string{"processId": rep.ProcessID, "registrationNumber": rep.RegistrationNumber,
		"startTime": rep.StartTime, "endTime": rep.EndTime} {
		if v = strings.TrimSpace(v); v != "" {
			m[k] = truncate(v, 128)
		}
	}
	return m
}
