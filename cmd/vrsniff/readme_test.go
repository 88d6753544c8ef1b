package main

import (
	"encoding/hex"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/vrsniff/vrsniff/internal/gen"
	"github.com/vrsniff/vrsniff/internal/testenv"
)

// readmeFirstCommand returns the arguments of the decap and the tshark of
// the README's first command (its first line of shell):
// "... && go run ./cmd/vrsniff decap ARGS && tshark ARGS".
func readmeFirstCommand(t *testing.T) (decap, tsharkArgs []string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, after, ok := strings.Cut(string(b), "```sh\n")
	if !ok {
		t.Fatal("README.md: no sh block")
	}
	line, _, _ := strings.Cut(after, "\n")
	for _, part := range strings.Split(line, " && ") {
		f := strings.Fields(part)
		switch {
		case len(f) > 2 && f[0] == "go" && f[1] == "run" && f[2] == "./cmd/vrsniff":
			decap = f[3:]
		case len(f) > 0 && f[0] == "tshark":
			tsharkArgs = f[1:]
		}
	}
	if len(decap) == 0 || decap[0] != "decap" || len(tsharkArgs) == 0 {
		t.Fatalf("README.md's first command is not decap then tshark: %q", line)
	}
	return decap, tsharkArgs
}

// TestReadmeFirstCommand runs the README's first command (from a folder of
// its own, with the repository's testdata) and checks what an operator
// sees: the conversation of the lab scenario, its VNs, directions and
// both kinds of mirror.
func TestReadmeFirstCommand(t *testing.T) {
	decap, targs := readmeFirstCommand(t)
	dir := t.TempDir()
	td, err := filepath.Abs(filepath.Join("..", "..", "testdata"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(td, filepath.Join(dir, "testdata")); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(vrsniffBin, decap...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("vrsniff %s: %v\n%s", strings.Join(decap, " "), err, out)
	}
	for _, want := range []string{"16 packets read", "1 outer fragments merged", "15 decoded (15 juniper)",
		"default-domain:demo:vn-web -> default-domain:demo:vn-db"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("summary lacks %q:\n%s", want, out)
		}
	}
	// tshark reads the file decap wrote, named as the README names it.
	i := slices.Index(targs, "-r")
	if i < 0 || i+1 == len(targs) {
		t.Fatalf("tshark %q reads no file", targs)
	}
	targs = slices.Clone(targs)
	targs[i+1] = filepath.Join(dir, targs[i+1])
	rows := testenv.TsharkRows(t, targs...)
	want := []string{"frame.time_relative", "ip.src", "ip.dst", "_ws.col.Protocol", "_ws.col.Info", "frame.comment"}
	if len(rows) == 0 || !slices.Equal(rows[0], want) {
		t.Fatalf("tshark's header %q, want %q", rows[:min(len(rows), 1)], want)
	}
	rows = rows[1:]
	col := func(r []string, name string) string { return r[slices.Index(want, name)] }

	var times []float64
	protos := map[string]int{}
	var infos, comments []string
	for _, r := range rows {
		if len(r) != len(want) {
			t.Fatalf("row %q: %d columns", r, len(r))
		}
		ts, err := strconv.ParseFloat(col(r, "frame.time_relative"), 64)
		if err != nil {
			t.Fatal(err)
		}
		times = append(times, ts)
		protos[col(r, "_ws.col.Protocol")]++
		infos = append(infos, col(r, "_ws.col.Info"))
		comments = append(comments, col(r, "frame.comment"))
	}
	if len(rows) != 15 || !slices.IsSorted(times) || times[len(times)-1] < 12 {
		t.Errorf("%d packets at %v, want 15 in order over 12 s", len(rows), times)
	}
	if protos["ICMP"] != 4 || protos["DNS"] != 2 || protos["HTTP"] != 2 || protos["TCP"] != 7 {
		t.Errorf("protocols %v, want 4 ICMP, 2 DNS, 2 HTTP, 7 TCP", protos)
	}
	all := strings.Join(infos, "\n")
	for _, w := range []string{
		"Standard query 0x4f2a A vm-db.demo.lab", "Standard query response 0x4f2a A vm-db.demo.lab A 10.0.2.3",
		"Echo (ping) request", "Echo (ping) reply", "[SYN]", "[SYN, ACK]", "GET / HTTP/1.1", "HTTP/1.1 200 OK", "[FIN, ACK]",
	} {
		if !strings.Contains(all, w) {
			t.Errorf("no packet's info says %q:\n%s", w, all)
		}
	}
	// Both VNs, both directions, both kinds of mirror: the port mirror
	// names vm-web's VN alone, the policy both VNs and the mirroring host.
	seen := map[string]bool{}
	for _, c := range comments {
		for _, w := range []string{"default-domain:demo:vn-web", "default-domain:demo:vn-db", "dir=ingress", "dir=egress"} {
			seen[w] = seen[w] || strings.Contains(c, w)
		}
		switch {
		case strings.Contains(c, "host=10.10.0.11") && strings.Contains(c, "action=pass,mirror") &&
			strings.Contains(c, "src_vn=") && strings.Contains(c, "dst_vn="):
			seen["acl"] = true
		case !strings.Contains(c, "host=") && strings.Count(c, "_vn=") == 1:
			seen["port"] = true
		}
	}
	if len(seen) != 6 {
		t.Errorf("comments show only %v:\n%s", seen, strings.Join(comments, "\n"))
	}

	// The HTTP response came in two outer fragments: whole again, the
	// full-size frame with every byte of its segment.
	resp := tshark(t, targs[i+1], []string{"-Y", "http.response"},
		"frame.len", "http.response.code", "tcp.len", "http.content_length", "frame.comment")
	if len(resp) != 1 || resp[0][0] != "1514" || resp[0][1] != "200" || resp[0][2] != "1460" ||
		!strings.Contains(resp[0][4], "src_vn=default-domain:demo:vn-db dst_vn=default-domain:demo:vn-web dir=egress") {
		t.Errorf("HTTP response as tshark reads it: %q", resp)
	}
}

// TestLabTruthFile decodes the shipped lab capture and checks every frame
// against testdata/lab.truth.json: the frame byte for byte, its length,
// and the metadata its comment gives.
func TestLabTruthFile(t *testing.T) {
	td := filepath.Join("..", "..", "testdata")
	out := filepath.Join(t.TempDir(), "lab.pcapng")
	mustRun(t, "decap", filepath.Join(td, "lab.pcap"), out)
	b, err := os.ReadFile(filepath.Join(td, "lab.truth.json"))
	if err != nil {
		t.Fatal(err)
	}
	var truths []gen.Truth
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		var tr gen.Truth
		if err := json.Unmarshal([]byte(l), &tr); err != nil {
			t.Fatal(err)
		}
		truths = append(truths, tr)
	}
	ps := readAll(t, out)
	if len(ps) != len(truths) || len(ps) == 0 {
		t.Fatalf("%d frames decoded, the truth file has %d", len(ps), len(truths))
	}
	for i, tr := range truths {
		p := ps[i]
		if hex.EncodeToString(p.Data) != tr.Frame || p.WireLen != tr.FrameLen || len(p.Comments) != 1 {
			t.Fatalf("frame %d: %d of %d bytes, %d comments; the truth file says %d bytes, %s...",
				i+1, len(p.Data), p.WireLen, len(p.Comments), tr.FrameLen, tr.Frame[:min(len(tr.Frame), 40)])
		}
		c := string(p.Comments[0])
		var want []string
		if tr.SrcVN != nil {
			want = append(want, "src_vn="+*tr.SrcVN)
		}
		if tr.DstVN != nil {
			want = append(want, "dst_vn="+*tr.DstVN)
		}
		want = append(want, "dir="+tr.Direction)
		if tr.Host != "" {
			want = append(want, "host="+tr.Host)
		}
		for _, w := range want {
			if !slices.Contains(strings.Fields(c), w) {
				t.Errorf("frame %d: comment %q lacks %q", i+1, c, w)
			}
		}
	}
}
