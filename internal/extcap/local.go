package extcap

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/vrsniff/vrsniff/internal/filter"
	"github.com/vrsniff/vrsniff/internal/mirror"
	"github.com/vrsniff/vrsniff/internal/pcapfile"
	"github.com/vrsniff/vrsniff/internal/pipeline"
	"github.com/vrsniff/vrsniff/internal/source"
)

func parsePorts(name, s string) ([]uint16, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	var ps []uint16
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.ParseUint(strings.TrimSpace(f), 10, 16)
		if err != nil || n == 0 {
			return nil, fmt.Errorf("%s: bad port %q", name, f)
		}
		ps = append(ps, uint16(n))
	}
	return ps, nil
}

// captureLocal captures on a local interface, decodes, filters and writes
// the mirrored frames as pcapng, metadata in comments, into the FIFO.
func (pr *Program) captureLocal(ctx context.Context, o Options, flt filter.Options) error {
	if o.Iface == "" {
		return errors.New("no capture interface given (option iface)")
	}
	ports, err := parsePorts("port", o.Ports)
	if err != nil {
		return err
	}
	vxlan, err := parsePorts("vxlan_port", o.VXLANPorts)
	if err != nil {
		return err
	}
	if o.MirrorVLAN > 4094 {
		return fmt.Errorf("mirror_vlan %d: want 0-4094", o.MirrorVLAN)
	}
	f, err := filter.New(flt)
	if err != nil {
		return fmt.Errorf("filter: %w", err)
	}
	fifo, err := openFIFO(ctx, o.FIFO)
	if fifo == nil {
		return err
	}
	defer fifo.Close()
	open := pr.OpenLocal
	if open == nil {
		open = source.OpenAFPacket
	}
	src, err := open(o.Iface, source.Options{
		Ports: ports, VXLANPorts: vxlan, MirrorVLAN: uint16(o.MirrorVLAN), Promisc: o.Promisc,
	})
	if err != nil {
		return err
	}
	defer src.Close()

	w, err := pcapfile.NewWriter(fifo, pcapfile.Options{Format: pcapfile.FormatPcapNG, Application: "vrsniff extcap"})
	if err != nil {
		return err
	}
	// Wireshark waits for the file header before it shows the capture.
	if err := w.Flush(); err != nil {
		return stopErr(ctx, fmt.Errorf("write fifo: %w", err))
	}

	// Next blocks until a packet comes: Close wakes it when Wireshark
	// stops the capture.
	done := make(chan struct{})
	defer close(done)
	go func() {
		select {
		case <-ctx.Done():
			src.Close()
		case <-done:
		}
	}()

	pl := &pipeline.Pipeline{
		Source:  src,
		Decoder: mirror.NewDecoder(mirror.Config{Ports: ports, VXLANPorts: vxlan, MirrorVLAN: uint16(o.MirrorVLAN)}),
		Filter:  f,
		Sinks:   []pipeline.Sink{flushingSink{w}},
		Stats:   new(pipeline.Stats),
	}
	err = pl.Run(ctx)
	if err == nil || errors.Is(err, source.ErrClosed) || stopped(ctx, err) {
		return nil
	}
	return fmt.Errorf("capture on %s: %w", o.Iface, err)
}

// flushingSink hands every packet to Wireshark at once: a live view must
// not wait for a buffer to fill, and Wireshark reads far slower than one
// write per packet costs.
type flushingSink struct{ w *pcapfile.Writer }

func (s flushingSink) WritePacket(p *mirror.Packet) error {
	if err := s.w.WritePacket(p); err != nil {
		return err
	}
	if err := s.w.Flush(); err != nil {
		return fmt.Errorf("write fifo: %w", err)
	}
	return nil
}
