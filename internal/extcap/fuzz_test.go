package extcap

import (
	"io"
	"strings"
	"testing"
	"time"

	"github.com/vrsniff/vrsniff/internal/filter"
	"github.com/vrsniff/vrsniff/internal/mirror"
	"github.com/vrsniff/vrsniff/internal/pcapfile"
)

func FuzzStreamURL(f *testing.F) {
	for _, s := range []string{"127.0.0.1:8080", "https://h:8443/", "http://h/x/api/stream?vn=a", "http://[::1]:80", "h%zz", "ftp://x"} {
		f.Add(s, "*:vn-left", "tcp port 80")
	}
	f.Fuzz(func(t *testing.T, base, vn, bpf string) {
		u, err := StreamURL(base, filter.Options{VN: vn, BPF: bpf})
		if err != nil {
			return
		}
		if !strings.HasSuffix(u.Path, streamPath) || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			t.Fatalf("%q: %v", base, u)
		}
		q := u.Query()
		if q.Get("vn") != vn && vn != "" || q.Get("bpf") != bpf && bpf != "" {
			t.Fatalf("%q: filter lost in %v", base, u)
		}
	})
}

func FuzzParseArgs(f *testing.F) {
	f.Add("--capture\x00--extcap-interface\x00vrsniff-remote\x00--fifo\x00/tmp/f\x00--url\x00http://h")
	f.Add("--extcap-interfaces\x00--extcap-version=4.0")
	f.Add("--extcap-interface\x00vrsniff-local\x00--mirror_vlan\x0099999999999")
	f.Fuzz(func(t *testing.T, s string) {
		o, err := ParseArgs(strings.Split(s, "\x00"))
		if err != nil || o.Capture {
			return // a capture would open the FIFO
		}
		pr := &Program{}
		_ = pr.Run(t.Context(), o)
	})
}

// BenchmarkLocalSink is the per-packet cost of the local interface's
// output: one pcapng block with its comment, written and flushed.
func BenchmarkLocalSink(b *testing.B) {
	w, err := pcapfile.NewWriter(io.Discard, pcapfile.Options{Format: pcapfile.FormatPcapNG})
	if err != nil {
		b.Fatal(err)
	}
	s := flushingSink{w}
	frame := make([]byte, 1400)
	p := &mirror.Packet{Timestamp: time.Unix(1, 0), Data: frame, WireLen: len(frame), Mode: mirror.ModeJuniper,
		Frame: frame, FrameLen: len(frame)}
	p.Meta.SrcVN, p.Meta.DstVN = []byte("default-domain:admin:vn-left"), []byte("default-domain:admin:vn-right")
	p.Meta.Flags, p.Meta.FlagBits, p.Meta.Direction = mirror.FlagPass|mirror.FlagIngress, 32, mirror.DirIngress
	b.ReportAllocs()
	b.SetBytes(int64(len(frame)))
	for b.Loop() {
		if err := s.WritePacket(p); err != nil {
			b.Fatal(err)
		}
	}
}
