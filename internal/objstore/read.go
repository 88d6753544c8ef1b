package objstore

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
)

// Bounds of the layout's readers.
const (
	// MaxRecordSize bounds a manifest or a sniffer record, in bytes: a
	// manifest with its VN pairs is a few kB.
	MaxRecordSize = 1 << 20
	// MaxWindowHours bounds the hours one Manifests call lists (31 days):
	// a wider window is a mistake, or a job for DuckDB (docs/fleet.md).
	MaxWindowHours = 31 * 24
	// getWorkers is how many records are read at once: enough to hide a
	// request's latency, few enough not to queue on a small engine.
	getWorkers  = 8
	contentJSON = "application/json"
)

// ManifestKey is the key of the manifest of the capture whose file is
// pcapKey (FileBase + SuffixPcap).
func ManifestKey(pcapKey string) (string, error) {
	base, ok := strings.CutSuffix(pcapKey, SuffixPcap)
	if !ok || !strings.Contains(base, "/sniffer=") {
		return "", fmt.Errorf("capture key %q: want FileBase(...)%s", pcapKey, SuffixPcap)
	}
	return base + SuffixManifest, nil
}

// PutManifest writes m beside its capture file (ManifestKey(m.Pcap)). An
// uploader calls it last, once the file and its index are stored: from
// then on readers see the capture.
func (s *Store) PutManifest(ctx context.Context, m *Manifest) error {
	key, err := ManifestKey(m.Pcap)
	if err != nil {
		return err
	}
	if err := CheckSniffer(m.Sniffer); err != nil {
		return err
	}
	b, err := json.Marshal(m)
	if err != nil {
		return fmt.Errorf("manifest %s: %w", key, err)
	}
	return s.PutBytes(ctx, key, b, contentJSON)
}

// PutSniffer writes the sniffer's record (SnifferKey(r.ID)).
func (s *Store) PutSniffer(ctx context.Context, r *Sniffer) error {
	if err := CheckSniffer(r.ID); err != nil {
		return err
	}
	b, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("sniffer record %s: %w", r.ID, err)
	}
	return s.PutBytes(ctx, SnifferKey(r.ID), b, contentJSON)
}

// Manifests reads the manifests of the captures whose [First, Last]
// overlaps [since, until], of the given sniffers (all when empty), sorted
// by First (then sniffer and sequence number). It lists the hour prefixes
// from since-MaxFileSpan to until (a file starting before since may reach
// into the window) and reads the manifests in parallel. A manifest that
// vanishes between list and read (pruned) is skipped; one that does not
// parse is an error.
func (s *Store) Manifests(ctx context.Context, since, until time.Time, sniffers []string) ([]Manifest, error) {
	if until.Before(since) {
		return nil, fmt.Errorf("manifests: window ends (%s) before it starts (%s)", until, since)
	}
	for _, id := range sniffers {
		if err := CheckSniffer(id); err != nil {
			return nil, err
		}
	}
	start := since.Add(-MaxFileSpan).UTC().Truncate(time.Hour)
	if n := until.Sub(start) / time.Hour; n > MaxWindowHours {
		return nil, fmt.Errorf("manifests: window of %d hours, more than %d", n, MaxWindowHours)
	}
	var prefixes []string
	for h := start; !h.After(until); h = h.Add(time.Hour) {
		if len(sniffers) == 0 {
			prefixes = append(prefixes, HourPrefix(h))
			continue
		}
		for _, id := range sniffers {
			prefixes = append(prefixes, HourPrefix(h)+"sniffer="+id+"/")
		}
	}
	var keys []string
	for _, p := range prefixes {
		for o, err := range s.List(ctx, p) {
			if err != nil {
				return nil, err
			}
			if isManifestKey(o.Key) {
				keys = append(keys, o.Key)
			}
		}
	}
	ms, err := readJSON[Manifest](ctx, s, keys)
	if err != nil {
		return nil, err
	}
	ms = slices.DeleteFunc(ms, func(m Manifest) bool { return m.Last.Before(since) || m.First.After(until) })
	slices.SortFunc(ms, func(a, b Manifest) int {
		return cmp.Or(a.First.Compare(b.First), strings.Compare(a.Sniffer, b.Sniffer), cmp.Compare(a.Seq, b.Seq))
	})
	return ms, nil
}

// isManifestKey reports whether a key relative to the store is a
// manifest: "v1/dt=…/hour=…/sniffer=ID/NAME.json".
func isManifestKey(key string) bool {
	dir, name, ok := cutLast(key, "/")
	if !ok || !strings.HasSuffix(name, SuffixManifest) {
		return false
	}
	_, sn, ok := cutLast(dir, "/")
	return ok && strings.HasPrefix(sn, "sniffer=") && strings.HasPrefix(key, LayoutVersion+"/dt=")
}

func cutLast(s, sep string) (before, after string, ok bool) {
	i := strings.LastIndex(s, sep)
	if i < 0 {
		return s, "", false
	}
	return s[:i], s[i+len(sep):], true
}

// Sniffers reads every sniffer's record, sorted by ID.
func (s *Store) Sniffers(ctx context.Context) ([]Sniffer, error) {
	var keys []string
	for o, err := range s.List(ctx, LayoutVersion+"/_sniffers/") {
		if err != nil {
			return nil, err
		}
		if strings.HasSuffix(o.Key, ".json") {
			keys = append(keys, o.Key)
		}
	}
	rs, err := readJSON[Sniffer](ctx, s, keys)
	if err != nil {
		return nil, err
	}
	slices.SortFunc(rs, func(a, b Sniffer) int { return strings.Compare(a.ID, b.ID) })
	return rs, nil
}

// readJSON reads and decodes the objects at keys, getWorkers at a time,
// skipping those that vanished since they were listed. The first error
// stops the rest.
func readJSON[T any](ctx context.Context, s *Store, keys []string) ([]T, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	out := make([]*T, len(keys))
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(getWorkers, len(keys)) {
		wg.Go(func() {
			for i := range next {
				b, err := s.Get(ctx, keys[i], MaxRecordSize)
				if errors.Is(err, ErrNotFound) {
					continue
				}
				if err != nil {
					cancel(err)
					continue
				}
				v := new(T)
				if err := json.Unmarshal(b, v); err != nil {
					cancel(fmt.Errorf("s3 get s3://%s/%s: %w", s.loc.Bucket, s.full(keys[i]), err))
					continue
				}
				out[i] = v
			}
		})
	}
feed:
	for i := range keys {
		select {
		case next <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	if err := context.Cause(ctx); err != nil {
		return nil, err
	}
	vs := make([]T, 0, len(keys))
	for _, v := range out {
		if v != nil {
			vs = append(vs, *v)
		}
	}
	return vs, nil
}
