package capture

import (
	"fmt"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"

	"github.com/vrsniff/vrsniff/internal/capture/capturetest"
	"github.com/vrsniff/vrsniff/internal/testenv"
)

// TestKernelDrops makes the kernel really drop: the capture files lie on a
// file system that is frozen while traffic arrives, so the pipeline stops
// in a write, the AF_PACKET ring fills and the kernel drops what does not
// fit. Every frame sent is either read or counted as dropped, and the loss
// shows in the warning (with its percentage), in /metrics and in the
// capture file's interface statistics as tshark reads them.
func TestKernelDrops(t *testing.T) {
	env := testenv.NewNetns(t)
	fs := testenv.NewFreezable(t)
	c := config(fs.Dir)
	c.Interface, c.MetricsAddr, c.Workers = env.CaptureIf, "127.0.0.1:0", 1
	c.Source.RingBlockSize, c.Source.RingBlocks = 1<<20, MinRingMiB
	r := start(t, c)

	warm := capturetest.Cases(t, "acl", 31, 50, 1400)
	env.Send(t, capturetest.OuterFrames(warm))
	r.waitWritten(uint64(len(warm)))

	fs.Freeze()
	flood := capturetest.OuterFrames(capturetest.Cases(t, "acl", 32, 6000, 1400))
	env.Send(t, flood)
	// The source's own counters: the service's would wait for the files'
	// lock, which the frozen write holds.
	r.waitFor("kernel drops", func() bool { return r.svc.ws.sourceStats().Dropped > 0 })
	fs.Thaw()
	sent := uint64(len(capturetest.OuterFrames(warm)) + len(flood))
	r.waitFor("every frame read or dropped", func() bool {
		st := r.svc.Stats()
		return st.Source.Received+st.Source.Dropped == sent && st.Pipeline.Read == st.Source.Received && st.Files.Pending == 0
	})
	if err := r.svc.Rotate(); err != nil {
		t.Fatal(err)
	}
	st := r.svc.Stats()
	if st.Files.Dropped != 0 || st.Pipeline.Read != st.Source.Received {
		t.Errorf("counters %+v: want no store drops and every frame read decoded", st)
	}

	metrics := scrapeMetrics(t, "http://"+r.svc.MetricsAddr().String()+"/metrics")
	if got := metrics["vrsniff_kernel_drops_total"]; got != float64(st.Source.Dropped) {
		t.Errorf("vrsniff_kernel_drops_total = %v, want %d", got, st.Source.Dropped)
	}

	closed, _ := capturetest.CaptureFiles(t, fs.Dir)
	if len(closed) != 1 {
		t.Fatalf("closed files %v, want one", closed)
	}
	infos, err := r.svc.ws.files()[0].List()
	if err != nil || len(infos) != 1 {
		t.Fatalf("files %+v, %v", infos, err)
	}
	// The file counts from its opening, at its first packet: all the
	// drops, and every frame but those read before it opened (the
	// fragments of the first datagram).
	fi := infos[0]
	if fi.KernelDropped != st.Source.Dropped || fi.Received+fi.KernelDropped > sent || fi.Received+fi.KernelDropped+4 < sent {
		t.Errorf("file info: received %d, kernel dropped %d; sent %d, the kernel dropped %d", fi.Received, fi.KernelDropped, sent, st.Source.Dropped)
	}
	recv, ifDrop, _ := testenv.InterfaceStats(t, filepath.Join(fs.Dir, closed[0]))
	if want := fmt.Sprint([]uint64{fi.Received + fi.KernelDropped}, []uint64{st.Source.Dropped}); fmt.Sprint(recv, ifDrop) != want {
		t.Errorf("tshark reads the ISB as received %v, dropped %v; want %s", recv, ifDrop, want)
	}

	if err := r.finish(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	// One or more warnings, each with its share of the loss.
	var dropped uint64
	for _, m := range regexp.MustCompile(`msg="the kernel dropped packets[^"]*".* dropped=(\d+) .*drop_percent=([0-9.]+)`).FindAllStringSubmatch(r.log.String(), -1) {
		n, _ := strconv.ParseUint(m[1], 10, 64)
		dropped += n
		if p, _ := strconv.ParseFloat(m[2], 64); p <= 0 || p > 100 {
			t.Errorf("drop warning says %s %%", m[2])
		}
	}
	if dropped != st.Source.Dropped {
		t.Errorf("kernel drop warnings sum to %d, the kernel dropped %d:\n%s", dropped, st.Source.Dropped, r.log)
	}
}
