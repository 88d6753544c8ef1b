package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/vrsniff/vrsniff/internal/extcap"
)

const extcapUsage = `usage: vrsniff extcap install [--dir DIR]
       vrsniff extcap --extcap-interfaces | --extcap-interface IF (--extcap-dlts | --extcap-config | --capture --fifo PATH) [options]

Wireshark runs vrsniff as an external capture program, through a link named
vrsniff-extcap in its extcap folder; "install" makes that link in the
personal folder of the installed Wireshark version (both folders when the
version is unknown) or in DIR. Restart Wireshark afterwards: the interfaces
vrsniff-remote (a running vrsniff capture) and vrsniff-local (decode on a
local interface) appear in its list.

  tshark -i vrsniff-remote -o extcap.vrsniff_remote.url:https://sniffer:8443 \
         -o extcap.vrsniff_remote.token_file:/path/to/token -o extcap.vrsniff_remote.src_vn:'*:vn-left'
`

func runExtcap(args []string) int {
	if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "help") {
		fmt.Fprint(os.Stdout, extcapUsage)
		return exitOK
	}
	if len(args) > 0 && args[0] == "install" {
		return runExtcapInstall(args[1:])
	}
	o, err := extcap.ParseArgs(args)
	if err != nil {
		return usageErr("extcap", err.Error())
	}
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	pr := &extcap.Program{Version: version, Stdout: os.Stdout, OpenFleet: openFleet}
	if err := pr.Run(ctx, o); err != nil {
		// Wireshark shows standard error in its dialog.
		fmt.Fprintf(os.Stderr, "vrsniff: %v\n", err)
		return exitFailure
	}
	return exitOK
}

func runExtcapInstall(args []string) int {
	fs := newFlagSet("extcap install", extcapUsage+"\nflags of install:\n")
	dir := fs.String("dir", "", "make the link in `DIR` instead of Wireshark's personal extcap folder")
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	if fs.NArg() > 0 {
		return usageErr("extcap install", fmt.Sprintf("unexpected argument %q", fs.Arg(0)))
	}
	if err := extcap.InstallSelf(*dir, os.Stdout); err != nil {
		return fail("extcap install", err)
	}
	return exitOK
}
