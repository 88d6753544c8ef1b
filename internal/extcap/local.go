package extcap

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/vrsniff/vrsniff/internal/filter"
	"github.com/vrsniff/vrsniff/internal/mirror"
	"github.com/vrsniff/vrsniff/internal/pcapfile"
	"github.com/vrsniff/vrsniff/internal/pipeline"
	"github.com/vrsniff/vrsniff/internal/source"
)

// trafficFlags are the names Wireshark's dialog gives the settings of
// mirror.Traffic.
var trafficFlags = mirror.TrafficFlags{Ports: "--port", VXLANPorts: "--vxlan_port", MirrorVLAN: "--mirror_vlan"}

// traffic is the mirror traffic the options select.
func (o Options) traffic() (mirror.Traffic, error) {
	return trafficFlags.Parse(o.Ports, o.VXLANPorts, strconv.FormatUint(uint64(o.MirrorVLAN), 10))
}

// captureLocal captures on a local interface, decodes, filters and writes
// the mirrored frames as pcapng, metadata in comments, into the FIFO.
func (pr *Program) captureLocal(ctx context.Context, o Options, flt filter.Options) error {
	if o.Iface == "" {
		return errors.New("no capture interface given (option iface)")
	}
	traffic, err := o.traffic()
	if err != nil {
		return err
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
	src, err := open(o.Iface, source.Options{Traffic: traffic, Promisc: o.Promisc})
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

	pl, err := localPipeline(src, traffic, f, w)
	if err != nil {
		return err
	}
	err = pl.Run(ctx)
	if err == nil || errors.Is(err, source.ErrClosed) || stopped(ctx, err) {
		return nil
	}
	return fmt.Errorf("capture on %s: %w", o.Iface, err)
}

// localPipeline decodes src into w. Wireshark gets no rejects, so the
// decoder keeps no copies of the fragments it holds.
func localPipeline(src pipeline.Source, t mirror.Traffic, f *filter.Filter, w *pcapfile.Writer) (*pipeline.Pipeline, error) {
	return pipeline.New(pipeline.Config{
		Source:  src,
		Decoder: mirror.Config{Traffic: t},
		Filter:  f,
		Sinks:   []pipeline.Sink{flushingSink{w}},
	})
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
