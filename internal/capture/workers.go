package capture

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"

	"github.com/vrsniff/vrsniff/internal/pipeline"
	"github.com/vrsniff/vrsniff/internal/ring"
	"github.com/vrsniff/vrsniff/internal/source"
)

// MaxWorkers caps Config.Workers. Each worker pins a socket ring of its
// own (--ring-mb, 64 MiB by default) and holds its own reassembly table
// and open files. One worker takes about 1.5 M frames/s, so 16 of them
// take more than a capture disk writes: more workers would only add
// pinned memory (1 GiB at the default for 16) and descriptors.
const MaxWorkers = 16

// workerCount is how many workers c runs: Config.Workers, or by default
// the CPUs the process may run on (GOMAXPROCS follows the affinity mask
// and the cgroup's CPU limit) up to MaxWorkers; one for a replayed file,
// whose packets must stay in order.
func workerCount(c Config) (int, error) {
	switch {
	case c.Workers < 0:
		return 0, fmt.Errorf("workers %d: must not be negative", c.Workers)
	case c.Workers > MaxWorkers:
		return 0, fmt.Errorf("workers %d: at most %d", c.Workers, MaxWorkers)
	case c.Read != "" || c.source != nil:
		return 1, nil
	}
	return cmp.Or(c.Workers, min(runtime.GOMAXPROCS(0), MaxWorkers)), nil
}

// worker is one share of a capture: a socket of the group, the pipeline
// that decodes what it reads (its own decoder, so the fragments of a
// datagram, which the kernel gives to one socket, are reassembled there),
// its counters and its files. Nothing on its packet path is shared with
// another worker but the stream hub, which costs nothing while no client
// streams.
type worker struct {
	src     source.Source
	pl      *pipeline.Pipeline
	stats   *pipeline.Stats
	files   *ring.Ring // nil without Dir
	rejects *ring.Ring // nil without KeepRejects
}

// workers are a capture's workers; the service reads their counters
// summed, where they are read, so that no counter is shared on the packet
// path.
type workers []*worker

// openSources opens the n sockets of c's source, as one group.
func openSources(c Config, n int) ([]source.Source, error) {
	so := sourceOptions(c)
	switch {
	case c.source != nil:
		return []source.Source{c.source}, nil
	case c.Read != "":
		return one(source.OpenFile(c.Read, c.Realtime))
	case n == 1 && c.Interface != "":
		return one(source.OpenAFPacket(c.Interface, so))
	case n == 1:
		return one(source.ListenUDP(c.Listen, so))
	case c.Interface != "":
		srcs, _, err := source.OpenAFPacketGroup(c.Interface, so, n)
		return srcs, err
	}
	return source.ListenUDPGroup(c.Listen, so, n)
}

func one(s source.Source, err error) ([]source.Source, error) {
	if err != nil {
		return nil, err
	}
	return []source.Source{s}, nil
}

// filePrefix is the file name prefix of worker i of n: the configured one
// for a single worker, so that its names do not change, else with the
// worker's number, "vrsniff-w03". Each worker writes files of its own,
// each in time order and without a lock shared with the others (see
// docs/capture.md, "Workers").
func filePrefix(prefix string, i, n int) string {
	if n == 1 {
		return prefix
	}
	return fmt.Sprintf("%s-w%02d", prefix, i)
}

// otherPrefixes are the file name prefixes that runs with another number
// of workers give prefix's files: the first worker adopts their files, so
// that a restart with fewer or more workers (or a sniffer VM resized, as
// the default follows its CPUs) lists, retains and uploads them.
func otherPrefixes(prefix string, n int) []string {
	used := map[string]bool{}
	for i := range n {
		used[filePrefix(prefix, i, n)] = true
	}
	var out []string
	for _, p := range append([]string{prefix}, workerPrefixes(prefix)...) {
		if !used[p] {
			out = append(out, p)
		}
	}
	return out
}

// workerPrefixes are the prefixes of every worker there can be.
func workerPrefixes(prefix string) []string {
	out := make([]string, MaxWorkers)
	for i := range out {
		out[i] = filePrefix(prefix, i, MaxWorkers)
	}
	return out
}

// share divides a retention limit among n rings: each keeps at most
// limit/n, and at least 1 (a limit of 0, none, stays 0).
func share[T int | int64](limit T, n int) T {
	if limit == 0 {
		return 0
	}
	return max(limit/T(n), 1)
}

// Summary sums the workers' pipeline counters (pipeline.Sum); it makes
// workers the server's Counters.
func (ws workers) Summary() pipeline.Summary {
	ss := make([]*pipeline.Stats, len(ws))
	for i, w := range ws {
		ss[i] = w.stats
	}
	return pipeline.Sum(ss)
}

// read is the packets read by all workers.
func (ws workers) read() uint64 {
	var n uint64
	for _, w := range ws {
		n += w.stats.Read.Load()
	}
	return n
}

// sourceStats sums the counters of the workers' sockets.
func (ws workers) sourceStats() source.Stats {
	var st source.Stats
	for _, w := range ws {
		if w.src == nil {
			continue
		}
		s := w.src.Stats()
		st.Received += s.Received
		st.Dropped += s.Dropped
		st.QueueFreezes += s.QueueFreezes
	}
	return st
}

// stuck takes this watchdog period's counters of each worker into st, one
// stall per worker, and says whether one of them read nothing while the
// kernel dropped packets for its socket: the others reading does not help
// the flows hashed to it.
func (ws workers) stuck(st []stall) bool {
	stuck := false
	for i, w := range ws {
		if st[i].stuck(w.stats.Read.Load(), w.src.Stats().Dropped) {
			stuck = true
		}
	}
	return stuck
}

// closeSources closes every socket, which ends the workers' pipelines.
func (ws workers) closeSources() error {
	var err error
	for _, w := range ws {
		if w.src != nil {
			err = errors.Join(err, w.src.Close())
		}
	}
	return err
}

// run runs the workers' pipelines, one goroutine each, until all have
// ended. The first worker that fails closes every socket, so that the
// others end too, and its error is run's: the others' are its echoes (an
// interface gone fails every socket on it). Otherwise run returns
// source.ErrClosed when the sockets were closed, nil at the end of the
// input.
//
// The goroutines are not locked to OS threads: nothing a worker does
// depends on its thread, and locking them (bench/capture.sh, two cores,
// one and two workers) took no more frames without loss.
func (ws workers) run(ctx context.Context) error {
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		first  error // the first failure
		closed bool  // a worker ended with source.ErrClosed
	)
	for _, w := range ws {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := w.pl.Run(ctx)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case errors.Is(err, source.ErrClosed):
				closed = true
			case err != nil && first == nil:
				first = err
				ws.closeSources()
			}
		}()
	}
	wg.Wait()
	if first == nil && closed {
		return source.ErrClosed
	}
	return first
}

// files are the workers' capture rings, rejects their rejects rings.
func (ws workers) files() []*ring.Ring {
	var rs []*ring.Ring
	for _, w := range ws {
		if w.files != nil {
			rs = append(rs, w.files)
		}
	}
	return rs
}

func (ws workers) rejects() []*ring.Ring {
	var rs []*ring.Ring
	for _, w := range ws {
		if w.rejects != nil {
			rs = append(rs, w.rejects)
		}
	}
	return rs
}

// ringStats sums the counters of rings; Problem is the first ring's that
// has one, DiskFull whether any is.
func ringStats(rs []*ring.Ring) ring.Stats {
	var st ring.Stats
	for _, r := range rs {
		s := r.Stats()
		st.Files += s.Files
		st.OpenFiles += s.OpenFiles
		st.Bytes += s.Bytes
		st.Packets += s.Packets
		st.Pending += s.Pending
		st.Dropped += s.Dropped
		st.DroppedDiskFull += s.DroppedDiskFull
		st.DroppedSpoolFull += s.DroppedSpoolFull
		st.WriteErrors += s.WriteErrors
		st.Lost += s.Lost
		st.DirRecreated += s.DirRecreated
		st.Truncated += s.Truncated
		st.SplitOverflow += s.SplitOverflow
		st.SplitClosed += s.SplitClosed
		st.Rotated += s.Rotated
		st.RemovedMaxFiles += s.RemovedMaxFiles
		st.RemovedMaxBytes += s.RemovedMaxBytes
		st.Deleted += s.Deleted
		st.Uploaded += s.Uploaded
		st.DiskFull = st.DiskFull || s.DiskFull
		st.SpoolFull = st.SpoolFull || s.SpoolFull
		st.Problem = cmp.Or(st.Problem, s.Problem)
	}
	return st
}
