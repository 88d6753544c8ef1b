package objstore

import (
	"testing"
	"time"
)

func TestParseHour(t *testing.T) {
	at := time.Date(2026, 12, 1, 5, 45, 0, 0, time.UTC)
	base := FileBase("sn-1", at, 7)
	for key, want := range map[string]string{
		HourPrefix(at):        "",
		base + SuffixManifest: base[len(HourPrefix(at)):] + SuffixManifest,
	} {
		h, rest, ok := parseHour(key)
		if !ok || !h.Equal(at.Truncate(time.Hour)) || rest != want {
			t.Errorf("parseHour(%q) = %v %q %v, want %v %q", key, h, rest, ok, at.Truncate(time.Hour), want)
		}
	}
	for _, key := range []string{
		"", "v1/", "v1/_sniffers/a.json", "v1/dt=2026-12-01/", "v1/dt=2026-13-01/hour=05/", "v1/dt=2026-12-01/hour=24/",
		"v1/dt=2026-12-01/hour=5/x", "v1/dt=2026-12-01/hour=05x", "v2/dt=2026-12-01/hour=05/", "v1/dt=2026-2-01/hour=05/",
	} {
		if h, rest, ok := parseHour(key); ok {
			t.Errorf("parseHour(%q) = %v %q, want no hour", key, h, rest)
		}
	}
}

func TestManifestKeys(t *testing.T) {
	base := FileBase("a", time.Date(2026, 12, 1, 5, 0, 0, 0, time.UTC), 1)
	if k, err := ManifestKey(base + SuffixPcap); err != nil || k != base+SuffixManifest {
		t.Errorf("ManifestKey = %q, %v", k, err)
	}
	for _, bad := range []string{base + SuffixIndex, "x.pcapng", base} {
		if k, err := ManifestKey(bad); err == nil {
			t.Errorf("ManifestKey(%q) = %q, want an error", bad, k)
		}
	}
	for key, want := range map[string]bool{
		base + SuffixManifest:                       true,
		base + SuffixPcap:                           false,
		base + SuffixIndex:                          false,
		SnifferKey("a"):                             false,
		"v1/dt=2026-12-01/hour=05/a.json":           false,
		"v1/dt=2026-12-01/hour=05/sniffer=a/x.json": true,
		"other/sniffer=a/x.json":                    false,
	} {
		if got := isManifestKey(key); got != want {
			t.Errorf("isManifestKey(%q) = %v, want %v", key, got, want)
		}
	}
}

func TestSize(t *testing.T) {
	for n, want := range map[int64]string{0: "0 B", 1023: "1023 B", 1024: "1.0 KiB", 1536: "1.5 KiB",
		5 << 20: "5.0 MiB", 3 << 40: "3.0 TiB", 1 << 62: "4.0 EiB"} {
		if got := Size(n); got != want {
			t.Errorf("Size(%d) = %q, want %q", n, got, want)
		}
	}
}
