package testenv

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// MountTmpfs mounts a tmpfs of the given size (as mount -o size=, e.g.
// "256k") in a temporary directory and unmounts it at the end of the test:
// a small disk to fill, for the tests of what a full disk does. Needs root.
func MountTmpfs(t testing.TB, size string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "mnt")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", dir).CombinedOutput(); err != nil {
		t.Fatalf("mount tmpfs: %v: %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
		}
	})
	return dir
}
