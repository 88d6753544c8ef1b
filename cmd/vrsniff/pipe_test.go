package main

import (
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/vrsniff/vrsniff/internal/mirror"
	"github.com/vrsniff/vrsniff/internal/pcapfile"
)

// `vrsniff decap - - | wireshark -k -i -` works live: with a pipe on both
// ends, the first packet comes out while the input is still open.
func TestDecapLivePipe(t *testing.T) {
	in, err := os.ReadFile(filepath.Join("..", "..", "testdata", "lab.pcap"))
	if err != nil {
		t.Fatal(err)
	}
	// The pcap header and the first record (classic pcap, little endian).
	first := 24 + 16 + int(binary.LittleEndian.Uint32(in[24+8:]))
	cmd := exec.Command(vrsniffBin, "decap", "--quiet", "-", "-")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	if _, err := stdin.Write(in[:first]); err != nil {
		t.Fatal(err)
	}
	got := make(chan error, 1)
	go func() {
		r, err := pcapfile.NewReader(stdout)
		if err == nil {
			var p mirror.Packet
			err = r.Next(&p)
		}
		got <- err
	}()
	select {
	case err := <-got:
		if err != nil {
			t.Fatalf("reading the first packet from the pipe: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no packet came out of decap - - while its input stayed open")
	}
	stdin.Close()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("decap - -: %v", err)
	}
}
