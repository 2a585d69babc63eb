// Command report turns the JSON lines bench/run.sh collects into the
// markdown of BENCHMARKS.md: the side-by-side table with ratios against the
// targets, the cold-cache bursts, and the memory figures. It prints the
// document to stdout and, with -out, writes it there too.
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"sort"
	"strconv"
	"strings"
)

// line is any of the result lines; Kind says which fields are set.
type line struct {
	Kind string `json:"kind"`

	// wrk
	ID            string  `json:"id"`
	Round         int     `json:"round"`
	Requests      int     `json:"requests"`
	RPS           float64 `json:"rps"`
	P50           float64 `json:"p50_us"`
	P99           float64 `json:"p99_us"`
	ConnectErrors int     `json:"connect_errors"`
	ReadErrors    int     `json:"read_errors"`
	WriteErrors   int     `json:"write_errors"`
	Timeouts      int     `json:"timeouts"`
	Non2xx        int     `json:"non2xx"`
	CPUTicks      int     `json:"cpu_ticks"`
	ClkTck        int     `json:"clk_tck"`

	// burst
	Provider string  `json:"provider"`
	N        int     `json:"n"`
	OK       int     `json:"ok"`
	Failed   int     `json:"failed"`
	Fetches  int     `json:"fetches"`
	WallMS   float64 `json:"wall_ms"`
	P50MS    float64 `json:"p50_ms"`
	MaxMS    float64 `json:"max_ms"`
	FirstErr string  `json:"first_error"`

	// mem
	Process  string `json:"process"`
	Load     string `json:"load"`
	RSSKB    int    `json:"rss_before_kb"`
	HWMKB    int    `json:"hwm_kb"`
	RSSAfter int    `json:"rss_after_kb"`
	HWMReset bool   `json:"hwm_reset"`

	// streams, bodymem
	Opened      int     `json:"opened"`
	OpenS       float64 `json:"open_s"`
	PerStreamKB float64 `json:"per_stream_kb"`
	Hooks       int     `json:"hooks"`
	Lost        int     `json:"lost"`
	P99MS       float64 `json:"p99_ms"`
	IdleKB      int     `json:"idle_kb"`
	HookP50MS   float64 `json:"webhook_p50_ms"`
	Proto       string  `json:"proto"` // h1, h2 or h2c (streams, idle_conns)
	Side        string  `json:"side"`  // idv or reverse_proxy (streams)

	// sessions / storage
	Namespace string  `json:"namespace"`
	WriteS    float64 `json:"write_s"`
	Files     int     `json:"files"`
	DUKB      int     `json:"du_kb"`
	ApparentK int     `json:"apparent_kb"`

	// storewrites (bench/storewrites), syscalls (strace of the idv process)
	Concurrency int     `json:"concurrency"`
	Sessions    int     `json:"sessions"`
	PerS        float64 `json:"per_s"`
	CPUPer      float64 `json:"cpu_us_per"`
	CommitsPer  float64 `json:"commits_per"`
	SyncsPer    float64 `json:"syncs_per"`
	PerTx       float64 `json:"sessions_per_tx"`
	PagesPer    float64 `json:"pages_per"`
	MaxTx       int     `json:"max_sessions_tx"`
	Fdatasync   int     `json:"fdatasync"`
	Fsync       int     `json:"fsync"`
	Pwrite      int     `json:"pwrite"`

	// skipped
	What   string `json:"what"`
	Reason string `json:"reason"`

	// meta
	Meta map[string]string `json:"meta"`
}

type stat struct {
	rounds           int
	rps, p50, p99    float64
	cpu              float64 // CPU time of the process under test per request, µs
	minRPS, maxRPS   float64
	errors, requests int
}

// row is one line of the main table.
type row struct {
	section, variant, id string
	// against: the id this row is compared with, and the target ratio
	// (0: for information only).
	against string
	target  float64
	note    string
	// cpu: the target holds for CPU per request too (its ratio ≤ 1/target).
	cpu bool
}

var rows = []row{
	{section: "1. Non-API traffic (`GET /`)", variant: "idv + reverse_proxy", id: "nonapi-idv", against: "nonapi-plain", target: 0.98},
	{section: "", variant: "reverse_proxy only (baseline)", id: "nonapi-plain"},
	{section: "2. Passthrough `/api/0/omni/get/score`", variant: "idv (token in X-Incode-Hardware-Id)", id: "pt-idv", against: "pt-plain", target: 0.95},
	{section: "", variant: "rewrite + reverse_proxy + static header_up (baseline)", id: "pt-plain"},
	{section: "2. Passthrough, the browser's way (issue 12.2)", variant: "idv, session cookie + `X-IDV: 1`, no token header", id: "pt-cookie-idv", against: "pt-plain", target: 0.95, cpu: true},
	{section: "", variant: "rewrite + reverse_proxy + static header_up (baseline, same runs as above)", id: "pt-plain"},
	{section: "3. Sandbox latency 0 (issue 12.1, file storage)", variant: "idv `/api/start` (new provider session each)", id: "start-idv-0", against: "start-plain-0", target: 0.5},
	{section: "", variant: "reference: bare `POST /omni/start` via reverse_proxy", id: "start-plain-0"},
	{section: "", variant: "idv `/api/onboarding-url` (new session + 2nd call)", id: "onb-idv-0", against: "start-plain-0", target: 0.5},
	{section: "", variant: "idv `/api/start`, storage on tmpfs (no fsync cost)", id: "start-idv-shm", against: "start-plain-0"},
	{section: "", variant: "idv `/api/onboarding-url`, storage on tmpfs", id: "onb-idv-shm"},
	{section: "", variant: "idv `/api/start?uniqueId=` resume (no upstream call)", id: "resume-idv"},
	{section: "3r. Sandbox latency 0 (issue 12.1, Redis storage)", variant: "idv `/api/start`, `storage idv_redis`", id: "start-idv-redis", against: "start-plain-r", target: 0.5},
	{section: "", variant: "reference: bare `POST /omni/start` via reverse_proxy (interleaved)", id: "start-plain-r"},
	{section: "", variant: "idv `/api/onboarding-url`, `storage idv_redis`", id: "onb-idv-redis", against: "start-plain-r", target: 0.5},
	{section: "3. Sandbox latency 50 ms per call", variant: "idv `/api/start`", id: "start-idv-50", against: "start-plain-50"},
	{section: "", variant: "reference: bare `POST /omni/start` via reverse_proxy", id: "start-plain-50"},
	{section: "", variant: "idv `/api/onboarding-url` (2 calls: ≥ 100 ms)", id: "onb-idv-50"},
	{section: "5. Resume with many sessions stored", variant: "resume, 100 000 sessions in the namespace", id: "resume-100k", against: "resume-100", target: 0.9,
		note: "random ids over all stored sessions"},
	{section: "", variant: "resume, 100 sessions in the namespace", id: "resume-100"},
	{section: "6. Big bodies (issue 12.3): uploads through the passthrough", variant: "idv, `POST /api/0/omni/bench/upload`, cookie + `X-IDV: 1`", id: "up-idv", against: "up-plain", target: 0.95},
	{section: "", variant: "strip_prefix + reverse_proxy + header_up (baseline)", id: "up-plain"},
	{section: "6. Big bodies (issue 12.3): downloads through the passthrough", variant: "idv, `GET /api/0/omni/bench/download`, cookie + `X-IDV: 1`", id: "down-idv", against: "down-plain", target: 0.95},
	{section: "", variant: "strip_prefix + reverse_proxy + header_up (baseline)", id: "down-plain"},
}

func main() {
	in := flag.String("results", "", "the JSON lines file")
	out := flag.String("out", "", "write the markdown here too")
	analysis := flag.String("analysis", "", "a markdown file appended as the analysis section")
	flag.Parse()
	f, err := os.Open(*in)
	if err != nil {
		fail(err)
	}
	defer f.Close()
	var all []line
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		t := strings.TrimSpace(sc.Text())
		if t == "" {
			continue
		}
		var l line
		if err := json.Unmarshal([]byte(t), &l); err != nil {
			fail(fmt.Errorf("bad result line %q: %w", t, err))
		}
		all = append(all, l)
	}
	if err := sc.Err(); err != nil {
		fail(err)
	}

	var b strings.Builder
	write(&b, all, *analysis)
	fmt.Print(b.String())
	if *out != "" {
		if err := os.WriteFile(*out, []byte(b.String()), 0o644); err != nil {
			fail(err)
		}
	}
}

func stats(all []line) map[string]*stat {
	byID := map[string][]line{}
	for _, l := range all {
		if l.Kind == "wrk" && l.Round > 0 {
			byID[l.ID] = append(byID[l.ID], l)
		}
	}
	out := map[string]*stat{}
	for id, ls := range byID {
		s := &stat{rounds: len(ls), minRPS: math.Inf(1)}
		var rps, p50, p99, cpu []float64
		for _, l := range ls {
			rps, p50, p99 = append(rps, l.RPS), append(p50, l.P50), append(p99, l.P99)
			if l.ClkTck > 0 && l.Requests > 0 {
				cpu = append(cpu, float64(l.CPUTicks)/float64(l.ClkTck)*1e6/float64(l.Requests))
			}
			s.minRPS, s.maxRPS = math.Min(s.minRPS, l.RPS), math.Max(s.maxRPS, l.RPS)
			s.errors += l.ConnectErrors + l.ReadErrors + l.WriteErrors + l.Timeouts + l.Non2xx
			s.requests += l.Requests
		}
		s.rps, s.p50, s.p99, s.cpu = median(rps), median(p50), median(p99), median(cpu)
		out[id] = s
	}
	return out
}

func median(v []float64) float64 {
	sort.Float64s(v)
	n := len(v)
	if n == 0 {
		return 0
	}
	if n%2 == 1 {
		return v[n/2]
	}
	return (v[n/2-1] + v[n/2]) / 2
}

func ms(us float64) string {
	switch {
	case us >= 100000:
		return fmt.Sprintf("%.0f ms", us/1000)
	case us >= 10000:
		return fmt.Sprintf("%.1f ms", us/1000)
	default:
		return fmt.Sprintf("%.2f ms", us/1000)
	}
}

func mibps(s *stat, size float64) string {
	if s == nil {
		return "not measured"
	}
	return fmt.Sprintf("%.0f MiB/s", s.rps*size)
}

func mib(kb int) string { return fmt.Sprintf("%.1f MiB", float64(kb)/1024) }

func write(w io.Writer, all []line, analysisFile string) {
	meta := map[string]string{}
	for _, l := range all {
		if l.Kind == "meta" {
			for k, v := range l.Meta {
				meta[k] = v
			}
		}
	}
	st := stats(all)
	p := func(format string, a ...any) { fmt.Fprintf(w, format, a...) }

	p("# Benchmarks\n\n")
	p("Generated by `bench/run.sh` (see `bench/README.md`); every number below comes from one run of it.\n\n")
	p("| | |\n|---|---|\n")
	for _, k := range []string{"date", "command", "machine", "cpu", "kernel", "go", "caddy", "wrk", "wrk_settings", "loadavg_start", "loadavg_end"} {
		if v, ok := meta[k]; ok {
			p("| %s | %s |\n", strings.ReplaceAll(k, "_", " "), v)
		}
	}
	p("\nEverything runs on loopback on this one machine: wrk, the Caddy under test, the baseline Caddy and the upstream Caddy " +
		"(a `respond \"hello\"` site and `idv_sandbox`) share its cores, so absolute numbers are lower than on a server and " +
		"the ratios are what to read. Each pair is measured in the same run, interleaved (A B, B A, A B …); req/s, p50 and p99 " +
		"are the medians over the rounds, and the range is the lowest and highest req/s of the rounds. " +
		"\"errors\" counts non-2xx answers and socket errors (it must be 0 for a row to mean anything).\n\n")

	p("## Side by side\n\n")
	p("| comparison | variant | req/s | range | p50 | p99 | CPU/req | errors | ratio req/s | ratio CPU/req | target (req/s ratio) |\n")
	p("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|\n")
	for _, r := range rows {
		if r.id == "resume-100k" {
			r.variant = strings.Replace(r.variant, "100 000", spaced(largeSessions(all)), 1)
		}
		s := st[r.id]
		if s == nil {
			p("| %s | %s | not measured | | | | | | | | |\n", r.section, r.variant)
			continue
		}
		ratio, cpuRatio, target := "", "", ""
		if r.against != "" {
			if o := st[r.against]; o != nil && o.rps > 0 {
				q := s.rps / o.rps
				ratio = fmt.Sprintf("%.3fx", q)
				if o.cpu > 0 {
					cpuRatio = fmt.Sprintf("%.3fx", s.cpu/o.cpu)
				}
				overlap := s.maxRPS >= o.minRPS && o.maxRPS >= s.minRPS
				cpuOK := o.cpu > 0 && s.cpu/o.cpu <= 1/r.target
				switch {
				case r.target == 0:
					target = "reference only"
				case r.cpu && q >= r.target && !cpuOK:
					target = fmt.Sprintf("≥ %.2fx in req/s and CPU/req: **missed on CPU/req** (see analysis)", r.target)
				case r.cpu && q >= r.target:
					target = fmt.Sprintf("≥ %.2fx in req/s and CPU/req: **met**", r.target)
				case q >= r.target:
					target = fmt.Sprintf("≥ %.2fx: **met**", r.target)
				case overlap && cpuOK && s.rounds > 1:
					target = fmt.Sprintf("≥ %.2fx: **missed on req/s** by %.1f%%, within the rounds' spread; CPU/req meets it (see analysis)", r.target, (r.target-q)*100)
				default:
					target = fmt.Sprintf("≥ %.2fx: **missed** by %.1f%% (see analysis)", r.target, (r.target-q)*100)
				}
				if s.errors > 0 || o.errors > 0 {
					target += " (errors: not valid)"
				}
			}
		}
		variant := r.variant
		if r.note != "" {
			variant += " (" + r.note + ")"
		}
		rng := ""
		if s.rounds > 1 {
			rng = fmt.Sprintf("%.0f–%.0f", s.minRPS, s.maxRPS)
		}
		p("| %s | %s | %.0f | %s | %s | %s | %.0f µs | %d | %s | %s | %s |\n", r.section, variant, s.rps, rng, ms(s.p50), ms(s.p99), s.cpu, s.errors, ratio, cpuRatio, target)
	}
	p("\nRatio req/s is the row's req/s over its baseline's. CPU/req is the user+system CPU time the Caddy process " +
		"under test spent during the run divided by the requests it answered (median over the rounds); it counts only " +
		"that process (not wrk, not the upstream), and unlike req/s it barely moves when other work shares the machine, " +
		"so its ratio is the steadier measure of what a handler costs. In section 3 each `/api/start` and `/api/onboarding-url` " +
		"request creates a new provider session (wrk sends no cookie, so the per-browser idempotency never applies, and " +
		"`session_quota off` lifts the per-IP quota): each one is a `POST /omni/start` upstream plus one durable write " +
		"(the session appended to the session database's log with its header, in one group-committed transaction; its interviewId and expiry are indexed in memory), and `/onboarding-url` " +
		"adds `GET /0/omni/onboarding-url` before that write (the session is stored once, URL included). " +
		"With latency, the sandbox delays every Incode call by 50 ms.\n\n")
	writeCounts(w, all)

	bodyMiB := 5.0
	if v, err := strconv.ParseFloat(meta["body_mib"], 64); err == nil {
		bodyMiB = v
	}
	p("In section 6 every request carries or receives %.0f MiB, so its throughput is req/s × %.0f MiB "+
		"(for example %s for idv's uploads), and the ratio of req/s is the ratio of throughput.\n\n", bodyMiB, bodyMiB, mibps(st["up-idv"], bodyMiB))

	p("## Big bodies: memory (issue 12.3)\n\n")
	p("Fresh processes for both sides. Idle is `VmRSS` of the fresh process before the first load (both rows); the " +
		"peak is `VmHWM` during the load (reset with `clear_refs` before it). Target: idv's peak over idle ≤ 1.2x the baseline's.\n\n")
	p("| load | idv idle | idv peak | idv over idle | baseline idle | baseline peak | baseline over idle | ratio | target |\n")
	p("|---|---:|---:|---:|---:|---:|---:|---:|---|\n")
	bm := map[string]line{}
	for _, l := range all {
		if l.Kind == "bodymem" {
			bm[l.ID] = l
		}
	}
	for _, k := range []string{"up", "down"} {
		a, okA := bm[k+"-idv"]
		b, okB := bm[k+"-plain"]
		if !okA || !okB {
			continue
		}
		da, db := a.HWMKB-a.IdleKB, b.HWMKB-b.IdleKB
		ratio, t := "", ""
		if db > 0 {
			q := float64(da) / float64(db)
			ratio = fmt.Sprintf("%.2fx", q)
			if q <= 1.2 {
				t = "≤ 1.2x: **met**"
			} else {
				t = "≤ 1.2x: **missed** (see analysis)"
			}
		}
		what := map[string]string{"up": "50 concurrent uploads", "down": "50 concurrent downloads"}[k]
		p("| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", what, mib(a.IdleKB), mib(a.HWMKB), mib(da), mib(b.IdleKB), mib(b.HWMKB), mib(db), ratio, t)
	}

	p("\n## Many waiting browsers (issue 12.4)\n\n")
	p("`bench/streams` opens one `/api/session/events` stream per stored session (sessions written by `bench/sessions`) " +
		"on a fresh process, each on its own connection (one browser each), reads each stream's first event, waits 2 s, " +
		"and takes the process's `VmRSS`; then it sends webhooks one at a time, each for a different watched session, and " +
		"times each from the moment it is sent to the moment its stream receives the new status. HTTP/1.1 streams are " +
		"plain HTTP, and idv takes them over from the server once answered (no goroutine); HTTP/2 streams are over TLS " +
		"(ALPN h2), as browsers open them over HTTPS, and each keeps its handler's goroutine. The baseline, " +
		"`reverse_proxy`, is stock Caddy proxying the same streams to a token server (an idv over HTTP/1.1 in another " +
		"process, whose memory is not counted), as a site without idv would; its webhooks go through the proxy.\n\n")
	perOf := map[string]float64{} // proto -> the baseline's KiB per stream
	for _, l := range all {
		if l.Kind == "streams" && l.Side == "reverse_proxy" && l.Opened > 0 {
			perOf[protoOf(l.Proto)] = l.PerStreamKB
		}
	}
	p("| protocol | served by | streams | opened | time to open all | RSS before | RSS with the streams | per stream | vs reverse_proxy | target | webhooks timed | p50 | p99 | max | target | webhook answered, p50 |\n")
	p("|---|---|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---|---:|\n")
	for _, l := range all {
		if l.Kind != "streams" {
			continue
		}
		side := l.Side
		if side == "" {
			side = "idv"
		}
		t1, t2, vs := "baseline", "baseline", ""
		if side == "idv" {
			t1 = "≤ 40 KiB: **met**"
			if l.PerStreamKB > 40 || l.Opened < l.N {
				t1 = "≤ 40 KiB: **missed** (see analysis)"
			}
			t2 = "p99 ≤ 50 ms: **met**"
			if l.P99MS > 50 || l.Lost > 0 || l.Hooks == 0 {
				t2 = fmt.Sprintf("p99 ≤ 50 ms: **missed** (%d lost; see analysis)", l.Lost)
			}
			if b := perOf[protoOf(l.Proto)]; b > 0 {
				vs = fmt.Sprintf("%.2fx", l.PerStreamKB/b)
			}
		}
		p("| %s | %s | %d | %d | %.1f s | %s | %s | %.1f KiB | %s | %s | %d | %.1f ms | %.1f ms | %.1f ms | %s | %.1f ms |\n",
			protoOf(l.Proto), side, l.N, l.Opened, l.OpenS, mib(l.RSSKB), mib(l.RSSAfter), l.PerStreamKB, vs, t1,
			l.Hooks, l.P50MS, l.P99MS, l.MaxMS, t2, l.HookP50MS)
		if l.FirstErr != "" {
			p("\nFirst stream that failed to open: %s\n", strings.ReplaceAll(truncate(l.FirstErr, 120), "|", "\\|"))
		}
	}
	idle := false
	for _, l := range all {
		if l.Kind != "idle_conns" {
			continue
		}
		if !idle {
			idle = true
			p("\nWhat a connection costs stock Caddy before any stream: as many connections as streams above, each " +
				"opened to a fresh `reverse_proxy` process, used for one `GET /` and then left open and idle " +
				"(`bench/streams -idle`).\n\n")
			p("| protocol | idle connections | opened | RSS before | RSS with the connections | per connection |\n")
			p("|---|---:|---:|---:|---:|---:|\n")
		}
		p("| %s | %d | %d | %s | %s | %.1f KiB |\n", protoOf(l.Proto), l.N, l.Opened, mib(l.RSSKB), mib(l.RSSAfter), l.PerStreamKB)
		if l.FirstErr != "" {
			p("\nFirst connection that failed: %s\n", strings.ReplaceAll(truncate(l.FirstErr, 120), "|", "\\|"))
		}
	}
	p("\n")

	p("## Cold-cache burst (section 4)\n\n")
	p("N concurrent requests that all need the executive token (`GET /api/onboarding-status?interviewId=`), sent to a " +
		"freshly started Caddy, each on its own already-open connection; the sandbox counts the upstream logins.\n\n")
	p("| provider | N | upstream token fetches | target | 200 answers | burst wall time | p50 | slowest |\n")
	p("|---|---:|---:|---|---:|---:|---:|---:|\n")
	for _, l := range all {
		if l.Kind != "burst" {
			continue
		}
		t := "1: **met**"
		if l.Fetches != 1 {
			t = fmt.Sprintf("1: **missed** (%d)", l.Fetches)
		}
		ok := fmt.Sprintf("%d / %d", l.OK, l.N)
		if l.Failed > 0 {
			ok += " (first failure: " + strings.ReplaceAll(truncate(l.FirstErr, 80), "|", "\\|") + ")"
		}
		what := l.Provider
		if l.Provider == "focalx" {
			what = "focalx (`GET /api/token`, one user)"
		} else if l.Provider == "incode" {
			what = "incode (`executive/log-in`)"
		}
		p("| %s | %d | %d | %s | %s | %.1f ms | %.1f ms | %.1f ms |\n", what, l.N, l.Fetches, t, ok, l.WallMS, l.P50MS, l.MaxMS)
	}
	for _, l := range all {
		if l.Kind == "skipped" {
			p("\n%s: skipped (%s).\n", l.What, l.Reason)
		}
	}

	p("\n## Memory (section 5)\n\n")
	p("Peak RSS is `VmHWM` from `/proc/<pid>/status`, reset (`echo 5 > /proc/<pid>/clear_refs`) just before each load, " +
		"so each figure is the peak during that load alone. The same 1000-connection load is run against the baseline " +
		"Caddy for comparison.\n\n")
	p("| load | process | RSS before | peak RSS during | RSS after | req/s | errors |\n")
	p("|---|---|---:|---:|---:|---:|---:|\n")
	for _, l := range all {
		if l.Kind != "mem" {
			continue
		}
		rps, errs := "", ""
		if s := st[l.ID]; s != nil {
			rps, errs = fmt.Sprintf("%.0f", s.rps), fmt.Sprint(s.errors)
		}
		peak := mib(l.HWMKB)
		if !l.HWMReset {
			peak += " (peak since start: clear_refs refused)"
		}
		p("| %s | %s | %s | %s | %s | %s | %s |\n", l.Load, l.Process, mib(l.RSSKB), peak, mib(l.RSSAfter), rps, errs)
	}
	// Issue 12.5: idv's peak under 1000 connections ≤ 1.1x plain Caddy's.
	peaks := map[string]map[string]int{}
	var loads []string
	for _, l := range all {
		if l.Kind != "mem" || (l.Process != "idv" && l.Process != "plain") {
			continue
		}
		if peaks[l.Load] == nil {
			peaks[l.Load] = map[string]int{}
			loads = append(loads, l.Load)
		}
		peaks[l.Load][l.Process] = l.HWMKB
	}
	if len(loads) > 0 {
		p("\n| load | idv peak / plain peak | target |\n|---|---:|---|\n")
		for _, load := range loads {
			i, b := peaks[load]["idv"], peaks[load]["plain"]
			if i == 0 || b == 0 {
				continue
			}
			r := float64(i) / float64(b)
			verdict := "met"
			if r > 1.1 {
				verdict = "missed"
			}
			p("| %s | %.2fx | ≤ 1.1x: **%s** |\n", load, r, verdict)
		}
	}
	p("\nStored sessions (file_system storage: `bench/sessions` creates them through `session.StorageStore` into the " +
		"session database `idv/sessions.db`, group-committed, then reads a sample back; both namespaces share the one " +
		"file, so the large namespace's size includes the small one's 100):\n\n")
	p("| namespace | sessions | files | disk usage (du) | apparent size | per session (du) | write time |\n")
	p("|---|---:|---:|---:|---:|---:|---:|\n")
	for _, l := range all {
		if l.Kind != "storage" {
			continue
		}
		per := ""
		if l.N > 0 {
			per = fmt.Sprintf("%.1f KiB", float64(l.DUKB)/float64(l.N))
		}
		p("| `idv/%s` | %d | %d | %s | %s | %s | %.1f s |\n", l.Namespace, l.N, l.Files, mib(l.DUKB), mib(l.ApparentK), per, l.WriteS)
	}

	if analysisFile != "" {
		b, err := os.ReadFile(analysisFile)
		if err != nil {
			fail(err)
		}
		p("\n%s", b)
	}
}

// protoOf names a streams row's protocol.
func protoOf(proto string) string {
	switch proto {
	case "", "h1":
		return "HTTP/1.1"
	case "h2":
		return "HTTP/2 (TLS)"
	case "h2c":
		return "HTTP/2 (h2c)"
	}
	return proto
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "report:", err)
	os.Exit(1)
}

// writeCounts is issue 12.1's write path in counts: what makes a session
// durable, per session, which unlike req/s does not move with the load.
func writeCounts(w io.Writer, all []line) {
	var sc *line
	sw := map[string]line{}
	for _, l := range all {
		switch l.Kind {
		case "syscalls":
			l := l
			sc = &l
		case "storewrites":
			sw[l.ID] = l
		}
	}
	if sc == nil && len(sw) == 0 {
		return
	}
	p := func(format string, a ...any) { fmt.Fprintf(w, format, a...) }
	p("### Issue 12.1 in counts: what makes a new session durable\n\n")
	if sc != nil && sc.Requests > 0 {
		n := float64(sc.Requests)
		p("Syscalls of the idv process per answered `/api/start` on file storage, counted with `strace -f -c` over one "+
			"run of wrk (%d connections, %d requests; strace slows the process, so this run is not in the rates above): "+
			"**%.3f fdatasync**, %.3f fsync (the once-a-second writability probe), %.2f pwrite. "+
			"The sessions share their commits: a bbolt commit syncs twice (the pages, then the meta page), "+
			"so %.1f sessions per commit.\n\n", 50, sc.Requests, float64(sc.Fdatasync)/n, float64(sc.Fsync)/n, float64(sc.Pwrite)/n,
			2*n/math.Max(1, float64(sc.Fdatasync)))
	}
	if len(sw) > 0 {
		p("The session store alone (`bench/storewrites`: concurrent goroutines creating sessions as `/api/start` stores them, " +
			"nothing else running in the process):\n\n")
		p("| storage | writers | sessions/s | CPU/session | sessions per commit (largest) | fdatasync/session | pages/session |\n")
		p("|---|---:|---:|---:|---:|---:|---:|\n")
		for _, k := range []struct{ id, what string }{{"store-disk", "file storage on disk"}, {"store-disk-1", "file storage on disk"}, {"store-tmpfs", "file storage on tmpfs"}} {
			l, ok := sw[k.id]
			if !ok {
				continue
			}
			p("| %s | %d | %.0f | %.0f µs | %.1f (%d) | %.3f | %.2f |\n", k.what, l.Concurrency, l.PerS, l.CPUPer, l.PerTx, l.MaxTx, l.SyncsPer, l.PagesPer)
		}
		p("\n")
	}
}

// largeSessions is the number of sessions the resume row ran with (the
// storage line of the large namespace; BENCH_SESSIONS), 100 000 if absent.
func largeSessions(all []line) int {
	for _, l := range all {
		if l.Kind == "storage" && l.Namespace == "bench-large" && l.N > 0 {
			return l.N
		}
	}
	return 100000
}

// spaced writes n with a space between thousands (100 000).
func spaced(n int) string {
	s := strconv.Itoa(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + " " + s[i:]
	}
	return s
}
