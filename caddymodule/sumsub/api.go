package sumsub

import (
	"context"
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"hash"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/caddy-idv/caddy-idv/caddymodule/provider"
	"github.com/caddy-idv/caddy-idv/caddymodule/session"
	"github.com/caddy-idv/caddy-idv/caddymodule/upstream"
)

// Routes implements provider.Provider: all served by the core (kit routes).
func (p *Sumsub) Routes() []provider.Route {
	return []provider.Route{
		{Path: "/start", Methods: []string{http.MethodGet, http.MethodPost}, Kind: provider.StartSession},
		{Path: "/token", Methods: []string{http.MethodGet}, Kind: provider.SessionToken},
		{Path: "/webhook", Methods: []string{http.MethodPost}, Kind: provider.SignedWebhook,
			CredentialHeaders: []string{"X-Payload-Digest", "X-App-Token", "X-App-Access-Sig"}},
	}
}

// userRe bounds the userId (externalUserId): it goes into a signed URL
// path, storage index keys and logs, so only characters that need no
// percent-encoding in a path are accepted (emails and UUIDs pass).
var userRe = regexp.MustCompile(`^[A-Za-z0-9._@+:=-]{1,256}$`)

// applicantRe bounds Sumsub's applicant ids (24 hex characters observed).
var applicantRe = regexp.MustCompile(`^[A-Za-z0-9]{1,64}$`)

// tokenRe bounds an access token taken from Sumsub's answer (opaque:
// _act-<uuid>, _act-sbx-jwt-... observed).
var tokenRe = regexp.MustCompile(`^[A-Za-z0-9._~+/=:-]+$`)

// maxToken bounds an access token's length.
const maxToken = 4096

// Sign is X-App-Access-Sig: the lowercase hex HMAC-SHA256 of ts + METHOD +
// path?query + body with the secret key.
func Sign(secret []byte, ts, method, pathQuery string, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(ts + strings.ToUpper(method) + pathQuery))
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}

// signed returns the headers of a call to pathQuery with body (exactly the
// bytes upstream sends: compact JSON, nothing for a GET).
func (p *Sumsub) signed(method, pathQuery string, body []byte) http.Header {
	ts := strconv.FormatInt(p.host.Now().Unix(), 10)
	return http.Header{"X-App-Token": {p.appToken}, "X-App-Access-Ts": {ts},
		"X-App-Access-Sig": {Sign(p.secret, ts, method, pathQuery, body)}}
}

// userIDFor is the applicant's userId for a new session: user_id resolved
// for this request, or the session's uniqueId.
func (p *Sumsub) userIDFor(ctx context.Context, uniqueID string) (string, error) {
	if p.userID == "" {
		return uniqueID, nil
	}
	v := p.userID
	if repl, ok := ctx.Value(caddy.ReplacerCtxKey).(*caddy.Replacer); ok {
		v = repl.ReplaceKnown(v, "")
	}
	v = strings.TrimSpace(v)
	if v == "" {
		return "", provider.Errorf(http.StatusUnauthorized, "no user id for this request: user_id is empty")
	}
	if !userRe.MatchString(v) {
		return "", provider.Errorf(http.StatusBadRequest, "the user id must be 1 to 256 letters, digits or . _ @ + : = -")
	}
	return v, nil
}

// OwnsSession implements provider.SessionOwner: with user_id, a session
// belongs to the user id this request resolves to (so a browser shared by
// two users never resumes, or gets tokens for, the other's applicant).
func (p *Sumsub) OwnsSession(r *http.Request, s *session.Session) bool {
	if p.userID == "" {
		return true
	}
	uid, err := p.userIDFor(r.Context(), "")
	return err == nil && uid == s.Ref
}

// accessToken mints a WebSDK access token for userID:
// POST /resources/accessTokens/sdk {userId, levelName, ttlInSecs}.
func (p *Sumsub) accessToken(ctx context.Context, userID string) (string, time.Time, error) {
	const path = "/resources/accessTokens/sdk"
	body, err := json.Marshal(map[string]any{"userId": userID, "levelName": p.level, "ttlInSecs": int64(p.ttl / time.Second)})
	if err != nil {
		return "", time.Time{}, err
	}
	now := p.host.Now()
	var out struct {
		Token  string `json:"token"`
		UserID string `json:"userId"`
	}
	// Not retried: the signature's timestamp and the one-minute window make
	// a blind retry pointless, and a 4xx will not change.
	if _, err := p.up.Do(ctx, upstream.Request{Op: "resources/accessTokens/sdk", Method: http.MethodPost, Path: path,
		Header: p.signed(http.MethodPost, path, body), Body: json.RawMessage(body)}, &out); err != nil {
		return "", time.Time{}, err
	}
	if len(out.Token) > maxToken || !tokenRe.MatchString(out.Token) || (out.UserID != "" && out.UserID != userID) {
		return "", time.Time{}, upstream.ErrMalformed
	}
	// A little early: the token was minted after now.
	return out.Token, now.Add(p.ttl).Truncate(time.Second), nil
}

// Start implements provider.Starter: an access token for the session's
// userId. Its Ref is the userId, the externalUserId webhooks carry.
func (p *Sumsub) Start(ctx context.Context, in provider.StartInput) (provider.StartResult, error) {
	uid, err := p.userIDFor(ctx, in.UniqueID)
	if err != nil {
		return provider.StartResult{}, err
	}
	tok, exp, err := p.accessToken(ctx, uid)
	if err != nil {
		return provider.StartResult{}, err
	}
	return provider.StartResult{Ref: uid, Token: tok, TokenExpiresAt: exp,
		Meta: map[string]string{metaUserID: uid, metaTokenExpiresAt: exp.UTC().Format(time.RFC3339)}}, nil
}

// Session meta keys.
const (
	metaUserID         = "userId"
	metaTokenExpiresAt = "tokenExpiresAt"
)

// StartAnswer implements provider.Starter: {"token","userId","expiresAt"}
// beside the core's uniqueId. A resumed session answers the token it
// started with; once expiresAt has passed, GET /token gives a fresh one.
func (p *Sumsub) StartAnswer(_ string, s *session.Session) map[string]any {
	return map[string]any{"token": s.Token, "userId": s.Ref, "expiresAt": s.Meta[metaTokenExpiresAt]}
}

// RefreshToken implements provider.TokenRefresher: a new access token for
// the same userId and level (the WebSDK's expiration handler).
func (p *Sumsub) RefreshToken(ctx context.Context, s *session.Session) (string, time.Time, error) {
	if s.Provider != Name || !userRe.MatchString(s.Ref) {
		return "", time.Time{}, provider.Errorf(http.StatusUnauthorized, "the session has no Sumsub user")
	}
	return p.accessToken(ctx, s.Ref)
}

// Errors of VerifyWebhook (for logs; the client is told 401).
var (
	ErrNoDigest    = errors.New("no X-Payload-Digest header")
	ErrUnknownAlg  = errors.New("X-Payload-Digest-Alg names no supported algorithm")
	ErrBadDigest   = errors.New("the digest does not match the body")
	errNotHexOrLen = errors.New("the digest is not hex of the algorithm's length")
)

// algs are the digest algorithms of X-Payload-Digest-Alg.
var algs = map[string]func() hash.Hash{
	"HMAC_SHA1_HEX":   sha1.New,
	"HMAC_SHA256_HEX": sha256.New,
	"HMAC_SHA512_HEX": sha512.New,
}

// DefaultDigestAlg is assumed when X-Payload-Digest-Alg is absent, as
// Sumsub's own examples do.
const DefaultDigestAlg = "HMAC_SHA256_HEX"

// Digest is X-Payload-Digest: the hex HMAC of body with secret in alg.
func Digest(alg string, secret, body []byte) string {
	h, ok := algs[alg]
	if !ok {
		return ""
	}
	m := hmac.New(h, secret)
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}

// VerifyWebhook implements provider.WebhookVerifier: X-Payload-Digest must
// be the hex HMAC of the raw body with one of the webhook secrets, in the
// algorithm of X-Payload-Digest-Alg (HMAC_SHA256_HEX when absent). Compared
// in constant time.
func (p *Sumsub) VerifyWebhook(h http.Header, body []byte) error {
	if len(p.webhookSecrets) == 0 {
		return provider.ErrNoWebhookSecret
	}
	return verifyDigest(p.webhookSecrets, h, body)
}

func verifyDigest(secrets [][]byte, h http.Header, body []byte) error {
	sig := strings.TrimSpace(h.Get("X-Payload-Digest"))
	if sig == "" {
		return ErrNoDigest
	}
	alg := strings.TrimSpace(h.Get("X-Payload-Digest-Alg"))
	if alg == "" {
		alg = DefaultDigestAlg
	}
	newHash, ok := algs[alg]
	if !ok {
		return ErrUnknownAlg
	}
	got, err := hex.DecodeString(strings.ToLower(sig))
	if err != nil || len(got) != newHash().Size() {
		return errNotHexOrLen
	}
	match := 0
	for _, s := range secrets {
		m := hmac.New(newHash, s)
		m.Write(body)
		match |= subtle.ConstantTimeCompare(got, m.Sum(nil))
	}
	if match != 1 {
		return ErrBadDigest
	}
	return nil
}

// ReviewResult is reviewResult of a webhook or an applicant's review.
type ReviewResult struct {
	ReviewAnswer     string `json:"reviewAnswer"`
	ReviewRejectType string `json:"reviewRejectType"`
}

// Statuses of a decision: GREEN (verified), RED (a final rejection: failed)
// and RETRY (the user may resubmit: no result yet).
const (
	StatusGreen = "GREEN"
	StatusRed   = "RED"
	StatusRetry = "RETRY"
)

// decide maps a completed review to the session's status and result. A
// RED without reviewRejectType is taken as final (failed); an answer that
// is neither GREEN nor RED is no decision.
func decide(r ReviewResult) (status, result string, ok bool) {
	switch r.ReviewAnswer {
	case "GREEN":
		return StatusGreen, provider.ResultVerified, true
	case "RED":
		if r.ReviewRejectType == "RETRY" {
			return StatusRetry, "", true
		}
		return StatusRed, provider.ResultFailed, true
	}
	return "", "", false
}

// progress are the webhook types recorded as progress, with Sumsub's
// reviewStatus as the session's status. applicantReviewed is the decision;
// other types (applicantReset, applicantTagsChanged, ...) are acknowledged
// and not recorded.
var progress = map[string]string{
	"applicantCreated":    "init",
	"applicantPending":    "pending",
	"applicantPrechecked": "queued",
	"applicantOnHold":     "onHold",
}

// statusRe bounds a status or type taken from Sumsub.
var statusRe = regexp.MustCompile(`^[A-Za-z_]{1,40}$`)

// correlationRe bounds a correlationId (req-<uuid> observed).
var correlationRe = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,128}$`)

// createdAtLayout is createdAtMs: "2021-05-14 16:00:25.032", UTC (a
// string, despite its name).
const createdAtLayout = "2006-01-02 15:04:05.999"

// webhook is a Sumsub applicant webhook (the fields caddy-idv reads).
type webhook struct {
	ApplicantID    string        `json:"applicantId"`
	ExternalUserID string        `json:"externalUserId"`
	CorrelationID  string        `json:"correlationId"`
	Type           string        `json:"type"`
	ReviewStatus   string        `json:"reviewStatus"`
	CreatedAtMs    string        `json:"createdAtMs"`
	CreatedAt      string        `json:"createdAt"` // older pages
	ReviewResult   *ReviewResult `json:"reviewResult"`
}

// ParseWebhook implements provider.WebhookParser.
func (p *Sumsub) ParseWebhook(_ http.Header, body []byte) ([]provider.KitEvent, error) {
	return parseWebhook(body)
}

// parseWebhook turns an applicant webhook into at most one event. Its key
// is the correlationId (Sumsub's id of the event, the same on each retry),
// else applicantId + type + createdAtMs, so a redelivery is recorded once.
// A webhook without externalUserId (an applicant made in the dashboard)
// belongs to no session: acknowledged, nothing recorded.
func parseWebhook(body []byte) ([]provider.KitEvent, error) {
	var w webhook
	if err := json.Unmarshal(body, &w); err != nil {
		return nil, provider.Errorf(http.StatusBadRequest, "malformed JSON body: a Sumsub applicant webhook is expected")
	}
	if !statusRe.MatchString(w.Type) {
		return nil, provider.Errorf(http.StatusBadRequest, "type is missing or malformed")
	}
	if w.ApplicantID != "" && !applicantRe.MatchString(w.ApplicantID) {
		return nil, provider.Errorf(http.StatusBadRequest, "applicantId is malformed")
	}
	if w.CorrelationID != "" && !correlationRe.MatchString(w.CorrelationID) {
		return nil, provider.Errorf(http.StatusBadRequest, "correlationId is malformed")
	}
	if w.ExternalUserID == "" {
		return nil, nil
	}
	if !userRe.MatchString(w.ExternalUserID) {
		return nil, provider.Errorf(http.StatusBadRequest, "externalUserId is malformed")
	}
	created := w.CreatedAtMs
	if created == "" {
		created = w.CreatedAt
	}
	at, terr := time.Parse(createdAtLayout, created)
	if terr != nil {
		at = time.Time{}
		created = ""
	}
	key := w.CorrelationID
	if key == "" {
		if w.ApplicantID == "" || created == "" {
			return nil, provider.Errorf(http.StatusBadRequest, "correlationId, or applicantId and createdAtMs, are needed to deduplicate deliveries")
		}
		key = w.ApplicantID + ":" + w.Type + ":" + at.UTC().Format(time.RFC3339Nano)
	}
	ev := provider.KitEvent{Event: provider.Event{Ref: w.ExternalUserID, Key: "webhook:" + key}, At: at.UTC()}
	if w.Type == "applicantReviewed" {
		if w.ReviewResult == nil {
			return nil, provider.Errorf(http.StatusBadRequest, "applicantReviewed without reviewResult")
		}
		status, result, ok := decide(*w.ReviewResult)
		if !ok {
			return nil, provider.Errorf(http.StatusBadRequest, "reviewResult.reviewAnswer must be GREEN or RED")
		}
		ev.Status, ev.Result, ev.Decision = status, result, true
		return []provider.KitEvent{ev}, nil
	}
	status, ok := progress[w.Type]
	if !ok {
		return nil, nil
	}
	if statusRe.MatchString(w.ReviewStatus) {
		status = w.ReviewStatus
	}
	ev.Status = status
	return []provider.KitEvent{ev}, nil
}

// applicant is GET /resources/applicants/.../one (the fields read).
type applicant struct {
	ID             string `json:"id"`
	ExternalUserID string `json:"externalUserId"`
	Review         *struct {
		ReviewID     string        `json:"reviewId"`
		AttemptID    string        `json:"attemptId"`
		AttemptCnt   int           `json:"attemptCnt"`
		ReviewStatus string        `json:"reviewStatus"`
		ReviewDate   string        `json:"reviewDate"`
		ReviewResult *ReviewResult `json:"reviewResult"`
	} `json:"review"`
}

// reviewDateLayouts are the forms of review.reviewDate seen in Sumsub's
// docs ("2020-06-24 05:05:14+0000") and the emulator.
var reviewDateLayouts = []string{"2006-01-02 15:04:05-0700", "2006-01-02 15:04:05.999-0700", createdAtLayout, time.RFC3339Nano}

// RefreshEvent implements provider.EventRefresher: the applicant read with
// GET /resources/applicants/-;externalUserId={userId}/one (signed). A 404
// (no applicant yet) is nothing new.
func (p *Sumsub) RefreshEvent(ctx context.Context, s *session.Session) (provider.KitEvent, error) {
	if s.Provider != Name || !userRe.MatchString(s.Ref) {
		return provider.KitEvent{}, nil
	}
	path := "/resources/applicants/-;externalUserId=" + s.Ref + "/one"
	var a applicant
	_, err := p.up.Do(ctx, upstream.Request{Op: "resources/applicants/{id}/one", Method: http.MethodGet, Path: path,
		Header: p.signed(http.MethodGet, path, nil), Idempotent: true,
		LogFields: []zap.Field{zap.String("externalUserId", provider.LogRef(s.Ref))}}, &a)
	if upstream.Status(err) == http.StatusNotFound {
		return provider.KitEvent{}, nil
	}
	if err != nil {
		return provider.KitEvent{}, err
	}
	if a.Review == nil || !statusRe.MatchString(a.Review.ReviewStatus) {
		return provider.KitEvent{}, nil
	}
	if !applicantRe.MatchString(a.ID) || (a.Review.AttemptID != "" && !applicantRe.MatchString(a.Review.AttemptID)) {
		return provider.KitEvent{}, upstream.ErrMalformed
	}
	r := a.Review
	attempt := r.AttemptID
	if attempt == "" {
		attempt = strconv.Itoa(r.AttemptCnt)
	}
	ev := provider.KitEvent{Event: provider.Event{Ref: s.Ref, Status: r.ReviewStatus,
		Key: "review:" + a.ID + ":" + attempt + ":" + r.ReviewStatus}}
	// reviewAnswer means something only once the review is completed.
	if r.ReviewStatus == "completed" && r.ReviewResult != nil {
		status, result, ok := decide(*r.ReviewResult)
		if !ok {
			return provider.KitEvent{}, nil
		}
		ev.Status, ev.Result, ev.Decision = status, result, true
		ev.Key += ":" + status
		for _, l := range reviewDateLayouts {
			if t, err := time.Parse(l, r.ReviewDate); err == nil {
				ev.At = t.UTC()
				break
			}
		}
	}
	return ev, nil
}
