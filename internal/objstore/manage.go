package objstore

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// StaleAfter is how long a sniffer may go unseen (its record's LastSeen)
// before Ls calls it stale: its record is rewritten every minute while it
// captures.
const StaleAfter = 24 * time.Hour

// parseHour reads the hour of a key that starts with an hour prefix
// ("v1/dt=YYYY-MM-DD/hour=HH/…") and returns it with the rest of the key.
func parseHour(key string) (hour time.Time, rest string, ok bool) {
	const n = len("v1/dt=2006-01-02/hour=15/")
	if len(key) < n || !strings.HasPrefix(key, LayoutVersion+"/dt=") {
		return time.Time{}, "", false
	}
	t, err := time.Parse("2006-01-02 15", key[6:16]+" "+key[22:24])
	// HourPrefix(t) gives the key back only if nothing else was in it.
	if err != nil || HourPrefix(t) != key[:n] {
		return time.Time{}, "", false
	}
	return t, key[n:], true
}

// hours lists the hour prefixes of the store that parse (parseHour), in
// order, with their times.
func (s *Store) hours(ctx context.Context) ([]string, []time.Time, error) {
	days, err := s.Dirs(ctx, LayoutVersion+"/")
	if err != nil {
		return nil, nil, err
	}
	var prefixes []string
	var times []time.Time
	for _, d := range days {
		if !strings.HasPrefix(d, LayoutVersion+"/dt=") {
			continue // v1/_sniffers/
		}
		hs, err := s.Dirs(ctx, d)
		if err != nil {
			return nil, nil, err
		}
		for _, h := range hs {
			if t, rest, ok := parseHour(h); ok && rest == "" {
				prefixes, times = append(prefixes, h), append(times, t)
			}
		}
	}
	return prefixes, times, nil
}

// PruneResult is what Prune removed, or would remove on a dry run.
type PruneResult struct {
	Before  time.Time   `json:"before"`
	DryRun  bool        `json:"dry_run"`
	Hours   []time.Time `json:"hours"`   // the start of every hour pruned
	Objects int         `json:"objects"` // objects removed
	Bytes   int64       `json:"bytes"`
	Uploads int         `json:"aborted_uploads"` // incomplete multipart uploads aborted
}

// Prune removes the whole hour prefixes (HourPrefix) that end at or before
// before: every object under them, captures, indexes and manifests alike,
// and their incomplete multipart uploads. It needs no lifecycle rules
// (Swift's s3api has none). On a dry run it only counts. Sniffer records
// stay (PruneSniffers removes them).
func (s *Store) Prune(ctx context.Context, before time.Time, dryRun bool) (PruneResult, error) {
	res := PruneResult{Before: before, DryRun: dryRun, Hours: []time.Time{}}
	prefixes, times, err := s.hours(ctx)
	if err != nil {
		return res, err
	}
	for i, p := range prefixes {
		if times[i].Add(time.Hour).After(before) {
			continue
		}
		objects, bytes := 0, int64(0)
		for o, err := range s.List(ctx, p) {
			if err != nil {
				return res, err
			}
			objects++
			bytes += o.Size
		}
		if !dryRun {
			// Manifests first would be neater for readers, but a reader of
			// an hour this old finds the captures gone either way: it
			// skips a manifest that vanished and fails on a missing file
			// it was told of, which the window it asked for explains.
			n, err := s.DeletePrefix(ctx, p)
			if err != nil {
				return res, err
			}
			objects = n
			u, err := s.AbortUploads(ctx, p, 0)
			res.Uploads += u
			if err != nil {
				return res, err
			}
		}
		res.Hours = append(res.Hours, times[i])
		res.Objects += objects
		res.Bytes += bytes
	}
	return res, nil
}

// PruneSniffers removes the records of the sniffers last seen before
// before and returns them; on a dry run it only returns them. The
// sniffers' stored captures stay: Prune removes them by age.
func (s *Store) PruneSniffers(ctx context.Context, before time.Time, dryRun bool) ([]Sniffer, error) {
	rs, err := s.Sniffers(ctx)
	if err != nil {
		return nil, err
	}
	old := []Sniffer{}
	for _, r := range rs {
		if !r.LastSeen.Before(before) {
			continue
		}
		if !dryRun {
			if err := s.Delete(ctx, SnifferKey(r.ID)); err != nil {
				return old, err
			}
		}
		old = append(old, r)
	}
	return old, nil
}

// Listing is what a bucket holds: Ls's answer.
type Listing struct {
	Store    string           `json:"store"` // s3://BUCKET/PREFIX
	Endpoint string           `json:"endpoint"`
	Now      time.Time        `json:"now"` // the time staleness is judged at
	Sniffers []SnifferListing `json:"sniffers"`
	Hours    []HourListing    `json:"hours"`
	Total    Usage            `json:"total"`
}

// Usage counts stored objects. Files are the capture files (SuffixPcap)
// and Manifests their manifests: fewer manifests than files means uploads
// in progress, or ones that failed before their manifest was written.
type Usage struct {
	Files     int   `json:"files"`
	Manifests int   `json:"manifests"`
	Objects   int   `json:"objects"`
	Bytes     int64 `json:"bytes"`
}

// SnifferListing is a sniffer: its record, when it has one, and what it
// stored.
type SnifferListing struct {
	Sniffer
	// Record is false for a sniffer that has captures in the bucket but no
	// record (removed by PruneSniffers, or never written).
	Record bool `json:"record"`
	// Stale is true when the record was last seen longer than StaleAfter
	// before Listing.Now.
	Stale bool `json:"stale"`
	Usage
}

// HourListing is an hour prefix and what it holds.
type HourListing struct {
	Hour     time.Time `json:"hour"`
	Sniffers int       `json:"sniffers"`
	Usage
}

// Ls lists the store: the sniffers (their records and what they stored),
// every hour with its files and sizes, and the total, staleness judged at
// now. It lists every key of the store (one request per 1000 keys).
func (s *Store) Ls(ctx context.Context, now time.Time) (Listing, error) {
	l := Listing{Store: s.loc.String(), Endpoint: s.endpoint, Now: now, Sniffers: []SnifferListing{}, Hours: []HourListing{}}
	rs, err := s.Sniffers(ctx)
	if err != nil {
		return l, err
	}
	sniffers := map[string]*SnifferListing{}
	for _, r := range rs {
		sniffers[r.ID] = &SnifferListing{Sniffer: r, Record: true, Stale: now.Sub(r.LastSeen) > StaleAfter}
	}
	hours := map[time.Time]*HourListing{}
	hourSniffers := map[time.Time]map[string]bool{}
	for o, err := range s.List(ctx, LayoutVersion+"/dt=") {
		if err != nil {
			return l, err
		}
		h, rest, ok := parseHour(o.Key)
		if !ok {
			continue
		}
		hl := hours[h]
		if hl == nil {
			hl = &HourListing{Hour: h}
			hours[h], hourSniffers[h] = hl, map[string]bool{}
		}
		hl.add(o)
		l.Total.add(o)
		dir, _, _ := strings.Cut(rest, "/")
		id, ok := strings.CutPrefix(dir, "sniffer=")
		if !ok || CheckSniffer(id) != nil {
			continue
		}
		hourSniffers[h][id] = true
		sl := sniffers[id]
		if sl == nil {
			sl = &SnifferListing{Sniffer: Sniffer{ID: id}}
			sniffers[id] = sl
		}
		sl.add(o)
	}
	for h, hl := range hours {
		hl.Sniffers = len(hourSniffers[h])
		l.Hours = append(l.Hours, *hl)
	}
	slices.SortFunc(l.Hours, func(a, b HourListing) int { return a.Hour.Compare(b.Hour) })
	for _, sl := range sniffers {
		l.Sniffers = append(l.Sniffers, *sl)
	}
	slices.SortFunc(l.Sniffers, func(a, b SnifferListing) int { return cmp.Compare(a.ID, b.ID) })
	return l, nil
}

func (u *Usage) add(o Object) {
	u.Objects++
	u.Bytes += o.Size
	switch {
	case strings.HasSuffix(o.Key, SuffixPcap):
		u.Files++
	case isManifestKey(o.Key):
		u.Manifests++
	}
}

// Print writes the listing as tables: the sniffers, then the hours, then
// the total.
func (l *Listing) Print(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	fmt.Fprintf(tw, "store %s at %s\n\n", l.Store, l.Endpoint)
	fmt.Fprintln(tw, "SNIFFER\tVERSION\tAPI\tLAST SEEN\tFILES\tSIZE\tSTATE")
	for _, s := range l.Sniffers {
		state, seen := "ok", s.LastSeen.UTC().Format(time.RFC3339)
		switch {
		case !s.Record:
			state, seen = "no record", "-"
		case s.Stale:
			state = fmt.Sprintf("stale (%s)", l.Now.Sub(s.LastSeen).Truncate(time.Minute))
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s\n", s.ID, dash(s.Version), dash(s.API), seen, s.Files, Size(s.Bytes), state)
	}
	fmt.Fprintln(tw, "\nHOUR (UTC)\tSNIFFERS\tFILES\tMANIFESTS\tOBJECTS\tSIZE")
	for _, h := range l.Hours {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%s\n", h.Hour.Format("2006-01-02 15:00"), h.Sniffers, h.Files, h.Manifests, h.Objects, Size(h.Bytes))
	}
	fmt.Fprintf(tw, "total\t%d\t%d\t%d\t%d\t%s\n", len(l.Sniffers), l.Total.Files, l.Total.Manifests, l.Total.Objects, Size(l.Total.Bytes))
	return tw.Flush()
}

// WriteJSON writes the listing as one JSON document.
func (l *Listing) WriteJSON(w io.Writer) error {
	e := json.NewEncoder(w)
	e.SetIndent("", "  ")
	return e.Encode(l)
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// Size formats a byte count with binary units: "512 B", "1.5 GiB".
func Size(n int64) string {
	if n < 1024 {
		return fmt.Sprintf("%d B", n)
	}
	f, u := float64(n)/1024, 0
	for f >= 1024 && u < 5 {
		f /= 1024
		u++
	}
	return fmt.Sprintf("%.1f %s", f, []string{"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"}[u])
}
