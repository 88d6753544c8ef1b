package source

import (
	"bufio"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vrsniff/vrsniff/internal/mirror"
	"github.com/vrsniff/vrsniff/internal/pcapfile"
)

// fileSource replays a capture file, as fast as it can be read or at the
// pace it was captured.
type fileSource struct {
	f        *os.File
	r        *pcapfile.Reader
	realtime bool
	first    time.Time // first packet's timestamp
	start    time.Time // when it was replayed
	received atomic.Uint64
	done     chan struct{}
	once     sync.Once
}

// OpenFile replays a pcap or pcapng file. With realtime, packets are
// returned at the pace of their timestamps; Next returns io.EOF at the end.
func OpenFile(name string, realtime bool) (Source, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	r, err := pcapfile.NewReader(bufio.NewReaderSize(f, 1<<20))
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return &fileSource{f: f, r: r, realtime: realtime, done: make(chan struct{})}, nil
}

func (s *fileSource) Next(p *mirror.Packet) error {
	select {
	case <-s.done:
		s.f.Close()
		return ErrClosed
	default:
	}
	if err := s.r.Next(p); err != nil {
		return err
	}
	if s.realtime {
		if s.first.IsZero() {
			s.first, s.start = p.Timestamp, time.Now()
		}
		if wait := time.Until(s.start.Add(p.Timestamp.Sub(s.first))); wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-t.C:
			case <-s.done:
				t.Stop()
				return ErrClosed
			}
		}
	}
	s.received.Add(1)
	return nil
}

func (s *fileSource) Stats() Stats { return Stats{Received: s.received.Load()} }

func (s *fileSource) Close() error {
	s.once.Do(func() { close(s.done) })
	return nil
}
