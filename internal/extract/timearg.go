package extract

import (
	"fmt"
	"strings"
	"time"
)

// ParseTime reads a window bound as the command line and the API take it:
//
//	2026-03-01T12:00:00Z    RFC 3339, fractional seconds allowed, any zone
//	now                     now
//	-15m, -1h30m, -90s      that long before now (a Go duration, signed)
//	+5m                     that long after now
//
// A relative time is taken against now, which the caller passes once for
// both bounds so that "--since -15m --until now" is exactly 15 minutes.
func ParseTime(s string, now time.Time) (time.Time, error) {
	s = strings.TrimSpace(s)
	switch {
	case s == "":
		return time.Time{}, fmt.Errorf("empty time: want RFC 3339, now or a relative time like -15m")
	case s == "now":
		return now, nil
	case s[0] == '-' || s[0] == '+':
		d, err := time.ParseDuration(s)
		if err != nil {
			return time.Time{}, fmt.Errorf("time %q: want a relative time like -15m or -1h30m", s)
		}
		return now.Add(d), nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("time %q: want RFC 3339 (2006-01-02T15:04:05Z), now or a relative time like -15m", s)
	}
	return t, nil
}

// ParseWindow reads the bounds of a window [since, until); until "" is
// now. since must come before until.
func ParseWindow(since, until string, now time.Time) (time.Time, time.Time, error) {
	s, err := ParseTime(since, now)
	if err != nil {
		return time.Time{}, time.Time{}, fmt.Errorf("since: %w", err)
	}
	u := now
	if until != "" {
		if u, err = ParseTime(until, now); err != nil {
			return time.Time{}, time.Time{}, fmt.Errorf("until: %w", err)
		}
	}
	if !s.Before(u) {
		return time.Time{}, time.Time{}, fmt.Errorf("since %s is not before until %s", s.Format(time.RFC3339Nano), u.Format(time.RFC3339Nano))
	}
	return s, u, nil
}
