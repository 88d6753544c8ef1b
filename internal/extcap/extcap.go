// Package extcap makes vrsniff a Wireshark external capture (extcap)
// program with these interfaces:
//
//   - vrsniff-remote reads the live decoded stream of a running
//     "vrsniff capture" over HTTP(S) and copies it into Wireshark;
//   - vrsniff-local captures mirror traffic on a local interface (Linux),
//     decodes it and writes the mirrored frames into Wireshark;
//   - vrsniff-fleet, when the program can open a fleet's store
//     (Program.OpenFleet), writes the packets of a time window that the
//     fleet's sniffers stored in object storage (internal/query).
//
// Wireshark runs the program with --extcap-interfaces, --extcap-dlts and
// --extcap-config to learn what it offers, then with --capture --fifo PATH
// and the options from its capture dialog. Errors go to standard error and
// end the program with a non-zero status, which Wireshark shows in its
// dialog. A capture stops when Wireshark closes the FIFO or sends SIGTERM;
// both end it cleanly.
//
// Wireshark names the options in its preferences after the interface, with
// '-' turned into '_': tshark -i vrsniff-remote -o extcap.vrsniff_remote.url:URL.
package extcap

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"syscall"

	"github.com/vrsniff/vrsniff/internal/filter"
	"github.com/vrsniff/vrsniff/internal/mirror"
	"github.com/vrsniff/vrsniff/internal/query"
	"github.com/vrsniff/vrsniff/internal/source"
)

// Interface names as Wireshark lists them.
const (
	Remote = "vrsniff-remote"
	Local  = "vrsniff-local"
)

// linkEthernet is the DLT of what both interfaces deliver: decoded frames.
const linkEthernet = 1

// Program answers Wireshark's extcap calls. The zero value is usable; the
// fields replace the parts that touch the system, for tests.
type Program struct {
	Version string    // reported to Wireshark; "" reads as "dev"
	Stdout  io.Writer // protocol answers; nil means discard
	// Client makes the remote stream request; nil builds one from the
	// options (timeouts, CA file).
	Client *http.Client
	// OpenLocal opens the local capture source; nil means
	// source.OpenAFPacket.
	OpenLocal func(iface string, o source.Options) (source.Source, error)
	// Interfaces lists the local interfaces offered in the dialog; nil
	// means net.Interfaces.
	Interfaces func() ([]net.Interface, error)
	// OpenFleet opens the bucket of a store URL (s3://BUCKET/PREFIX) and
	// gives the query options that go with it (the flow index reader,
	// the Community ID); nil leaves the fleet interface out.
	OpenFleet func(store string) (query.Bucket, query.Options, error)
}

// Options are the extcap command line: Wireshark's own arguments and the
// ones from the capture dialog.
type Options struct {
	// Wireshark's arguments.
	ListInterfaces bool
	WiresharkVer   string
	Interface      string
	ListDLTs       bool
	Config         bool
	Capture        bool
	FIFO           string
	CaptureFilter  string

	// Remote.
	URL       string
	Token     string
	TokenFile string
	CAFile    string

	// Local.
	Iface      string
	Ports      string
	VXLANPorts string
	MirrorVLAN uint
	Promisc    bool

	// Fleet.
	Store       string
	Since       string
	Until       string
	Sniffer     string
	CommunityID string

	// All: metadata and inner-frame filters.
	Filter filter.Options
}

// ParseArgs parses the command line Wireshark gives. Arguments Wireshark
// may add that do not matter here (debugging, control pipes) are accepted
// and ignored.
func ParseArgs(args []string) (Options, error) {
	var o Options
	fs := flag.NewFlagSet("vrsniff extcap", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.BoolVar(&o.ListInterfaces, "extcap-interfaces", false, "")
	fs.StringVar(&o.WiresharkVer, "extcap-version", "", "")
	fs.StringVar(&o.Interface, "extcap-interface", "", "")
	fs.BoolVar(&o.ListDLTs, "extcap-dlts", false, "")
	fs.BoolVar(&o.Config, "extcap-config", false, "")
	fs.BoolVar(&o.Capture, "capture", false, "")
	fs.StringVar(&o.FIFO, "fifo", "", "")
	fs.StringVar(&o.CaptureFilter, "extcap-capture-filter", "", "")
	var ignored string
	var ignoredBool bool
	for _, n := range []string{"extcap-control-in", "extcap-control-out", "debug-file", "extcap-reload-option"} {
		fs.StringVar(&ignored, n, "", "")
	}
	fs.BoolVar(&ignoredBool, "debug", false, "")

	fs.StringVar(&o.URL, "url", "", "")
	fs.StringVar(&o.Token, "token", "", "")
	fs.StringVar(&o.TokenFile, "token_file", "", "")
	fs.StringVar(&o.CAFile, "ca_file", "", "")
	fs.StringVar(&o.Iface, "iface", "", "")
	fs.StringVar(&o.Ports, "port", "", "")
	fs.StringVar(&o.VXLANPorts, "vxlan_port", "", "")
	fs.UintVar(&o.MirrorVLAN, "mirror_vlan", 0, "")
	fs.BoolVar(&o.Promisc, "promisc", false, "")
	fs.StringVar(&o.Store, "store", "", "")
	fs.StringVar(&o.Since, "since", "", "")
	fs.StringVar(&o.Until, "until", "", "")
	fs.StringVar(&o.Sniffer, "sniffer", "", "")
	fs.StringVar(&o.CommunityID, "community_id", "", "")
	fs.StringVar(&o.Filter.VN, "vn", "", "")
	fs.StringVar(&o.Filter.SrcVN, "src_vn", "", "")
	fs.StringVar(&o.Filter.DstVN, "dst_vn", "", "")
	fs.StringVar(&o.Filter.Direction, "direction", "", "")
	fs.StringVar(&o.Filter.BPF, "bpf", "", "")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if o.Filter.Direction == "any" {
		o.Filter.Direction = ""
	}
	return o, nil
}

// Run does what the options ask: answer one of Wireshark's questions,
// check a capture filter, or capture until ctx is done, the FIFO is closed
// or the stream ends. A capture stopped by Wireshark returns nil.
func (pr *Program) Run(ctx context.Context, o Options) error {
	out := pr.Stdout
	if out == nil {
		out = io.Discard
	}
	switch {
	case o.ListInterfaces:
		return pr.writeInterfaces(out)
	case o.Interface == "":
		return errors.New("no --extcap-interface given")
	case o.Interface != Remote && (o.Interface != Local || !localSupported) && (o.Interface != Fleet || pr.OpenFleet == nil):
		return fmt.Errorf("unknown interface %q", o.Interface)
	case o.ListDLTs:
		_, err := fmt.Fprintf(out, "dlt {number=%d}{name=EN10MB}{display=Ethernet (decoded mirror frames)}\n", linkEthernet)
		return err
	case o.Config:
		return pr.writeConfig(out, o.Interface)
	case !o.Capture && o.CaptureFilter != "":
		// Wireshark checks a capture filter this way: any output is the
		// reason it is invalid.
		if _, err := filter.New(filter.Options{BPF: o.CaptureFilter}); err != nil {
			fmt.Fprintln(out, err)
		}
		return nil
	case !o.Capture:
		return errors.New("nothing to do: want --extcap-interfaces, --extcap-dlts, --extcap-config or --capture")
	case o.FIFO == "":
		return errors.New("--capture needs --fifo")
	}
	flt := o.Filter
	if o.CaptureFilter != "" {
		if flt.BPF != "" {
			flt.BPF = "(" + flt.BPF + ") and (" + o.CaptureFilter + ")"
		} else {
			flt.BPF = o.CaptureFilter
		}
	}
	// Check the filter here so that a typo is reported before anything
	// connects or opens.
	if _, err := filter.New(flt); err != nil {
		return fmt.Errorf("filter: %w", err)
	}
	switch o.Interface {
	case Remote:
		return pr.captureRemote(ctx, o, flt)
	case Fleet:
		return pr.captureFleet(ctx, o, flt)
	}
	return pr.captureLocal(ctx, o, flt)
}

var localSupported = runtime.GOOS == "linux"

func (pr *Program) version() string {
	if pr.Version == "" {
		return "dev"
	}
	return pr.Version
}

func (pr *Program) writeInterfaces(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "extcap {version=%s}{display=vRouter mirror (vrsniff)}\n", pr.version())
	fmt.Fprintf(&b, "interface {value=%s}{display=vRouter mirror: remote vrsniff capture}\n", Remote)
	if localSupported {
		fmt.Fprintf(&b, "interface {value=%s}{display=vRouter mirror: decode on a local interface}\n", Local)
	}
	if pr.OpenFleet != nil {
		fmt.Fprintf(&b, "interface {value=%s}{display=vRouter mirror: stored by a fleet of sniffers}\n", Fleet)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// arg is one option of the capture dialog.
type arg struct {
	call, display, typ, tooltip string
	extra                       string // further {key=value} items
	values                      [][2]string
	def                         string // the value selected by default
}

func (pr *Program) args(iface string) ([]arg, error) {
	filters := []arg{
		{call: "vn", display: "VN (either side)", typ: "string", tooltip: "Keep packets whose source or destination virtual network matches this glob, e.g. *:vn-left",
			extra: "{group=Filter}"},
		{call: "src_vn", display: "Source VN", typ: "string", tooltip: "Keep packets whose source virtual network matches this glob", extra: "{group=Filter}"},
		{call: "dst_vn", display: "Destination VN", typ: "string", tooltip: "Keep packets whose destination virtual network matches this glob", extra: "{group=Filter}"},
		{call: "direction", display: "Direction", typ: "selector", tooltip: "Keep packets of one direction as the vRouter reports it", extra: "{group=Filter}",
			def: "any", values: [][2]string{{"any", "Any"}, {"ingress", "Ingress (from the VM)"}, {"egress", "Egress (to the VM)"}}},
		{call: "bpf", display: "Inner filter", typ: "string", tooltip: "tcpdump expression applied to the mirrored frames (the capture filter field works too)",
			extra: "{group=Filter}"},
	}
	if iface == Fleet {
		return append(fleetArgs(), filters...), nil
	}
	if iface == Remote {
		return append([]arg{
			{call: "url", display: "vrsniff capture URL", typ: "string", tooltip: "Address of the vrsniff capture HTTP server, e.g. https://sniffer.example:8443",
				extra: "{required=true}{placeholder=https://host:port}{group=Server}"},
			{call: "token", display: "Token", typ: "password", tooltip: "Bearer token of the server (the content of its --token-file)", extra: "{group=Server}"},
			// Wireshark neither stores password options nor takes them
			// with tshark -o: a file is the way to give the token there.
			{call: "token_file", display: "Token file", typ: "fileselect", tooltip: "File holding the bearer token, instead of typing it",
				extra: "{mustexist=true}{group=Server}"},
			{call: "ca_file", display: "CA certificate", typ: "fileselect", tooltip: "PEM file of the CA that signed the server certificate, for a private CA",
				extra: "{mustexist=true}{group=Server}"},
		}, filters...), nil
	}
	list := pr.Interfaces
	if list == nil {
		list = net.Interfaces
	}
	ifs, err := list()
	if err != nil {
		return nil, fmt.Errorf("list interfaces: %w", err)
	}
	names := make([]string, 0, len(ifs))
	for _, i := range ifs {
		names = append(names, i.Name)
	}
	sort.Strings(names)
	ifArg := arg{call: "iface", display: "Interface", typ: "selector", tooltip: "Interface the mirror traffic arrives on (it needs no IP address)",
		extra: "{required=true}{group=Capture}"}
	for _, n := range names {
		ifArg.values = append(ifArg.values, [2]string{n, n})
	}
	return append([]arg{
		ifArg,
		{call: "port", display: "Mirror UDP ports", typ: "string", tooltip: "UDP destination ports of Juniper-header mirroring, comma separated",
			extra: "{default=" + strconv.Itoa(mirror.DefaultPort) + "}{validation=^[0-9]+(,[0-9]+)*$}{group=Capture}"},
		{call: "vxlan_port", display: "VXLAN ports", typ: "string", tooltip: "UDP destination ports of static next-hop VXLAN mirroring, comma separated",
			extra: "{default=" + strconv.Itoa(mirror.DefaultVXLANPort) + "}{validation=^[0-9]+(,[0-9]+)*$}{group=Capture}"},
		{call: "mirror_vlan", display: "Mirror VLAN", typ: "unsigned", tooltip: "VLAN of NIC-assisted mirroring, stripped from the frames (0: none)",
			extra: "{range=0,4094}{default=0}{group=Capture}"},
		{call: "promisc", display: "Promiscuous mode", typ: "boolflag", tooltip: "See frames addressed to other MAC addresses", extra: "{group=Capture}"},
	}, filters...), nil
}

func (pr *Program) writeConfig(w io.Writer, iface string) error {
	args, err := pr.args(iface)
	if err != nil {
		return err
	}
	var b strings.Builder
	for i, a := range args {
		fmt.Fprintf(&b, "arg {number=%d}{call=--%s}{display=%s}{type=%s}{tooltip=%s}%s\n", i, a.call, a.display, a.typ, a.tooltip, a.extra)
		for _, v := range a.values {
			def := ""
			if v[0] == a.def {
				def = "{default=true}"
			}
			fmt.Fprintf(&b, "value {arg=%d}{value=%s}{display=%s}%s\n", i, v[0], v[1], def)
		}
	}
	_, err = io.WriteString(w, b.String())
	return err
}

// stopped reports whether err only says that Wireshark ended the capture:
// the FIFO's reader went away or the context was cancelled.
func stopped(ctx context.Context, err error) bool {
	return errors.Is(err, syscall.EPIPE) || errors.Is(err, context.Canceled) ||
		(ctx.Err() != nil && errors.Is(err, ctx.Err()))
}
