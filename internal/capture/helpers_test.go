package capture

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vrsniff/vrsniff/internal/capture/capturetest"
	"github.com/vrsniff/vrsniff/internal/gen"
	"github.com/vrsniff/vrsniff/internal/mirror"
	"github.com/vrsniff/vrsniff/internal/pcapfile"
	"github.com/vrsniff/vrsniff/internal/ring"
	"github.com/vrsniff/vrsniff/internal/server"
	"github.com/vrsniff/vrsniff/internal/source"
	"github.com/vrsniff/vrsniff/internal/testenv"
)

// config is the configuration `vrsniff capture` runs with by default,
// but with one worker (workers_test.go runs several), writing into dir
// ("" for no files) and serving the API on a free loopback port.
func config(dir string) Config {
	return Config{
		Workers: 1,
		Source:  source.Options{Promisc: true, RingBlockSize: 1 << 20, RingBlocks: 4},
		Decoder: mirror.Config{PassThrough: true},
		Dir:     dir,
		Files:   ring.Options{MaxSize: 100 << 20, AlignClock: true},
		HTTP:    "127.0.0.1:0",
	}
}

// running is a Service whose Run goes on in the background.
type running struct {
	t     *testing.T
	svc   *Service
	log   *testenv.SyncBuffer
	warns atomic.Int64 // warnings logged
	stop  context.CancelFunc
	done  chan struct{}
	err   error // of Run, once done is closed
	base  string
	token string
}

// warnCounter counts the warnings logged through it.
type warnCounter struct {
	slog.Handler
	n *atomic.Int64
}

func (h warnCounter) Handle(ctx context.Context, r slog.Record) error {
	if r.Level == slog.LevelWarn {
		h.n.Add(1)
	}
	return h.Handler.Handle(ctx, r)
}

func (h warnCounter) WithAttrs(as []slog.Attr) slog.Handler {
	return warnCounter{h.Handler.WithAttrs(as), h.n}
}

func (h warnCounter) WithGroup(name string) slog.Handler {
	return warnCounter{h.Handler.WithGroup(name), h.n}
}

// start creates the service of c and runs it until the test ends (or
// finish). With HTTP it waits until the API answers.
func start(t *testing.T, c Config) *running {
	t.Helper()
	r := &running{t: t, log: &testenv.SyncBuffer{}, done: make(chan struct{}), token: c.Server.Token}
	c.Logger = slog.New(warnCounter{slog.NewTextHandler(r.log, nil), &r.warns})
	svc, err := New(c)
	if err != nil {
		t.Fatal(err)
	}
	r.svc = svc
	ctx, stop := context.WithCancel(context.Background())
	r.stop = stop
	go func() { r.err = svc.Run(ctx); close(r.done) }()
	t.Cleanup(func() {
		stop()
		<-r.done
		if t.Failed() {
			t.Logf("capture log:\n%s", r.log)
		}
	})
	if a := svc.Addr(); a != nil {
		r.base = "http://" + a.String()
		r.waitFor("the API", func() bool {
			resp, err := http.Get(r.base + "/healthz")
			if err != nil {
				return false
			}
			resp.Body.Close()
			return resp.StatusCode == http.StatusOK
		})
	}
	return r
}

// waitFor polls cond for up to 30 s; it fails the test if Run ends or the
// time runs out.
func (r *running) waitFor(what string, cond func() bool) {
	r.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		select {
		case <-r.done:
			r.t.Fatalf("waiting for %s: Run ended (%v)", what, r.err)
		default:
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("timed out waiting for %s; counters %+v", what, r.svc.Stats())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// finish ends the capture as SIGTERM does and returns Run's error.
func (r *running) finish() error {
	r.t.Helper()
	r.stop()
	select {
	case <-r.done:
	case <-time.After(30 * time.Second):
		r.t.Fatal("Run did not end")
	}
	return r.err
}

// waitWritten waits until n packets are on disk in the capture files.
func (r *running) waitWritten(n uint64) {
	r.t.Helper()
	r.waitFor(fmt.Sprintf("%d packets written", n), func() bool { return r.svc.Stats().Files.Packets >= n })
}

func (r *running) request(method, path string, hdr map[string]string) (*http.Response, []byte) {
	r.t.Helper()
	return testenv.Request(r.t, r.base, r.token, method, path, hdr)
}

// list is GET /api/captures.
func (r *running) list() []server.CaptureEntry {
	r.t.Helper()
	resp, body := r.request("GET", "/api/captures", nil)
	if resp.StatusCode != http.StatusOK {
		r.t.Fatalf("list: %s", resp.Status)
	}
	var l []server.CaptureEntry
	if err := json.Unmarshal(body, &l); err != nil {
		r.t.Fatalf("list: %v: %s", err, body)
	}
	return l
}

// tshark returns the rows of `tshark -T fields` for the given fields.
func tshark(t *testing.T, file string, fields ...string) [][]string {
	t.Helper()
	args := []string{"-n", "-r", file, "-T", "fields", "-E", "separator=\t"}
	for _, f := range fields {
		args = append(args, "-e", f)
	}
	return testenv.TsharkRows(t, args...)
}

// checkFiles checks that the closed files of dir hold exactly the inner
// frames of cs, in order, each with its metadata comment, that tshark reads
// every file completely and that every file has its sidecar.
func checkFiles(t *testing.T, dir string, cs []*gen.Case) {
	t.Helper()
	closed, parts := capturetest.CaptureFiles(t, dir)
	if len(parts) != 0 || len(closed) < 2 {
		t.Fatalf("want several closed files and no .part: %v %v", closed, parts)
	}
	var got [][]string
	i := 0
	for _, n := range closed {
		name := filepath.Join(dir, n)
		ps, err := pcapfile.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range ps {
			if i >= len(cs) {
				t.Fatalf("%s: more packets than were sent", n)
			}
			if !bytes.Equal(p.Data, cs[i].Frame) {
				t.Fatalf("%s: packet %d is not inner frame %d", n, len(got), i)
			}
			i++
		}
		got = append(got, tshark(t, name, "frame.comment")...)
		if _, err := os.Stat(name + ".json"); err != nil {
			t.Errorf("sidecar: %v", err)
		}
	}
	if i != len(cs) || len(got) != len(cs) {
		t.Fatalf("files hold %d packets (tshark reads %d), %d were sent", i, len(got), len(cs))
	}
	for i, c := range cs {
		if want := capturetest.Comment(c); got[i][0] != want {
			t.Fatalf("packet %d: tshark reads comment %q, want %q", i, got[i][0], want)
		}
	}
}
