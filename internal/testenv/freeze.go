package testenv

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// Freezable is a small ext4 file system on a loop device that a test can
// freeze (fsfreeze): every write to it then blocks, in the kernel and
// beyond the reach of signals, until it is thawed. It stands for a disk
// that stopped answering.
type Freezable struct {
	Dir    string // the mount point
	t      testing.TB
	frozen bool
}

// NewFreezable makes and mounts the file system, and thaws, unmounts and
// removes it at the end of the test. Needs root, mkfs.ext4 and a free
// loop device.
func NewFreezable(t testing.TB) *Freezable {
	t.Helper()
	tmp := t.TempDir()
	img, dir := filepath.Join(tmp, "fs.img"), filepath.Join(tmp, "mnt")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	run := func(name string, args ...string) {
		t.Helper()
		if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
			t.Fatalf("%s %v: %v: %s", name, args, err, out)
		}
	}
	run("truncate", "-s", "32M", img)
	run("mkfs.ext4", "-q", "-F", img)
	run("mount", "-o", "loop", img, dir)
	f := &Freezable{Dir: dir, t: t}
	t.Cleanup(func() {
		f.Thaw()
		runQuiet("umount", dir)
	})
	return f
}

// Freeze blocks every later write to Dir.
func (f *Freezable) Freeze() {
	f.t.Helper()
	if out, err := exec.Command("fsfreeze", "-f", f.Dir).CombinedOutput(); err != nil {
		f.t.Fatalf("fsfreeze -f: %v: %s", err, out)
	}
	f.frozen = true
}

// Thaw lets the blocked writes go on; it does nothing unless frozen.
func (f *Freezable) Thaw() {
	if f.frozen {
		runQuiet("fsfreeze", "-u", f.Dir)
		f.frozen = false
	}
}
