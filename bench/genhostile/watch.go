package main

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"time"
)

// peaks are the largest values seen of a process's memory and
// descriptors, in KiB and descriptors.
type peaks struct {
	hwm, rss, anon, fds int64
	samples             int
}

// sample reads /proc/PID once; it returns false once the process is gone
// (or a zombie, whose status has no memory lines).
func (pk *peaks) sample(pid int) bool {
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return false
	}
	live := false
	sc := bufio.NewScanner(bytes.NewReader(status))
	for sc.Scan() {
		key, val, ok := bytes.Cut(sc.Bytes(), []byte(":"))
		if !ok {
			continue
		}
		f := bytes.Fields(val)
		if len(f) == 0 {
			continue
		}
		v, _ := strconv.ParseInt(string(f[0]), 10, 64)
		switch string(key) {
		case "VmHWM":
			pk.hwm, live = max(pk.hwm, v), true
		case "VmRSS":
			pk.rss = max(pk.rss, v)
		case "RssAnon":
			pk.anon = max(pk.anon, v)
		}
	}
	if !live {
		return false
	}
	if ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid)); err == nil {
		pk.fds = max(pk.fds, int64(len(ents)))
	}
	pk.samples++
	return true
}

func (pk *peaks) String() string {
	return fmt.Sprintf("vmhwm_kib=%d rss_peak_kib=%d rssanon_peak_kib=%d fds_peak=%d samples=%d",
		pk.hwm, pk.rss, pk.anon, pk.fds, pk.samples)
}

// watch samples a process's /proc entries until it ends and prints the
// peaks: VmHWM (the kernel's own peak of resident memory: anonymous,
// file and shared pages), and the sampled peaks of VmRSS, RssAnon and open
// descriptors. With a command after "--" it runs the command (its exit
// status becomes watch's) and takes the peak from its rusage as well.
func watch(args []string) error {
	fs := flag.NewFlagSet("watch", flag.ExitOnError)
	pid := fs.Int("pid", 0, "process to watch")
	every := fs.Duration("every", 100*time.Millisecond, "sampling interval")
	out := fs.String("o", "", "write the result line to `file` (default: standard output)")
	fs.Parse(args)
	var pk peaks
	print := func() error {
		if *out == "" {
			fmt.Println(pk.String())
			return nil
		}
		return os.WriteFile(*out, []byte(pk.String()+"\n"), 0o644)
	}
	if fs.NArg() == 0 {
		if *pid <= 0 {
			return errors.New("need -pid or a command")
		}
		for pk.sample(*pid) {
			time.Sleep(*every)
		}
		return print()
	}
	cmd := exec.Command(fs.Arg(0), fs.Args()[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t := time.NewTicker(*every)
	defer t.Stop()
	var err error
loop:
	for {
		pk.sample(cmd.Process.Pid)
		select {
		case err = <-done:
			break loop
		case <-t.C:
		}
	}
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		pk.hwm = max(pk.hwm, ru.Maxrss) // KiB on Linux
	}
	if perr := print(); perr != nil {
		return perr
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		os.Exit(ee.ExitCode())
	}
	return err
}
