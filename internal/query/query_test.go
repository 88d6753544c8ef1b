package query_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vrsniff/vrsniff/internal/extract"
	"github.com/vrsniff/vrsniff/internal/filter"
	"github.com/vrsniff/vrsniff/internal/mirror"
	"github.com/vrsniff/vrsniff/internal/objstore"
	"github.com/vrsniff/vrsniff/internal/pcapfile"
	"github.com/vrsniff/vrsniff/internal/query"
)

// reference is what a query must write: the fleet's packets of the
// sniffers asked for, in one capture file in time order, filtered through
// extract with the same window, filter and Community ID.
func reference(t *testing.T, fl *fleet, q query.Query) ([]byte, uint64) {
	t.Helper()
	var ps []*mirror.Packet
	for i, p := range fl.all {
		if len(q.Sniffers) == 0 || slices.Contains(q.Sniffers, fl.sniffer[i]) {
			ps = append(ps, p)
		}
	}
	pcap, _, _ := encode(t, ps)
	o := extract.Options{Since: q.Since, Until: q.Until, Filter: filterOf(t, q.Filter), Application: "vrsniff"}
	if q.CommunityID != "" {
		o.Match = func(p *mirror.Packet) bool { return communityID(p) == q.CommunityID }
	}
	var out bytes.Buffer
	st, err := extract.Write(context.Background(), &out, []extract.Source{{Name: "reference",
		Open: func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(pcap)), nil }}}, o)
	if err != nil {
		t.Fatal(err)
	}
	return out.Bytes(), st.Written
}

func runQuery(t *testing.T, fl *fleet, q query.Query, o query.Options) ([]byte, query.Stats) {
	t.Helper()
	o.Application = "vrsniff"
	if o.CommunityID == nil {
		o.CommunityID = communityID
	}
	var out bytes.Buffer
	st, err := query.Run(context.Background(), fl.b, q, &out, o)
	if err != nil {
		t.Fatal(err)
	}
	return out.Bytes(), st
}

// same checks that the query wrote exactly the reference, and that the
// reference is not empty (a query that finds nothing proves nothing).
func same(t *testing.T, fl *fleet, q query.Query, got []byte, st query.Stats) {
	t.Helper()
	want, n := reference(t, fl, q)
	if n == 0 {
		t.Fatalf("the reference of %+v has no packet", q)
	}
	if st.Packets != n {
		t.Errorf("%d packets written, want %d", st.Packets, n)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("output (%d bytes) differs from the reference (%d bytes)", len(got), len(want))
	}
	if st.Extract.Warnings() != 0 {
		t.Errorf("%d files skipped or cut short", st.Extract.Warnings())
	}
}

// neededBytes is what a query must read of the fleet's capture files
// through their indexes: each header, and the records of the rows the
// index returns.
func neededBytes(t *testing.T, fl *fleet, q query.Query) int64 {
	h, err := filter.Hints(q.Filter.BPF)
	if err != nil {
		t.Fatal(err)
	}
	iq := query.IndexQuery{Since: q.Since, Until: q.Until, Prefixes: h.Prefixes, Ports: h.Ports, NoAddr: !h.IP, CommunityID: q.CommunityID}
	ms, err := fl.b.Manifests(context.Background(), q.Since, q.Until, nil)
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	for _, m := range ms {
		n += m.HeaderLen
		idx, err := openFakeIndex(bytes.NewReader(fl.b.objs[m.Index]), m.IndexSize)
		if err != nil {
			t.Fatal(err)
		}
		rows, err := idx.Lookup(iq)
		if err != nil {
			t.Fatal(err)
		}
		seen := map[int64]bool{}
		for _, r := range rows {
			for i, off := range r.Offsets {
				if !seen[off] {
					seen[off] = true
					n += int64(r.Lengths[i])
				}
			}
		}
	}
	return n
}

func window() (time.Time, time.Time) { return t0, t0.Add(10 * time.Minute) }

// TestRunIndexed: a host and port query over three sniffers reads, through
// the indexes, a fraction of the captures and writes exactly the matching
// packets, in time order, comments kept; without the indexes it reads the
// captures whole and writes the same.
func TestRunIndexed(t *testing.T) {
	fl := newFleet(t)
	since, until := window()
	q := query.Query{Since: since, Until: until, Filter: filter.Options{BPF: "host 10.0.0.2 and port 80"}}

	got, st := runQuery(t, fl, q, query.Options{OpenIndex: openFakeIndex})
	same(t, fl, q, got, st)
	if st.Manifests != fl.files || st.Kept != fl.files || st.Files != fl.files || st.Indexed != fl.files {
		t.Errorf("manifests %d, kept %d, files %d, indexed %d; want %d each", st.Manifests, st.Kept, st.Files, st.Indexed, fl.files)
	}
	if st.PcapBytes != fl.b.bytesRead(".pcapng") || st.IndexBytes != fl.b.bytesRead(".flows.parquet") {
		t.Errorf("stats say %d capture and %d index bytes read, the bucket served %d and %d",
			st.PcapBytes, st.IndexBytes, fl.b.bytesRead(".pcapng"), fl.b.bytesRead(".flows.parquet"))
	}
	if st.PcapBytes >= fl.pcapSize || st.IndexBytes == 0 || st.Ranges == 0 {
		t.Errorf("read %d of %d capture bytes, %d index bytes, in %d ranges", st.PcapBytes, fl.pcapSize, st.IndexBytes, st.Ranges)
	}

	// Reading no gap through, only the headers and the records of the
	// rows the index returns are read.
	fl1 := newFleet(t)
	got1, st1 := runQuery(t, fl1, q, query.Options{OpenIndex: openFakeIndex, Gap: -1})
	if !bytes.Equal(got1, got) {
		t.Errorf("reading no gap through, the output differs")
	}
	if need := neededBytes(t, fl1, q); st1.PcapBytes != need {
		t.Errorf("read %d capture bytes, the headers and selected records are %d", st1.PcapBytes, need)
	}
	if st1.PcapBytes*2 > fl1.pcapSize {
		t.Errorf("read %d of %d capture bytes through the index: more than half", st1.PcapBytes, fl1.pcapSize)
	}

	fl2 := newFleet(t)
	got2, st2 := runQuery(t, fl2, q, query.Options{})
	if !bytes.Equal(got2, got) {
		t.Errorf("without the indexes the output differs")
	}
	if st2.Indexed != 0 || st2.IndexBytes != 0 || st2.PcapBytes != fl2.pcapSize {
		t.Errorf("without the indexes: %d indexed, %d index bytes, %d of %d capture bytes read",
			st2.Indexed, st2.IndexBytes, st2.PcapBytes, fl2.pcapSize)
	}
}

// TestRunFilters: VN patterns, direction, sniffers, Community ID, a window
// inside the files and expressions the index can and cannot help with all
// give the reference, with and without indexes and with GETs small enough
// to cut blocks apart.
func TestRunFilters(t *testing.T) {
	fl := newFleet(t)
	since, until := window()
	mid, end := t0.Add(50*time.Second), t0.Add(100*time.Second)
	cid := communityID(flows[0].packet(t, false, t0, 1, mirror.DirEgress))
	for _, c := range []struct {
		name string
		q    query.Query
		kept int // manifests kept, 0: all
	}{
		{"vn", query.Query{Filter: filter.Options{VN: "vn-b"}}, 0},
		{"src-vn", query.Query{Filter: filter.Options{SrcVN: "vn-c"}}, fl.files - 2},
		{"direction", query.Query{Filter: filter.Options{Direction: "ingress", BPF: "tcp"}}, 0},
		{"sniffer", query.Query{Sniffers: []string{"sniffer-1"}, Filter: filter.Options{BPF: "port 80"}}, 3},
		{"sniffers", query.Query{Sniffers: []string{"sniffer-0", "sniffer-2"}}, 6},
		{"community-id", query.Query{CommunityID: cid}, 0},
		{"community-id and bpf", query.Query{CommunityID: cid, Filter: filter.Options{BPF: "src host 10.0.0.2"}}, 0},
		{"window", query.Query{Since: mid, Until: end, Filter: filter.Options{BPF: "host 10.0.0.1 or host 10.0.0.4"}}, 0},
		{"arp too", query.Query{Filter: filter.Options{BPF: "host 10.0.0.1"}}, 0},
		{"ipv6", query.Query{Filter: filter.Options{BPF: "ip6 and net 2001:db8::/64"}}, 0},
		{"ports", query.Query{Filter: filter.Options{BPF: "udp port 53 or tcp portrange 400-500"}}, 0},
		{"no hints", query.Query{Filter: filter.Options{BPF: "not port 80"}}, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			q := c.q
			if q.Since.IsZero() {
				q.Since, q.Until = since, until
			}
			for _, o := range []query.Options{
				{OpenIndex: openFakeIndex},
				{},
				{OpenIndex: openFakeIndex, Gap: -1, MaxRange: 700, Parallel: 1},
			} {
				got, st := runQuery(t, fl, q, o)
				same(t, fl, q, got, st)
				want := c.kept
				if q.Since == mid {
					want = 5 // all but the third minute's, and sniffer-2's second (from 100 s)
				}
				if want == 0 {
					want = fl.files
				}
				if st.Kept != want {
					t.Errorf("%d manifests kept, want %d", st.Kept, want)
				}
			}
		})
	}
}

// TestRunInvisible: a capture file whose manifest was never written is not
// read, though it holds packets of every flow.
func TestRunInvisible(t *testing.T) {
	fl := newFleet(t)
	since, until := window()
	q := query.Query{Since: since, Until: until}
	got, st := runQuery(t, fl, q, query.Options{OpenIndex: openFakeIndex})
	same(t, fl, q, got, st)
	if n := fl.b.read["v1/dt=2026-03-01/hour=12/sniffer=sniffer-9/20260301T120000.001000000Z_000000.pcapng"]; n != 0 {
		t.Errorf("%d bytes read of the file without a manifest", n)
	}
	if st.Manifests != fl.files {
		t.Errorf("%d manifests, want %d", st.Manifests, fl.files)
	}
}

// TestRunMaxOpen: more files overlapping one instant than the merge may
// hold open is an error that says so.
func TestRunMaxOpen(t *testing.T) {
	fl := newFleet(t)
	since, until := window()
	_, err := query.Run(context.Background(), fl.b, query.Query{Since: since, Until: until}, io.Discard,
		query.Options{MaxOpen: 2})
	if !errors.Is(err, query.ErrTooManyOpen) {
		t.Fatalf("err %v, want ErrTooManyOpen", err)
	}
}

// TestRunProgress: the progress ends at every file read and every byte
// counted.
func TestRunProgress(t *testing.T) {
	fl := newFleet(t)
	since, until := window()
	var last query.Progress
	calls := 0
	_, st := runQuery(t, fl, query.Query{Since: since, Until: until, Filter: filter.Options{BPF: "port 53"}},
		query.Options{OpenIndex: openFakeIndex, Progress: func(p query.Progress) { last = p; calls++ }})
	want := query.Progress{Files: st.Kept, FilesDone: st.Kept, Bytes: st.IndexBytes + st.PcapBytes}
	if last != want || calls < st.Kept {
		t.Errorf("last progress %+v after %d calls, want %+v", last, calls, want)
	}
}

// TestRunErrors: what Run refuses before reading anything.
func TestRunErrors(t *testing.T) {
	b := newMemBucket()
	since, until := window()
	for _, c := range []struct {
		name string
		q    query.Query
		o    query.Options
	}{
		{"no window", query.Query{}, query.Options{}},
		{"until before since", query.Query{Since: until, Until: since}, query.Options{}},
		{"bad sniffer", query.Query{Since: since, Until: until, Sniffers: []string{"../x"}}, query.Options{}},
		{"bad filter", query.Query{Since: since, Until: until, Filter: filter.Options{BPF: "host"}}, query.Options{}},
		{"community id without its function", query.Query{Since: since, Until: until, CommunityID: "1:x"}, query.Options{}},
	} {
		if _, err := query.Run(context.Background(), b, c.q, io.Discard, c.o); err == nil {
			t.Errorf("%s: no error", c.name)
		}
	}
}

// TestRunCancel: a query whose context ends returns its error.
func TestRunCancel(t *testing.T) {
	fl := newFleet(t)
	since, until := window()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := query.Run(ctx, fl.b, query.Query{Since: since, Until: until}, io.Discard, query.Options{OpenIndex: openFakeIndex})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err %v, want context.Canceled", err)
	}
}

// TestRunReadable: the output is a pcapng a reader takes, with the
// metadata comments of the stored packets.
func TestRunReadable(t *testing.T) {
	fl := newFleet(t)
	since, until := window()
	got, _ := runQuery(t, fl, query.Query{Since: since, Until: until, Filter: filter.Options{BPF: "tcp port 443"}},
		query.Options{OpenIndex: openFakeIndex})
	rd, err := pcapfile.NewReader(bytes.NewReader(got))
	if err != nil {
		t.Fatal(err)
	}
	var p mirror.Packet
	n := 0
	var prev time.Time
	for rd.Next(&p) == nil {
		n++
		if len(p.Comments) == 0 || !bytes.Contains(p.Comments[0], []byte("vn-")) {
			t.Errorf("packet %d: comments %q, want the metadata", n, p.Comments)
		}
		if p.Timestamp.Before(prev) {
			t.Errorf("packet %d out of time order", n)
		}
		prev = p.Timestamp
	}
	if n == 0 {
		t.Error("no packet")
	}
}

// TestRunIndexFallback: a file whose index cannot be opened, whose index
// points outside the file, or whose manifest has no header length is read
// whole, and the answer is the same.
func TestRunIndexFallback(t *testing.T) {
	fl := newFleet(t)
	since, until := window()
	q := query.Query{Since: since, Until: until, Filter: filter.Options{BPF: "host 10.0.0.3 or host 10.0.0.4"}}
	ms, err := fl.b.Manifests(context.Background(), since, until, nil)
	if err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(ms, func(a, b objstore.Manifest) int { return strings.Compare(a.Pcap, b.Pcap) })
	// An index that is no index.
	fl.b.put(ms[0].Index, []byte("not an index"))
	// An index pointing past the end of its file.
	var x fakeIndex
	if err := json.Unmarshal(fl.b.objs[ms[1].Index], &x); err != nil {
		t.Fatal(err)
	}
	x.Rows[0].Offsets[0] = ms[1].PcapSize
	js, err := json.Marshal(x)
	if err != nil {
		t.Fatal(err)
	}
	fl.b.put(ms[1].Index, js)
	// A manifest without a header length.
	m := ms[2]
	m.HeaderLen = 0
	if js, err = json.Marshal(m); err != nil {
		t.Fatal(err)
	}
	fl.b.put(strings.TrimSuffix(m.Pcap, objstore.SuffixPcap)+objstore.SuffixManifest, js)

	var logs bytes.Buffer
	got, st := runQuery(t, fl, q, query.Options{OpenIndex: openFakeIndex, Log: slog.New(slog.NewTextHandler(&logs, nil))})
	same(t, fl, q, got, st)
	if st.Indexed != fl.files-3 {
		t.Errorf("%d files read through their index, want %d", st.Indexed, fl.files-3)
	}
	if n := strings.Count(logs.String(), "flow index not usable"); n != 2 {
		t.Errorf("%d warnings of an unusable index, want 2:\n%s", n, logs.String())
	}
	for _, m := range ms[:3] {
		if n := fl.b.read[m.Pcap]; n != m.PcapSize {
			t.Errorf("%s: read %d of %d bytes, want it whole", m.Pcap, n, m.PcapSize)
		}
	}
}
