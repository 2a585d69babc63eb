package focalx

import (
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Focalx answers expiry_time as Python prints a datetime.timedelta:
// "2:00:00", "1 day, 2:03:04", "5 days, 0:00:00", "0:00:01.500000", and for
// negative durations a negative day count with a positive remainder,
// "-1 day, 23:59:59" (one second ago).
var timedeltaRe = regexp.MustCompile(`^\s*(?:([-+]?\d{1,9})\s+days?\s*,\s*)?(\d{1,9}):([0-5]\d):([0-5]\d)(?:\.(\d{1,9}))?\s*$`)

// maxSeconds keeps days*86400+... inside a time.Duration.
const maxSeconds = math.MaxInt64 / int64(time.Second)

// ParseTimedelta reads a Python timedelta string. A negative duration (a
// token that has already expired) is returned as 0. It reports false for
// anything else, including durations too long for a time.Duration (about
// 292 years), so the caller can fall back to the documented lifetime.
func ParseTimedelta(s string) (time.Duration, bool) {
	m := timedeltaRe.FindStringSubmatch(s)
	if m == nil {
		return 0, false
	}
	var days int64
	if m[1] != "" {
		days, _ = strconv.ParseInt(m[1], 10, 64) // at most 9 digits: no error
	}
	h, _ := strconv.ParseInt(m[2], 10, 64)
	mi, _ := strconv.ParseInt(m[3], 10, 64)
	sec, _ := strconv.ParseInt(m[4], 10, 64)
	var ns int64
	if m[5] != "" {
		ns, _ = strconv.ParseInt((m[5] + "00000000")[:9], 10, 64) // ".5" is 500ms
	}
	// At most 1e9 days and 1e9 hours: about 1e14 seconds, no int64 overflow.
	total := days*86400 + h*3600 + mi*60 + sec
	if total < 0 { // ns < 1s cannot bring it back to zero
		return 0, true
	}
	if total > maxSeconds || total == maxSeconds && ns > math.MaxInt64%int64(time.Second) {
		return 0, false
	}
	return time.Duration(total)*time.Second + time.Duration(ns), true
}

// FormatTimedelta prints d as Python's str(timedelta) does, with nine
// fractional digits instead of six when d is not a whole number of
// microseconds, so that ParseTimedelta(FormatTimedelta(d)) == d for d >= 0.
func FormatTimedelta(d time.Duration) string {
	// Python keeps 0 <= seconds < 1 day and puts the sign on the days.
	days := int64(d / (24 * time.Hour))
	rest := d % (24 * time.Hour)
	if rest < 0 {
		days--
		rest += 24 * time.Hour
	}
	var b strings.Builder
	if days != 0 {
		plural := "s"
		if days == 1 || days == -1 {
			plural = ""
		}
		fmt.Fprintf(&b, "%d day%s, ", days, plural)
	}
	secs := int64(rest / time.Second)
	fmt.Fprintf(&b, "%d:%02d:%02d", secs/3600, secs/60%60, secs%60)
	switch ns := int64(rest % time.Second); {
	case ns == 0:
	case ns%1000 == 0:
		fmt.Fprintf(&b, ".%06d", ns/1000)
	default:
		fmt.Fprintf(&b, ".%09d", ns)
	}
	return b.String()
}
