package capture

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vrsniff/vrsniff/internal/capture/capturetest"
	"github.com/vrsniff/vrsniff/internal/pcapfile"
	"github.com/vrsniff/vrsniff/internal/testenv"
)

// The output stream gets every kept packet, as one capture that tshark
// reads, counted in the stats; with no directory and no HTTP address it is
// all that is kept.
func TestOutput(t *testing.T) {
	in := testenv.FieldCase(t, "f13_long_k8s_names.pcap")
	for _, f := range []pcapfile.Format{pcapfile.FormatPcapNG, pcapfile.FormatPcap} {
		var buf bytes.Buffer
		c := config("")
		c.Read, c.HTTP = in, ""
		c.Out = &Output{W: &buf, Format: f, PacketBuffered: f == pcapfile.FormatPcap}
		svc, err := New(c)
		if err != nil {
			t.Fatal(err)
		}
		if err := svc.Run(context.Background()); err != nil {
			t.Fatalf("Run: %v", err)
		}
		st := svc.Stats()
		if st.Out.Packets == 0 || st.Out.Packets != st.Pipeline.Written || st.Out.Bytes != uint64(buf.Len()) || st.Out.Errors != 0 || svc.OutputErr() != nil {
			t.Fatalf("%v: stats %+v, kept %d, %d bytes written, %v", f, st.Out, st.Pipeline.Written, buf.Len(), svc.OutputErr())
		}
		name := filepath.Join(t.TempDir(), "out")
		if err := os.WriteFile(name, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		if n := len(tshark(t, name, "frame.len")); uint64(n) != st.Out.Packets {
			t.Errorf("%v: tshark reads %d packets, %d written", f, n, st.Out.Packets)
		}
		ps, err := pcapfile.ReadFile(name)
		if err != nil || uint64(len(ps)) != st.Out.Packets {
			t.Errorf("%v: %d packets read back, %v", f, len(ps), err)
		}
	}
}

// MaxPackets ends Run after that many packets, kept in every sink; the
// output stream's MaxBytes ends it once that much was written.
func TestLimits(t *testing.T) {
	in := testenv.FieldCase(t, "f13_long_k8s_names.pcap")
	dir := t.TempDir()
	var buf bytes.Buffer
	c := config(dir)
	c.Read, c.HTTP = in, ""
	c.Out = &Output{W: &buf}
	c.MaxPackets = 3
	svc, err := New(c)
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.Run(context.Background()); err != nil {
		t.Fatalf("Run: %v", err)
	}
	st := svc.Stats()
	if st.Out.Packets != 3 || st.Files.Packets != 3 {
		t.Fatalf("MaxPackets 3: %d packets to the stream, %d to the files", st.Out.Packets, st.Files.Packets)
	}
	closed, _ := capturetest.CaptureFiles(t, dir)
	if len(closed) != 1 || len(tshark(t, filepath.Join(dir, closed[0]), "frame.len")) != 3 {
		t.Errorf("files %v: want one of 3 packets", closed)
	}

	// All of the file, then only as much as makes 1 byte.
	c = config("")
	c.Read, c.HTTP = in, ""
	var all bytes.Buffer
	c.Out = &Output{W: &all, PacketBuffered: true}
	svc, err = New(c)
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	total := svc.Stats().Out.Packets
	buf.Reset()
	c.Out = &Output{W: &buf, MaxBytes: 1}
	svc, err = New(c)
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := svc.Stats().Out.Packets; n != 1 || total < 2 {
		t.Errorf("MaxBytes 1: %d packets written of %d", n, total)
	}
}

// A stream whose reader went away ends the capture, and OutputErr says so.
func TestOutputWriteError(t *testing.T) {
	in := testenv.FieldCase(t, "f13_long_k8s_names.pcap")
	c := config("")
	c.Read, c.HTTP = in, ""
	c.Out = &Output{W: failWriter{}, PacketBuffered: true}
	svc, err := New(c)
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.Run(context.Background()); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if err := svc.OutputErr(); err == nil || !strings.Contains(err.Error(), "reader gone") {
		t.Fatalf("OutputErr: %v", err)
	}
	if st := svc.Stats().Out; st.Packets != 0 || st.Errors != 1 {
		t.Errorf("stats %+v, want 1 error and nothing written", st)
	}
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errors.New("reader gone") }

// Check refuses what cannot work, before anything is opened.
func TestCheck(t *testing.T) {
	ok := config("")
	ok.Read = "x.pcap"
	if err := ok.Check(); err != nil {
		t.Fatal(err)
	}
	for want, mod := range map[string]func(*Config){
		"exactly one source":    func(c *Config) { c.Listen = ":1" },
		"nothing would be kept": func(c *Config) { c.HTTP = "" },
		"snap length -1":        func(c *Config) { c.Source.SnapLen = -1 },
		"ring of 3 MiB":         func(c *Config) { c.Source.RingBlocks = 3 },
		"stale-after":           func(c *Config) { c.StaleAfter = -1 },
		"packet count -1":       func(c *Config) { c.MaxPackets = -1 },
		"output stream format":  func(c *Config) { c.Out = &Output{W: &bytes.Buffer{}, Format: pcapfile.FormatRaw} },
		"output stream without": func(c *Config) { c.Out = &Output{} },
		"output size limit -1":  func(c *Config) { c.Out = &Output{W: &bytes.Buffer{}, MaxBytes: -1} },
		"port 8099 given twice": func(c *Config) { c.Decoder.Traffic.Ports = []uint16{8099, 8099} },
	} {
		c := ok
		mod(&c)
		if err := c.Check(); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v", want, err)
		}
	}
	c := ok
	c.HTTP, c.Out = "", &Output{W: &bytes.Buffer{}}
	if err := c.Check(); err != nil {
		t.Errorf("an output stream alone: %v", err)
	}
}
