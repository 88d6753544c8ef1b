package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vrsniff/vrsniff/internal/objstore"
	"github.com/vrsniff/vrsniff/internal/testenv"
)

// openStore opens prefix of e's bucket as the capture would.
func openStore(t *testing.T, e testenv.S3Endpoint, prefix string) *objstore.Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	st, err := objstore.Open(ctx, objstore.Config{URL: "s3://" + e.Bucket + "/" + prefix, Endpoint: e.URL,
		Region: e.Region, AccessKey: e.AccessKey, SecretKey: e.SecretKey})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// storedManifests reads every manifest of the store and checks that each
// names objects that are there, whole: the capture file of its size and
// SHA-256, the index of its size. A manifest naming anything else (a file
// visible without its data) fails the test.
func storedManifests(t *testing.T, st *objstore.Store) []objstore.Manifest {
	t.Helper()
	ms, problems := readManifests(t, st)
	for _, p := range problems {
		t.Error(p)
	}
	return ms
}

// readManifests reads every manifest of the store, and says what is wrong
// with the objects each names.
func readManifests(t *testing.T, st *objstore.Store) (ms []objstore.Manifest, problems []string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for o, err := range st.List(ctx, "v1/dt=") {
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasSuffix(o.Key, objstore.SuffixManifest) {
			continue
		}
		b, err := st.Get(ctx, o.Key, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		var m objstore.Manifest
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatalf("manifest %s: %v", o.Key, err)
		}
		pcap, err := st.Get(ctx, m.Pcap, m.PcapSize+1)
		if err != nil {
			problems = append(problems, fmt.Sprintf("manifest %s names %s: %v", o.Key, m.Pcap, err))
			continue
		}
		if sum := sha256.Sum256(pcap); int64(len(pcap)) != m.PcapSize || hex.EncodeToString(sum[:]) != m.PcapSHA256 {
			problems = append(problems, fmt.Sprintf("manifest %s: %s holds %d bytes of SHA-256 %x, the manifest says %d bytes of %s",
				o.Key, m.Pcap, len(pcap), sum, m.PcapSize, m.PcapSHA256))
		}
		if m.Index != "" {
			if ix, err := st.Stat(ctx, m.Index); err != nil || ix.Size != m.IndexSize {
				problems = append(problems, fmt.Sprintf("manifest %s: index %s is %+v (%v), the manifest says %d bytes", o.Key, m.Index, ix, err, m.IndexSize))
			}
		}
		ms = append(ms, m)
	}
	return ms, problems
}

func manifestPackets(ms []objstore.Manifest) uint64 {
	var n uint64
	for _, m := range ms {
		n += m.Packets
	}
	return n
}

// spooled lists the capture files (closed and .part) left in dir.
func spooled(t *testing.T, dir string) []string {
	t.Helper()
	fs, err := filepath.Glob(filepath.Join(dir, "*.pcapng*"))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, f := range fs {
		if !strings.HasSuffix(f, ".json") && !strings.HasSuffix(f, ".parquet") {
			out = append(out, filepath.Base(f))
		}
	}
	return out
}

// kill -9 while a capture file is being uploaded in parts: no manifest
// ever names a missing or partial object, and the next start on the same
// spool uploads what was left, aborts the unfinished multipart upload and
// empties the spool, every packet stored once.
func TestUploadKilled(t *testing.T) {
	e := testenv.S3(t)
	t.Setenv("AWS_ACCESS_KEY_ID", e.AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", e.SecretKey)
	const prefix = "killed"
	store := "s3://" + e.Bucket + "/" + prefix
	st := openStore(t, e, prefix)
	// The uploads go through a proxy slow enough that a file of several
	// parts (objstore.DefaultPartSize) takes seconds.
	slow := testenv.NewThrottle(t, strings.TrimPrefix(e.URL, "http://"), 10<<20)

	tmp := t.TempDir()
	in := filepath.Join(tmp, "in.pcap")
	mustRun(t, "gen", "--count", "30000", "--mix", "acl=3,port=1,fragmented=1", "--frame-sizes", "1514", in)
	all := filepath.Join(tmp, "all.pcapng")
	mustRun(t, "decap", in, all)
	want := uint64(len(readAll(t, all)))

	dir := t.TempDir()
	cmd := exec.Command(vrsniffBin, "capture", "-r", in, "--dir", dir, "--rotate-size", "18M",
		"--store", store, "--s3-endpoint", "http://"+slow.Addr, "--sniffer-id", "killed-1",
		"--upload-parallel", "1", "--stats-every", "0")
	stderr := &testenv.SyncBuffer{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() { cmd.Process.Kill() })
	// Kill it once a file is stored and the next one is in parts on its
	// way.
	testenv.WaitFor(t, "a stored file and a multipart upload under way", func() bool {
		select {
		case err := <-done:
			t.Fatalf("capture ended (%v) before a multipart upload was seen:\n%s", err, stderr)
		default:
		}
		ms, _ := readManifests(t, st)
		return len(e.IncompleteUploads(t, prefix+"/")) > 0 && len(ms) > 0
	})
	cmd.Process.Signal(syscall.SIGKILL)
	<-done

	before := storedManifests(t, st)
	left := spooled(t, dir)
	if len(left) == 0 {
		t.Fatal("the spool is empty after the kill: nothing was left to upload")
	}
	if len(e.IncompleteUploads(t, prefix+"/")) == 0 {
		t.Error("no incomplete multipart upload after the kill")
	}
	t.Logf("killed with %d files stored, %d in the spool (%d bytes through the proxy)", len(before), len(left), slow.Sent())

	// The next start on the spool, with nothing new to capture.
	empty := filepath.Join(tmp, "empty.pcap")
	mustRun(t, "gen", "--count", "0", empty)
	stderr2 := mustRun(t, "capture", "-r", empty, "--dir", dir, "--store", store, "--s3-endpoint", e.URL,
		"--sniffer-id", "killed-1", "--stats-every", "0")
	if left := spooled(t, dir); len(left) != 0 {
		t.Errorf("left in the spool after the restart: %v\n%s", left, stderr2)
	}
	after := storedManifests(t, st)
	if got := manifestPackets(after); got != want {
		t.Errorf("%d manifests hold %d packets, the capture decoded %d", len(after), got, want)
	}
	seqs := map[uint64]bool{}
	for _, m := range after {
		if seqs[m.Seq] {
			t.Errorf("file %d stored twice", m.Seq)
		}
		seqs[m.Seq] = true
	}
	if up := e.IncompleteUploads(t, prefix+"/"); len(up) != 0 {
		t.Errorf("incomplete multipart uploads left after the restart: %v", up)
	}
}
