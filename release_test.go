package vrsniff_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vrsniff/vrsniff/internal/testenv"
)

const testVersion = "v0.0.0-releasetest"

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// TestRelease builds the release with the Makefile, checks the binaries'
// SHA256SUMS and that they are static, and runs the amd64 one under
// chroot in a folder that holds only it and the sample: `vrsniff decap`
// with a packet filter must keep what tshark says the filter keeps. The
// arm64 one, run by qemu-aarch64, must write the same bytes.
func TestRelease(t *testing.T) {
	dist := filepath.Join(t.TempDir(), "dist")
	run(t, "make", "-C", ".", "release", "DIST="+dist, "VERSION="+testVersion)

	sums, err := os.ReadFile(filepath.Join(dist, "SHA256SUMS"))
	if err != nil {
		t.Fatal(err)
	}
	var want strings.Builder
	for _, arch := range []string{"amd64", "arm64"} {
		name := fmt.Sprintf("vrsniff-%s-linux-%s", testVersion, arch)
		bin := filepath.Join(dist, name)
		b, err := os.ReadFile(bin)
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(b)
		fmt.Fprintf(&want, "%s  %s\n", hex.EncodeToString(sum[:]), name)
		desc := run(t, "file", bin)
		machine := map[string]string{"amd64": "x86-64", "arm64": "ARM aarch64"}[arch]
		if !strings.Contains(desc, "statically linked") || !strings.Contains(desc, machine) {
			t.Errorf("file %s: %s", name, desc)
		}
		if d := run(t, "readelf", "-d", bin); !strings.Contains(d, "There is no dynamic section") {
			t.Errorf("readelf -d %s:\n%s", name, d)
		}
	}
	if string(sums) != want.String() {
		t.Errorf("SHA256SUMS:\n%s\nwant:\n%s", sums, want.String())
	}

	// A root holding the binary and the sample, nothing else.
	root := t.TempDir()
	bin, err := os.ReadFile(filepath.Join(dist, "vrsniff-"+testVersion+"-linux-amd64"))
	if err != nil {
		t.Fatal(err)
	}
	sample, err := os.ReadFile("testdata/sample.pcap")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "vrsniff"), bin, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "sample.pcap"), sample, 0o644); err != nil {
		t.Fatal(err)
	}
	chroot := func(args ...string) string {
		t.Helper()
		cmd := exec.Command("chroot", append([]string{root, "/vrsniff"}, args...)...)
		cmd.Env = []string{} // nothing from this host's environment
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Run(); err != nil {
			t.Fatalf("chroot vrsniff %s: %v\n%s", strings.Join(args, " "), err, out.String())
		}
		return out.String()
	}
	if got := chroot("version"); strings.TrimSpace(got) != "vrsniff "+testVersion {
		t.Errorf("vrsniff version: %q", got)
	}
	chroot("decap", "/sample.pcap", "/all.pcapng")
	const expr = "tcp port 22 or (vlan and ip6)"
	chroot("decap", "--bpf", expr, "/sample.pcap", "/kept.pcapng")

	// tcpdump's "tcp port 22" is for untagged frames only; after "vlan"
	// the ip6 test looks behind the tag.
	const display = "(!vlan && tcp.port == 22) || (vlan && eth.type == 0x8100 && vlan.etype == 0x86dd)"
	all := testenv.TsharkRows(t, "-r", filepath.Join(root, "all.pcapng"), "-T", "fields", "-e", "frame.number")
	wantKept := testenv.TsharkRows(t, "-r", filepath.Join(root, "all.pcapng"), "-Y", display, "-T", "fields", "-e", "frame.len", "-e", "frame.protocols")
	kept := testenv.TsharkRows(t, "-r", filepath.Join(root, "kept.pcapng"), "-T", "fields", "-e", "frame.len", "-e", "frame.protocols")
	if len(wantKept) == 0 || len(wantKept) == len(all) {
		t.Fatalf("the display filter keeps %d of %d frames: the sample does not test the filter", len(wantKept), len(all))
	}
	if fmt.Sprint(kept) != fmt.Sprint(wantKept) {
		t.Errorf("--bpf %q kept %d frames:\n%v\ntshark's %q keeps %d:\n%v", expr, len(kept), kept, display, len(wantKept), wantKept)
	}

	// The arm64 binary, under user-mode emulation, decodes the sample to
	// the same bytes.
	qemu, err := exec.LookPath("qemu-aarch64")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("qemu-aarch64 (Debian's qemu-user) is needed to run the arm64 release: %v", err)
		}
		t.Logf("arm64 release not run: %v", err)
	} else {
		arm := filepath.Join(dist, "vrsniff-"+testVersion+"-linux-arm64")
		for _, c := range [][]string{
			{"decap", filepath.Join(root, "sample.pcap"), filepath.Join(root, "all-arm64.pcapng")},
			{"decap", "--bpf", expr, filepath.Join(root, "sample.pcap"), filepath.Join(root, "kept-arm64.pcapng")},
		} {
			cmd := exec.Command(qemu, append([]string{arm}, c...)...)
			cmd.Env = []string{}
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("qemu-aarch64 vrsniff %s: %v\n%s", strings.Join(c, " "), err, out)
			}
		}
		for _, name := range []string{"all", "kept"} {
			a, errA := os.ReadFile(filepath.Join(root, name+".pcapng"))
			b, errB := os.ReadFile(filepath.Join(root, name+"-arm64.pcapng"))
			if errA != nil || errB != nil || !bytes.Equal(a, b) {
				t.Errorf("%s: the arm64 release wrote %d bytes, amd64 %d, not the same (%v %v)", name, len(b), len(a), errA, errB)
			}
		}
	}

	// The container: the Containerfile's COPY names the release binary
	// of each architecture, and its command, with its environment and
	// VRSNIFF_ variables for the file and the filter, captures what decap
	// kept into its volume.
	cf := containerfile(t)
	for _, arch := range []string{"amd64", "arm64"} {
		src := strings.NewReplacer("${VERSION}", testVersion, "${TARGETARCH}", arch).Replace(cf.copySrc)
		if _, err := os.Stat(filepath.Join(dist, strings.TrimPrefix(src, "dist/"))); err != nil || !strings.HasPrefix(src, "dist/") {
			t.Errorf("Containerfile copies %s: not a file of the release (%v)", src, err)
		}
	}
	if cf.from != "scratch" || cf.copyDst != "/vrsniff" || len(cf.entrypoint) != 1 || cf.entrypoint[0] != "/vrsniff" {
		t.Fatalf("Containerfile: FROM %s, COPY to %s, ENTRYPOINT %v", cf.from, cf.copyDst, cf.entrypoint)
	}
	vol := filepath.Join(root, cf.volume)
	if err := os.MkdirAll(vol, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("chroot", append([]string{root}, append(cf.entrypoint, cf.cmd...)...)...)
	cmd.Env = append(cf.env, "VRSNIFF_READ=/sample.pcap", "VRSNIFF_BPF="+expr)
	if out, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), `"msg":"source ended"`) {
		t.Fatalf("container command %v with %v: %v\n%s", cmd.Args, cmd.Env, err, out)
	}
	files, _ := filepath.Glob(filepath.Join(vol, "*.pcapng"))
	if len(files) != 1 {
		t.Fatalf("the capture wrote %v into %s", files, cf.volume)
	}
	captured := testenv.TsharkRows(t, "-r", files[0], "-T", "fields", "-e", "frame.len", "-e", "frame.protocols")
	if fmt.Sprint(captured) != fmt.Sprint(wantKept) {
		t.Errorf("the container's capture kept %d frames, want decap's %d:\n%v", len(captured), len(wantKept), captured)
	}
}

// image is what the tests read of the Containerfile.
type image struct {
	from, copySrc, copyDst, volume string
	env, entrypoint, cmd           []string
}

func containerfile(t *testing.T) image {
	b, err := os.ReadFile("Containerfile")
	if err != nil {
		t.Fatal(err)
	}
	var img image
	text := strings.ReplaceAll(string(b), "\\\n", " ")
	for _, line := range strings.Split(text, "\n") {
		f := strings.Fields(line)
		if len(f) < 2 || strings.HasPrefix(f[0], "#") {
			continue
		}
		list := func() []string {
			var v []string
			if err := json.Unmarshal([]byte(strings.TrimSpace(strings.TrimPrefix(line, f[0]))), &v); err != nil {
				t.Fatalf("Containerfile %s: %v", f[0], err)
			}
			return v
		}
		switch f[0] {
		case "FROM":
			img.from = f[1]
		case "COPY":
			img.copySrc, img.copyDst = f[1], f[2]
		case "ENV":
			img.env = append(img.env, f[1:]...)
		case "VOLUME":
			img.volume = f[1]
		case "ENTRYPOINT":
			img.entrypoint = list()
		case "CMD":
			img.cmd = list()
		}
	}
	return img
}

// TestVersion: the release's VERSION is git describe's.
func TestReleaseVersion(t *testing.T) {
	want := strings.TrimSpace(run(t, "git", "describe", "--tags", "--always", "--dirty"))
	if got := strings.TrimSpace(run(t, "make", "-s", "-C", ".", "version")); got != want {
		t.Errorf("make version: %q, git describe: %q", got, want)
	}
}
