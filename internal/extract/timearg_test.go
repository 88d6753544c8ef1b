package extract

import (
	"testing"
	"time"
)

func TestParseTime(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	for in, want := range map[string]time.Time{
		"now":                         now,
		"-15m":                        now.Add(-15 * time.Minute),
		" -1h30m ":                    now.Add(-90 * time.Minute),
		"+5s":                         now.Add(5 * time.Second),
		"2026-03-01T11:00:00Z":        now.Add(-time.Hour),
		"2026-03-01T13:00:00.5+02:00": now.Add(-time.Hour + 500*time.Millisecond),
	} {
		got, err := ParseTime(in, now)
		if err != nil || !got.Equal(want) {
			t.Errorf("ParseTime(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "15m", "yesterday", "-", "-15", "2026-03-01", "2026-03-01 11:00:00", "now-1m"} {
		if got, err := ParseTime(in, now); err == nil {
			t.Errorf("ParseTime(%q) = %v, want an error", in, got)
		}
	}
	if _, _, err := ParseWindow("now", "-1m", now); err == nil {
		t.Error("ParseWindow: since after until accepted")
	}
	if s, u, err := ParseWindow("-1m", "", now); err != nil || !u.Equal(now) || !s.Equal(now.Add(-time.Minute)) {
		t.Errorf("ParseWindow(-1m, \"\") = %v, %v, %v", s, u, err)
	}
}

// FuzzParseTime: any input gives a time or an error, never a panic, and a
// time it gives round-trips through RFC 3339.
func FuzzParseTime(f *testing.F) {
	for _, s := range []string{"now", "-15m", "+1h", "2026-03-01T11:00:00Z", "2026-03-01T11:00:00.123456789+05:30", "-9223372036854775808ns"} {
		f.Add(s)
	}
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, s string) {
		got, err := ParseTime(s, now)
		if err != nil {
			return
		}
		if got.Year() < 0 || got.Year() > 9999 {
			return // beyond what RFC 3339 writes
		}
		back, err := time.Parse(time.RFC3339Nano, got.Format(time.RFC3339Nano))
		if err != nil || !back.Equal(got) {
			t.Errorf("ParseTime(%q) = %v, which does not round-trip: %v, %v", s, got, back, err)
		}
	})
}
