package testenv

import (
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Ceph is a single-node Ceph of the test's own (scripts/ceph-rgw.sh), whose
// RGW the test can stop and start again: an object store that goes down.
type Ceph struct {
	S3Endpoint        // its RGW, with a bucket of the test's
	Dir        string // the cluster's directory: ceph.conf, run/, log/
}

// cephStart bounds the wait for RGW to answer again after StartRGW.
const cephStart = time.Minute

// NewCeph starts a Ceph cluster on free loopback ports in a temporary
// directory (about 12 s), with a new bucket, and stops it when the test
// ends. Without Ceph's binaries the test fails under CI=true (.ci/run
// installs them) and is skipped elsewhere.
func NewCeph(t testing.TB) *Ceph {
	t.Helper()
	for _, bin := range []string{"ceph-mon", "ceph-osd", "radosgw", "radosgw-admin", "ceph-authtool", "monmaptool", "ceph", "curl"} {
		if _, err := exec.LookPath(bin); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("Ceph: %s is missing (.ci/run installs ceph-mon ceph-osd radosgw ceph-common curl)", bin)
			}
			t.Skipf("Ceph: %s is missing; install ceph-mon ceph-osd radosgw ceph-common curl", bin)
		}
	}
	out, err := exec.Command("git", "rev-parse", "--show-toplevel").Output()
	if err != nil {
		t.Fatalf("finding the repository root: %v", err)
	}
	script := filepath.Join(strings.TrimSpace(string(out)), "scripts", "ceph-rgw.sh")
	// A cluster's start fails now and then on a busy machine (a command
	// refused by a monitor still settling): start another.
	var c *Ceph
	var rgw string
	for try := 1; ; try++ {
		var out []byte
		var err error
		c, rgw, out, err = startCeph(t, script)
		if err == nil {
			break
		}
		if try == cephTries {
			t.Fatalf("%s: %v\n%s", script, err, out)
		}
		t.Logf("%s: %v (trying again)\n%s", script, err, out)
	}
	c.S3Endpoint = S3Endpoint{URL: "http://" + rgw, AccessKey: "vrsniff", SecretKey: "vrsniffsecret", Region: "us-east-1"}
	// The cluster goes with its buckets.
	c.Bucket = newBucket(t, c.S3Endpoint, false)
	return c
}

// cephTries bounds the starts NewCeph tries.
const cephTries = 3

// startCeph runs script in a new temporary directory on free ports, and
// stops the cluster and removes the directory when the test ends.
func startCeph(t testing.TB, script string) (c *Ceph, rgw string, out []byte, err error) {
	t.Helper()
	// Short: the daemons' admin sockets live under it, and a socket's
	// path is at most 107 bytes.
	top, err := os.MkdirTemp("", "vrsniff-ceph")
	if err != nil {
		t.Fatal(err)
	}
	c = &Ceph{Dir: filepath.Join(top, "c")}
	rgw = FreeAddr(t, "tcp")
	mon := FreeAddr(t, "tcp")
	_, rgwPort, _ := net.SplitHostPort(rgw)
	_, monPort, _ := net.SplitHostPort(mon)
	t.Cleanup(func() {
		exec.Command(script, "stop", c.Dir).Run()
		// The daemons remove their pid files as they end.
		deadline := time.Now().Add(5 * time.Second)
		for time.Now().Before(deadline) {
			if ps, _ := filepath.Glob(filepath.Join(c.Dir, "run", "*.pid")); len(ps) == 0 {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		os.RemoveAll(top)
	})
	out, err = exec.Command(script, c.Dir, rgwPort, monPort).CombinedOutput()
	return c, rgw, out, err
}

// host is the RGW's "127.0.0.1:port".
func (c *Ceph) host() string { return strings.TrimPrefix(c.URL, "http://") }

// StopRGW kills the cluster's RGW and waits until its port refuses
// connections: the store is down, its data kept by the cluster.
func (c *Ceph) StopRGW(t testing.TB) {
	t.Helper()
	pidFile := filepath.Join(c.Dir, "run", "client.rgw.a.pid")
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatalf("RGW's pid: %v", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatalf("RGW's pid in %s: %v", pidFile, err)
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatalf("kill RGW (pid %d): %v", pid, err)
	}
	os.Remove(pidFile)
	WaitFor(t, "RGW to refuse connections", func() bool {
		conn, err := net.DialTimeout("tcp", c.host(), time.Second)
		if err != nil {
			return true
		}
		conn.Close()
		return false
	})
}

// StartRGW starts the cluster's RGW again and waits until it answers.
func (c *Ceph) StartRGW(t testing.TB) {
	t.Helper()
	if out, err := exec.Command("radosgw", "-c", filepath.Join(c.Dir, "ceph.conf"), "-n", "client.rgw.a").CombinedOutput(); err != nil {
		t.Fatalf("start radosgw: %v\n%s", err, out)
	}
	deadline := time.Now().Add(cephStart)
	for {
		resp, err := http.Get(c.URL + "/")
		if err == nil {
			resp.Body.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("RGW did not answer within %v of its start: %v (logs in %s)", cephStart, err, filepath.Join(c.Dir, "log"))
		}
		time.Sleep(100 * time.Millisecond)
	}
}
