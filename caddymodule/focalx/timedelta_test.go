package focalx

import (
	"math"
	"testing"
	"time"
)

func TestParseTimedelta(t *testing.T) {
	const day = 24 * time.Hour
	for _, tc := range []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"2:00:00", 2 * time.Hour, true},
		{"0:00:00", 0, true},
		{"1 day, 2:03:04", day + 2*time.Hour + 3*time.Minute + 4*time.Second, true},
		{"5 days, 0:00:00", 5 * day, true},
		{"0:00:01.500000", 1500 * time.Millisecond, true},
		{"0:00:01.5", 1500 * time.Millisecond, true},
		{"0:00:00.000000001", time.Nanosecond, true},
		{"23:59:59.999999", day - time.Microsecond, true},
		{"48:00:00", 2 * day, true}, // hours past 23: not Python's form, still unambiguous
		{" 2 days ,  1:00:00 ", 2*day + time.Hour, true},
		{"+1 day, 0:00:00", day, true},
		// negative: already expired, so no lifetime at all
		{"-1 day, 23:59:59", 0, true},
		{"-1 day, 23:59:59.999999", 0, true},
		{"-5 days, 0:00:00", 0, true},
		// the largest time.Duration, and one past it
		{"106751 days, 23:47:16.854775807", math.MaxInt64, true},
		{"106751 days, 23:47:16.854775808", 0, false},
		{"999999999 days, 23:59:59", 0, false},
		// not timedeltas: the caller falls back to 2 hours
		{"", 0, false},
		{"2h", 0, false},
		{"7200", 0, false},
		{"2:00", 0, false},
		{"2:60:00", 0, false},
		{"2:00:60", 0, false},
		{"-2:00:00", 0, false},
		{"1 day 2:00:00", 0, false},
		{"1 week, 0:00:00", 0, false},
		{"0:00:01.", 0, false},
		{"0:00:01.1234567890", 0, false},
		{"2025-01-01T00:00:00Z", 0, false},
		{"５:00:00", 0, false},
	} {
		got, ok := ParseTimedelta(tc.in)
		if got != tc.want || ok != tc.ok {
			t.Errorf("ParseTimedelta(%q) = %v, %v; want %v, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

func TestFormatTimedelta(t *testing.T) {
	for _, tc := range []struct {
		in   time.Duration
		want string
	}{
		{0, "0:00:00"},
		{2 * time.Hour, "2:00:00"},
		{24 * time.Hour, "1 day, 0:00:00"},
		{5 * 24 * time.Hour, "5 days, 0:00:00"},
		{26*time.Hour + 3*time.Minute + 4*time.Second, "1 day, 2:03:04"},
		{1500 * time.Millisecond, "0:00:01.500000"},
		{time.Nanosecond, "0:00:00.000000001"},
		{-time.Second, "-1 day, 23:59:59"},     // as Python prints timedelta(seconds=-1)
		{-49 * time.Hour, "-3 days, 23:00:00"}, // -2 days, -1 hour
		{-500 * time.Millisecond, "-1 day, 23:59:59.500000"},
	} {
		if got := FormatTimedelta(tc.in); got != tc.want {
			t.Errorf("FormatTimedelta(%v) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// FuzzParseTimedelta: parsing never panics, never yields a negative
// lifetime, and what it yields prints and parses back to itself; any
// duration, printed, parses back to itself (or to 0 when negative).
func FuzzParseTimedelta(f *testing.F) {
	for _, s := range []string{"2:00:00", "1 day, 2:03:04", "5 days, 0:00:00", "0:00:01.500000",
		"-1 day, 23:59:59", "106751 days, 23:47:16.854775807", "", "garbage", "2:00", "999999999 days, 99:59:59.999999999"} {
		f.Add(s, int64(0))
	}
	f.Add("", int64(math.MaxInt64))
	f.Add("", int64(math.MinInt64))
	f.Add("", int64(-1))
	f.Add("", int64(1500*time.Millisecond))
	f.Fuzz(func(t *testing.T, s string, n int64) {
		if d, ok := ParseTimedelta(s); ok {
			if d < 0 {
				t.Fatalf("ParseTimedelta(%q) = %v, negative", s, d)
			}
			if d2, ok2 := ParseTimedelta(FormatTimedelta(d)); !ok2 || d2 != d {
				t.Fatalf("ParseTimedelta(%q) = %v, printed %q, parsed back %v, %v", s, d, FormatTimedelta(d), d2, ok2)
			}
		} else if d != 0 {
			t.Fatalf("ParseTimedelta(%q) failed but returned %v", s, d)
		}
		d := time.Duration(n)
		want := max(d, 0)
		if got, ok := ParseTimedelta(FormatTimedelta(d)); !ok || got != want {
			t.Fatalf("%d printed %q, parsed back %v, %v; want %v", n, FormatTimedelta(d), got, ok, want)
		}
	})
}
