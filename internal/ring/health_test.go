package ring

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vrsniff/vrsniff/internal/testenv"
)

// deletedFDs lists the descriptors of this process open on removed files
// under dir: data written there is lost.
func deletedFDs(t testing.TB, dir string) []string {
	t.Helper()
	es, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range es {
		l, err := os.Readlink(filepath.Join("/proc/self/fd", e.Name()))
		if err == nil && strings.HasPrefix(l, dir) && strings.HasSuffix(l, " (deleted)") {
			out = append(out, l)
		}
	}
	return out
}

// With the directory removed the store used to go on writing into unlinked
// files and say they were written. Now the flush loop finds the removal,
// counts what was lost, creates the directory again and goes on there.
func TestDirRemoved(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "captures")
	logs := &testenv.SyncBuffer{}
	// No flush loop: the test runs its checks itself.
	r := newTestRing(t, dir, Options{MaxSize: 3000, FlushEvery: time.Hour, Logger: debugLogger(logs)})
	writeN(t, r, 35, 2, 100, nil)
	r.tick() // on disk
	infos, _ := r.List()
	open := infos[len(infos)-1]
	if !open.Open || open.Packets == 0 {
		t.Fatalf("%+v", open)
	}
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	// Until the next check, packets go into the unlinked file.
	writeN(t, r, 3, 2, 100, nil)
	if len(deletedFDs(t, dir)) != 1 {
		t.Fatalf("descriptors on removed files: %q", deletedFDs(t, dir))
	}
	r.tick()
	if fds := deletedFDs(t, dir); len(fds) != 0 {
		t.Fatalf("still open on removed files: %q", fds)
	}
	if _, err := os.Stat(dir); err != nil {
		t.Fatalf("directory not created again: %v", err)
	}
	st := r.Stats()
	if st.DirRecreated != 1 || st.Lost != open.Packets || st.Dropped != 3 || st.Files != 0 || r.Healthy() != nil || st.Problem != "" {
		t.Fatalf("after the removal: %+v (open file had %d packets)", st, open.Packets)
	}
	if !strings.Contains(logs.String(), "capture directory removed or replaced") || !strings.Contains(logs.String(), "created again") {
		t.Fatalf("log:\n%s", logs)
	}
	want := writeN(t, r, 30, 2, 100, nil)
	r.tick()
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if _, got := checkStore(t, r, dir); len(got) != len(want) || got[0] != want[0] {
		t.Fatalf("new directory holds %d packets, %d written since", len(got), len(want))
	}
	if n := strings.Count(logs.String(), "capture directory removed"); n != 1 {
		t.Errorf("removal logged %d times", n)
	}
}

// A rotation checks the directory before it creates a file: a removed
// directory is found even without the flush loop.
func TestDirRemovedAtRotation(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "captures")
	r := newTestRing(t, dir, Options{MaxSize: 500, FlushEvery: time.Hour})
	writeN(t, r, 5, 1, 400, nil) // a file per packet
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	want := writeN(t, r, 5, 1, 400, nil)
	st := r.Stats()
	if st.DirRecreated != 1 || st.Files != 5 || st.Dropped != 0 || st.Lost != 0 {
		t.Fatalf("%+v", st)
	}
	r.Close()
	if _, got := checkStore(t, r, dir); len(got) != 5 || got[4] != want[4] {
		t.Fatalf("%q", got)
	}
}

// A directory that cannot be created again (its path taken by a file)
// stops writing: Healthy says why, packets are counted as dropped, the
// condition is logged once; once the path is free the store goes on.
func TestDirCannotBeCreated(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "captures")
	logs := &testenv.SyncBuffer{}
	clk := &fakeClock{t: t0}
	r := newTestRing(t, dir, Options{FlushEvery: time.Hour, Logger: debugLogger(logs), Now: clk.Now})
	writeN(t, r, 10, 1, 100, nil)
	os.RemoveAll(dir)
	if err := os.WriteFile(dir, []byte("in the way"), 0o644); err != nil {
		t.Fatal(err)
	}
	r.tick()
	err := r.Healthy()
	if !errors.Is(err, ErrDirMissing) || !strings.Contains(err.Error(), dir) {
		t.Fatalf("Healthy: %v", err)
	}
	for range 3 {
		writeN(t, r, 10, 1, 100, nil)
		clk.Set(clk.Now().Add(2 * time.Second)) // each round retries once
		r.tick()
	}
	st := r.Stats()
	if st.Dropped != 40 || st.Packets != 0 || !strings.Contains(st.Problem, "cannot be created") {
		t.Fatalf("%+v", st)
	}
	if n := strings.Count(logs.String(), "msg=\"capture directory missing and cannot be created"); n != 1 {
		t.Fatalf("logged %d times:\n%s", n, logs)
	}

	os.Remove(dir)
	r.tick()
	if err := r.Healthy(); err != nil {
		t.Fatalf("Healthy after the path is free: %v", err)
	}
	want := writeN(t, r, 10, 1, 100, nil)
	r.Close()
	if _, got := checkStore(t, r, dir); len(got) != len(want) {
		t.Fatalf("%d packets on disk, %d written", len(got), len(want))
	}
	if n := strings.Count(logs.String(), "resumed writing"); n != 1 {
		t.Fatalf("resume logged %d times:\n%s", n, logs)
	}
	if !errors.Is(r.Healthy(), ErrClosed) {
		t.Errorf("Healthy after Close: %v", r.Healthy())
	}
}

// A file system that turns read-only: files cannot be created, packets are
// dropped and counted, Healthy says so, and writing resumes once it is
// writable again.
func TestReadOnly(t *testing.T) {
	dir := testenv.MountTmpfs(t, "1m")
	remount := func(mode string) {
		t.Helper()
		if out, err := exec.Command("mount", "-o", "remount,"+mode, dir).CombinedOutput(); err != nil {
			t.Fatalf("remount %s: %v: %s", mode, err, out)
		}
	}
	logs := &testenv.SyncBuffer{}
	clk := &fakeClock{t: t0}
	r := newTestRing(t, dir, Options{FlushEvery: time.Hour, Logger: debugLogger(logs), Now: clk.Now})
	want := writeN(t, r, 10, 1, 100, nil)
	if err := r.Rotate(); err != nil {
		t.Fatal(err)
	}
	remount("ro")
	writeN(t, r, 10, 1, 100, nil)
	err := r.Healthy()
	if !errors.Is(err, ErrWrite) || !strings.Contains(err.Error(), "read-only") {
		t.Fatalf("Healthy: %v", err)
	}
	st := r.Stats()
	if st.Dropped != 10 || st.Packets != 10 || st.WriteErrors == 0 || st.DiskFull {
		t.Fatalf("%+v", st)
	}
	remount("rw")
	clk.Set(t0.Add(2 * time.Second))
	want = append(want, writeN(t, r, 10, 1, 100, nil)...)
	if err := r.Healthy(); err != nil {
		t.Fatalf("Healthy after remount: %v", err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if st := r.Stats(); st.Packets != 20 || st.Dropped != 10 {
		t.Fatalf("%+v", st)
	}
	if _, got := checkStore(t, r, dir); len(got) != 20 || got[19] != want[19] {
		t.Fatalf("%d packets on disk", len(got))
	}
	if strings.Count(logs.String(), "cannot be written") != 1 || strings.Count(logs.String(), "resumed writing") != 1 {
		t.Fatalf("log:\n%s", logs)
	}
}

// An open file removed by someone else is given up at the next check: its
// packets count as lost, and the next packets go to a new file.
func TestOpenFileRemoved(t *testing.T) {
	dir := t.TempDir()
	logs := &testenv.SyncBuffer{}
	r := newTestRing(t, dir, Options{FlushEvery: time.Hour, Logger: debugLogger(logs)})
	writeN(t, r, 10, 1, 100, nil)
	r.tick()
	infos, _ := r.List()
	if err := os.Remove(filepath.Join(dir, infos[0].Name)); err != nil {
		t.Fatal(err)
	}
	r.tick()
	if fds := deletedFDs(t, dir); len(fds) != 0 {
		t.Fatalf("still open on removed files: %q", fds)
	}
	if st := r.Stats(); st.Lost != 10 || st.Files != 0 || st.DirRecreated != 0 {
		t.Fatalf("%+v", st)
	}
	want := writeN(t, r, 5, 1, 100, nil)
	r.Close()
	if _, got := checkStore(t, r, dir); len(got) != 5 || got[0] != want[0] {
		t.Fatalf("%q", got)
	}
	if n := strings.Count(logs.String(), "removed while it was written"); n != 1 {
		t.Fatalf("logged %d times:\n%s", n, logs)
	}
}
