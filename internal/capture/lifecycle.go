package capture

import (
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
)

// notify tells systemd (a Type=notify unit, NOTIFY_SOCKET set) how the
// service stands: daemon.SdNotifyReady once it captures and serves,
// daemon.SdNotifyStopping when it shuts down, daemon.SdNotifyWatchdog
// while it runs. Without NOTIFY_SOCKET it does nothing.
func notify(log *slog.Logger, state string) {
	if _, err := daemon.SdNotify(false, state); err != nil {
		log.Warn("notify systemd", "state", state, "err", err)
	}
}

// watchdogEvery is how often to ping systemd's watchdog: half of
// WATCHDOG_USEC, so that one late ping is not a restart; 0 when the
// watchdog is off (or meant for another process, WATCHDOG_PID).
func watchdogEvery() time.Duration {
	d, err := daemon.SdWatchdogEnabled(false)
	if err != nil || d <= 0 {
		return 0
	}
	return d / 2
}

// checkWritable creates and removes a file in dir: permissions, a
// read-only mount or a full inode table show now, at start-up, and not as
// packets dropped later. Root passes permission checks, so only a write
// tells.
func checkWritable(dir string) error {
	f, err := os.CreateTemp(dir, ".vrsniff-write-check-*")
	if err != nil {
		return fmt.Errorf("capture directory %s is not writable: %w", dir, err)
	}
	name := f.Name()
	err = f.Close()
	if rerr := os.Remove(name); err == nil {
		err = rerr
	}
	if err != nil {
		return fmt.Errorf("capture directory %s is not writable: %w", dir, err)
	}
	return nil
}

// liveness is the capture's own part of /healthz: the source failed, or
// no packet was read for StaleAfter.
type liveness struct {
	staleAfter time.Duration // 0: never stale
	read       func() uint64 // packets read so far
	ended      func() bool   // the input ended as it should (a replayed file)
	now        func() time.Time

	mu      sync.Mutex
	last    uint64    // read at the last sample
	lastAt  time.Time // when read last changed (or the capture started)
	srcErr  error     // why the source failed; nil while it has not
	started bool
}

// sample notes whether packets were read since the last sample. Run calls
// it often enough (sampleEvery) that a packet is seen within a fraction of
// StaleAfter; check calls it too, so a poll sees packets at once.
func (l *liveness) sample() {
	l.mu.Lock()
	defer l.mu.Unlock()
	n, now := l.read(), l.now()
	if !l.started || n != l.last {
		l.last, l.lastAt, l.started = n, now, true
	}
}

// sampleEvery is the period of sample for a StaleAfter of d: a tenth of
// it, at most a second.
func sampleEvery(d time.Duration) time.Duration {
	return min(max(d/10, time.Millisecond), time.Second)
}

// failed records why the source failed.
func (l *liveness) failed(err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.srcErr = err
}

// check returns why the capture is unhealthy, nil while it is not.
func (l *liveness) check() error {
	l.sample()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.srcErr != nil {
		return fmt.Errorf("source failed: %w", l.srcErr)
	}
	if l.staleAfter > 0 && !l.ended() {
		if idle := l.now().Sub(l.lastAt); idle >= l.staleAfter {
			return fmt.Errorf("no packet read for %s (stale after %s)", idle.Round(100*time.Millisecond), l.staleAfter)
		}
	}
	return nil
}

// stall tells a capture that stopped reading from one that has nothing to
// read, from counters sampled once per watchdog period: no packet read
// while the kernel dropped packets for the source means the pipeline is
// stuck (a write that does not return), and the watchdog ping is withheld
// so that systemd restarts the service. It costs nothing per packet.
type stall struct {
	read, dropped uint64
	started       bool
}

// stuck takes this period's counters and says whether the capture read
// nothing while packets were dropped for it.
func (s *stall) stuck(read, dropped uint64) bool {
	stuck := s.started && read == s.read && dropped > s.dropped
	s.read, s.dropped, s.started = read, dropped, true
	return stuck
}
