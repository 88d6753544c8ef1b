package capture

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/gopacket/gopacket/layers"

	"github.com/vrsniff/vrsniff/internal/capture/capturetest"
	"github.com/vrsniff/vrsniff/internal/extract"
	"github.com/vrsniff/vrsniff/internal/filter"
	"github.com/vrsniff/vrsniff/internal/gen"
	"github.com/vrsniff/vrsniff/internal/mirror"
	"github.com/vrsniff/vrsniff/internal/objstore"
	"github.com/vrsniff/vrsniff/internal/pcapfile"
	"github.com/vrsniff/vrsniff/internal/query"
	"github.com/vrsniff/vrsniff/internal/testenv"
	"github.com/vrsniff/vrsniff/internal/upload"
)

// TestFleet: three sniffers, each on its own interface, get the lab's
// conversations split by a hash of the inner source and destination, so
// that the two directions of a conversation often reach different
// sniffers, among random mirror traffic; each uploads its files to one
// bucket. A query across the fleet returns, in time order, exactly the
// frames and comments that the same expression keeps from a fourth
// sniffer that saw everything.
func TestFleet(t *testing.T) {
	e := testenv.S3(t)
	ctx := context.Background()
	st, err := objstore.Open(ctx, objstore.Config{URL: "s3://" + e.Bucket + "/fleet", Endpoint: e.URL,
		Region: e.Region, AccessKey: e.AccessKey, SecretKey: e.SecretKey})
	if err != nil {
		t.Fatal(err)
	}

	g, err := gen.New(gen.Options{Seed: 7, Scenario: "lab", LinkType: layers.LinkTypeEthernet, MTU: 1500})
	if err != nil {
		t.Fatal(err)
	}
	var cases []*gen.Case
	noise := capturetest.Cases(t, "acl", 41, 300, 1400)
	for i := range 3 * g.SceneLen() {
		cases = append(cases, g.Next().Clone())
		cases = append(cases, noise[i*len(noise)/(3*g.SceneLen())])
	}

	const sniffers = 3
	var envs [sniffers + 1]*testenv.Netns
	var runs [sniffers + 1]*running
	want := make([]uint64, sniffers+1)
	refDir := t.TempDir()
	for i := range envs {
		envs[i] = testenv.NewNetns(t)
		dir := refDir
		if i < sniffers {
			dir = t.TempDir()
		}
		c := config(dir)
		c.Interface, c.Files.MaxSize = envs[i].CaptureIf, 16<<10
		if i < sniffers {
			c.Upload = Upload{Bucket: st, Config: upload.Config{Sniffer: fmt.Sprintf("sniffer-%d", i), Retry: 10 * time.Millisecond}}
		} else {
			// The reference sniffer keeps its files and answers
			// GET /api/query from the fleet's bucket.
			c.Fleet, c.Server.Token = st, "fleet-token-0123456789"
		}
		runs[i] = start(t, c)
	}
	for _, c := range cases {
		k := innerHash(c.Frame) % sniffers
		for _, i := range []int{k, sniffers} {
			envs[i].Send(t, capturetest.OuterFrames([]*gen.Case{c}))
			want[i]++
		}
	}
	for i, r := range runs {
		r.waitWritten(want[i])
		if i == sniffers {
			if err := r.svc.Rotate(); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := r.finish(); err != nil {
			t.Fatalf("sniffer %d: Run: %v", i, err)
		}
		if r.svc.Stats().Upload.SpoolFiles != 0 {
			t.Fatalf("sniffer %d: files left in the spool: %+v", i, r.svc.Stats().Upload)
		}
	}
	for i := range sniffers {
		if want[i] == 0 {
			t.Fatalf("sniffer %d got no traffic", i)
		}
	}

	const expr = "host 10.0.2.3 and tcp port 80"
	srcs, err := extract.Dir(refDir)
	if err != nil {
		t.Fatal(err)
	}
	f, err := filter.New(filter.Options{BPF: expr})
	if err != nil {
		t.Fatal(err)
	}
	var ref bytes.Buffer
	if _, err := extract.Write(ctx, &ref, srcs, extract.Options{Filter: f}); err != nil {
		t.Fatal(err)
	}
	since, until := time.Now().Add(-time.Hour), time.Now().Add(time.Minute)
	q := query.Query{Since: since, Until: until, Filter: filter.Options{BPF: expr}}
	var whole bytes.Buffer
	ws, err := query.Run(ctx, st, q, &whole, query.Options{})
	if err != nil {
		t.Fatalf("query without the indexes: %v", err)
	}
	var out bytes.Buffer
	// No reading through gaps (Gap -1): files this small would be read
	// whole in one GET.
	qs, err := query.Run(ctx, st, q, &out, query.Options{OpenIndex: query.OpenFlowIndex, CommunityID: query.CommunityID, Gap: -1})
	if err != nil {
		t.Fatalf("query: %v", err)
	}
	wantRecs, gotRecs := fleetRecords(t, ref.Bytes()), fleetRecords(t, out.Bytes())
	if len(wantRecs) < 10 {
		t.Fatalf("the reference holds %d packets of %q: the test does not test", len(wantRecs), expr)
	}
	if !slices.Equal(fleetRecords(t, whole.Bytes()), wantRecs) {
		t.Errorf("the fleet query without the indexes differs from the reference")
	}
	// Through the indexes, only the flows of the host are read.
	if qs.Indexed != qs.Files || qs.PcapBytes >= ws.PcapBytes/2 {
		t.Errorf("the indexed query read %d files of %d by their index, %d bytes of captures; without the indexes %d",
			qs.Indexed, qs.Files, qs.PcapBytes, ws.PcapBytes)
	}
	// A host alone, with no port: the ICMP and DNS packets too.
	const host = "host 10.0.1.3"
	fh, err := filter.New(filter.Options{BPF: host})
	if err != nil {
		t.Fatal(err)
	}
	var refHost, outHost bytes.Buffer
	if _, err := extract.Write(ctx, &refHost, srcs, extract.Options{Filter: fh}); err != nil {
		t.Fatal(err)
	}
	hs, err := query.Run(ctx, st, query.Query{Since: since, Until: until, Filter: filter.Options{BPF: host}}, &outHost,
		query.Options{OpenIndex: query.OpenFlowIndex, CommunityID: query.CommunityID, Gap: -1})
	if err != nil {
		t.Fatalf("query %q: %v", host, err)
	}
	if want, got := fleetRecords(t, refHost.Bytes()), fleetRecords(t, outHost.Bytes()); !slices.Equal(got, want) || len(want) <= len(wantRecs) {
		t.Errorf("query %q: %d packets, the reference %d", host, len(got), len(want))
	}
	if hs.Indexed != hs.Files {
		t.Errorf("query %q read %d of %d files through their index", host, hs.Indexed, hs.Files)
	}

	// GET /api/query on a sniffer answers the same.
	resp, body := runs[sniffers].request("GET", "/api/query?"+url.Values{"since": {since.Format(time.RFC3339Nano)},
		"until": {until.Format(time.RFC3339Nano)}, "bpf": {expr}}.Encode(), nil)
	if resp.StatusCode != 200 || !slices.Equal(fleetRecords(t, body), wantRecs) {
		t.Errorf("GET /api/query: %s, %d bytes; not the reference's packets", resp.Status, len(body))
	}
	// A query that cannot be answered as asked is the client's error.
	for _, q := range []url.Values{
		{"since": {since.Format(time.RFC3339Nano)}, "community_id": {"xyz"}},
		{"since": {"2020-01-01T00:00:00Z"}},
	} {
		if resp, body := runs[sniffers].request("GET", "/api/query?"+q.Encode(), nil); resp.StatusCode != 400 {
			t.Errorf("GET /api/query?%s: %s %s, want 400", q.Encode(), resp.Status, body)
		}
	}
	if err := runs[sniffers].finish(); err != nil {
		t.Fatalf("reference sniffer: Run: %v", err)
	}
	t.Logf("sent %v; %d packets match; the query read %d files of %d manifests, %d bytes of captures (%d without the indexes), %d of indexes",
		want, len(wantRecs), qs.Files, qs.Manifests, qs.PcapBytes, ws.PcapBytes, qs.IndexBytes)
	// Both directions of the conversation, and from more than one sniffer.
	if qs.Files < 2 {
		t.Errorf("the query read %d files", qs.Files)
	}
	if !slices.Equal(gotRecs, wantRecs) {
		t.Errorf("the fleet query gave %d packets, the reference %d; not the same frames and comments in the same order",
			len(gotRecs), len(wantRecs))
	}
}

// innerHash hashes the inner IPv4 source and destination of an Ethernet
// frame, in this order: the two directions of a conversation hash apart.
func innerHash(frame []byte) int {
	h := fnv.New32a()
	if len(frame) >= 34 && binary.BigEndian.Uint16(frame[12:]) == 0x0800 {
		h.Write(frame[26:34])
	} else {
		h.Write(frame)
	}
	return int(h.Sum32() & 0x7fffffff)
}

// record is what a query must give back of a packet: its frame and its
// comments (the metadata), in order; times are each sniffer's own.
type record struct{ data, comments string }

func fleetRecords(t *testing.T, b []byte) []record {
	t.Helper()
	rd, err := pcapfile.NewReaderBytes(b)
	if err != nil {
		t.Fatal(err)
	}
	var rs []record
	var last time.Time
	var p mirror.Packet
	for rd.Next(&p) == nil {
		if p.Timestamp.Before(last) {
			t.Errorf("packet %d at %s, before the one before it", len(rs), p.Timestamp)
		}
		last = p.Timestamp
		rs = append(rs, record{string(p.Data), string(bytes.Join(p.Comments, []byte("|")))})
	}
	return rs
}
