package ring

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vrsniff/vrsniff/internal/mirror"
	"github.com/vrsniff/vrsniff/internal/pcapfile"
	"github.com/vrsniff/vrsniff/internal/testenv"
)

const crashEnv = "VRSNIFF_RING_CRASH_DIR"

// crashChild writes packets until it is killed; after the first 300 it
// says so on stdout.
func crashChild(dir string) {
	// One file, so that the kill always finds it open.
	r, err := New(dir, Options{FlushEvery: 10 * time.Millisecond})
	if err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	for i := 0; ; i++ {
		if err := r.WritePacket(testPacket(i, 2, 100)); err != nil {
			fmt.Println("error", err)
			os.Exit(1)
		}
		if i == 299 {
			fmt.Println("wrote 300")
		}
		time.Sleep(50 * time.Microsecond)
	}
}

// partPackets counts the complete packets in dir's .part files.
func partPackets(dir string) int {
	names, _ := filepath.Glob(filepath.Join(dir, "*.part"))
	n := 0
	for _, name := range names {
		f, err := os.Open(name)
		if err != nil {
			continue
		}
		if r, err := pcapfile.NewReader(f); err == nil {
			var p mirror.Packet
			for r.Next(&p) == nil {
				n++
			}
		}
		f.Close()
	}
	return n
}

func TestCrashRecovery(t *testing.T) {
	if dir := os.Getenv(crashEnv); dir != "" {
		crashChild(dir)
		return
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashRecovery$")
	cmd.Env = append(os.Environ(), crashEnv+"="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if line != "wrote 300\n" {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("child: %q %v", line, err)
	}
	// Kill once the first 300 have reached the file, however slowly the
	// flusher runs on a loaded machine.
	deadline := time.Now().Add(20 * time.Second)
	for partPackets(dir) < 300 {
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("the .part file never held 300 packets: %v", dirFiles(t, dir))
		}
		time.Sleep(20 * time.Millisecond)
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()

	var want []string
	for i := range 100000 {
		want = append(want, wantLine(testPacket(i, 2, 100)))
	}
	var parts, closed []string
	for _, n := range dirFiles(t, dir) {
		switch {
		case strings.HasSuffix(n, ".part"):
			parts = append(parts, n)
		case strings.HasSuffix(n, ".pcapng"):
			closed = append(closed, n)
		}
	}
	if len(parts) != 1 || len(closed) != 0 {
		t.Fatalf("after the kill: %v", dirFiles(t, dir))
	}
	part := filepath.Join(dir, parts[0])
	var got []string
	for _, n := range closed {
		got = append(got, tsharkLines(t, filepath.Join(dir, n))...)
	}
	partLines := tsharkLines(t, part)
	got = append(got, partLines...)
	if len(got) < 300 || !slices.Equal(got, want[:len(got)]) {
		t.Fatalf("after the kill the files hold %d packets, not the first ones written", len(got))
	}

	// A kill during a write leaves half a block: simulate it.
	st, _ := os.Stat(part)
	if err := os.Truncate(part, st.Size()-10); err != nil {
		t.Fatal(err)
	}
	if lines := (testenv.Tshark{CutShort: true}).Lines(t, "-n", "-r", part, "-T", "fields", "-e", "udp.srcport", "-e", "frame.comment"); !slices.Equal(lines, partLines[:len(partLines)-1]) {
		t.Errorf("tshark reads %d packets of the cut file, want %d", len(lines), len(partLines)-1)
	}

	r := newTestRing(t, dir, Options{})
	infos, all := checkStore(t, r, dir)
	if len(all) != len(got)-1 || !slices.Equal(all, want[:len(all)]) {
		t.Fatalf("recovered store holds %d packets, want the first %d", len(all), len(got)-1)
	}
	recovered := strings.TrimSuffix(parts[0], ".part")
	if last := infos[len(infos)-1]; last.Name != recovered || last.Packets != uint64(len(partLines)-1) {
		t.Errorf("recovered file listed as %+v", last)
	}
	if err := r.WritePacket(testPacket(0, 1, 10)); err != nil {
		t.Fatal(err)
	}
	infos, _ = r.List()
	seq := func(name string) string { return strings.Split(name, "_")[1] }
	if n := infos[len(infos)-1].Name; seq(n) <= seq(recovered) || !strings.HasSuffix(n, ".part") {
		t.Errorf("new file %s after recovered %s", n, recovered)
	}
}
