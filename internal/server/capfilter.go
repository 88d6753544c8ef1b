package server

import (
	"fmt"
	"net/http"
	"strings"
	"time"
)

// fileFilter selects files of /api/captures: those with a packet in
// [since, until] and, with vn, a VN pair whose source or destination
// contains vn (case-insensitive). Zero fields select all.
type fileFilter struct {
	since, until time.Time
	vn           string
}

// fileFilterFrom reads since= and until= (RFC 3339) and vn= of r.
func fileFilterFrom(r *http.Request) (fileFilter, error) {
	q := r.URL.Query()
	f := fileFilter{vn: strings.ToLower(q.Get("vn"))}
	for _, p := range []struct {
		name string
		t    *time.Time
	}{{"since", &f.since}, {"until", &f.until}} {
		if v := q.Get(p.name); v != "" {
			t, err := time.Parse(time.RFC3339, v)
			if err != nil {
				return f, fmt.Errorf("%s=%q: want an RFC 3339 time (2026-03-01T12:00:00Z)", p.name, v)
			}
			*p.t = t
		}
	}
	return f, nil
}

func (f fileFilter) zero() bool { return f == fileFilter{} }

// match reports whether the file is selected. A file without packet times
// (empty, or being started) matches any time range.
func (f fileFilter) match(fi *FileInfo) bool {
	if !f.since.IsZero() && !fi.Last.IsZero() && fi.Last.Before(f.since) {
		return false
	}
	if !f.until.IsZero() && !fi.First.IsZero() && fi.First.After(f.until) {
		return false
	}
	if f.vn == "" {
		return true
	}
	for _, p := range fi.Pairs {
		if strings.Contains(strings.ToLower(p.SrcVN), f.vn) || strings.Contains(strings.ToLower(p.DstVN), f.vn) {
			return true
		}
	}
	return false
}
