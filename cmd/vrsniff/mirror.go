package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/pflag"

	"github.com/vrsniff/vrsniff/internal/heat"
	"github.com/vrsniff/vrsniff/internal/mirror"
	"github.com/vrsniff/vrsniff/internal/provision"
)

const mirrorUsage = `usage: vrsniff mirror <create|list|delete|heat> [flags]

  create   set a mirror up (--vn, --vn --per-port, --port/--vm, or --vn --service-instance)
  list     show the mirrors vrsniff created and whether each works
  delete   remove a mirror and restore what it changed: vrsniff mirror delete NAME
  heat     write a Heat (HOT) template that deploys the sniffer VM (and mirrors what it can safely)

Run "vrsniff mirror <sub-command> -h" for its flags.
`

func runMirror(args []string) int {
	if len(args) == 0 {
		return usageErr("mirror", "want a sub-command: create, list, delete or heat (see vrsniff mirror --help)")
	}
	switch args[0] {
	case "create":
		return mirrorCreate(args[1:])
	case "list":
		return mirrorList(args[1:])
	case "delete":
		return mirrorDelete(args[1:])
	case "heat":
		return mirrorHeat(args[1:])
	case "help":
		if len(args) > 1 {
			return runMirror([]string{args[1], "--help"})
		}
		fmt.Fprint(os.Stdout, mirrorUsage)
		return exitOK
	case "-h", "--help", "-help":
		fmt.Fprint(os.Stdout, mirrorUsage)
		return exitOK
	}
	return usageErr("mirror", fmt.Sprintf("unknown sub-command %q (see vrsniff mirror --help)", args[0]))
}

const (
	mirrorCreateUsage = "usage: vrsniff mirror create --name NAME (--vn VN [--per-port | --service-instance] | --port VMI | --vm VM) [flags]\n\nSets a mirror up (docs/mirror.md).\n\nflags:\n"
	mirrorListUsage   = "usage: vrsniff mirror list [--project D:P | --all-projects] [-o table|json | --json] [flags]\n\nShows the mirrors vrsniff created and whether each works.\n\nflags:\n"
	mirrorDeleteUsage = "usage: vrsniff mirror delete [flags] NAME\n\nRemoves a mirror and restores what it changed.\n\nflags:\n"
	mirrorHeatUsage   = "usage: vrsniff mirror heat [flags]\n\nWrites a Heat (HOT) template that deploys the sniffer VM.\n\nflags:\n"
)

func signalContext() (context.Context, context.CancelFunc) {
	// SIGTERM too: timeout(1) and systemd stop a command with it, and a
	// create that is stopped must still roll back what it changed.
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
}

// optBool is a flag that remembers whether it was given.
type optBool struct{ v *bool }

func (o *optBool) String() string {
	if o.v == nil {
		return ""
	}
	return strconv.FormatBool(*o.v)
}
func (o *optBool) Set(s string) error {
	b, err := strconv.ParseBool(s)
	if err != nil {
		return err
	}
	o.v = &b
	return nil
}
func (o *optBool) Type() string { return "bool" }

func mirrorCreate(args []string) int {
	fs := newFlagSet("mirror create", mirrorCreateUsage)
	var a apiFlags
	a.register(fs, true)
	var (
		s        provision.Spec
		si       bool
		perPort  bool
		wait     time.Duration
		juniper  optBool
		analyzer = &s.Analyzer
		m        = &s.Match
	)
	fs.StringVar(&s.Name, "name", "", "mirror name (required); objects are named vrsniff-NAME")
	fs.StringVar(&s.VN, "vn", "", "mirror this virtual network (domain:project:name or UUID) through a dynamic mirror-only policy")
	fs.BoolVar(&perPort, "per-port", false, "with --vn: mirror every port of the network instead (provider networks, ports with policy disabled)")
	fs.StringVar(&s.Port, "port", "", "mirror this VM port (virtual-machine-interface UUID)")
	fs.StringVar(&s.VM, "vm", "", "mirror a port of this VM (name or UUID)")
	fs.IntVar(&s.Interface, "interface", 0, "with --vm: which port, 0 = first")
	fs.BoolVar(&si, "service-instance", false, "mirror --vn to an analyzer service instance instead of an IP")
	fs.StringVar(&s.AnalyzerSI, "analyzer-si", "", "with --service-instance: mirror to this existing analyzer service instance (domain:project:name)")
	fs.StringVar(&s.TrafficDirection, "traffic-direction", "both", "port mirroring: ingress (packets the VM sends), egress (packets delivered to it) or both")
	fs.DurationVar(&wait, "wait", provision.DefaultWait, "how long to wait for the schema transformer to compile a policy mirror before rolling back")
	fs.StringVar(&analyzer.IP, "analyzer-ip", "", "analyzer IP address")
	fs.IntVar(&analyzer.UDPPort, "udp-port", 0, fmt.Sprintf("analyzer UDP port (default %d)", mirror.DefaultPort))
	fs.Var(&juniper, "juniper-header", "send the Juniper metadata header (--juniper-header=false: not; 3.1+; default: server's, true)")
	fs.Lookup("juniper-header").NoOptDefVal = "true"
	fs.StringVar(&analyzer.NHMode, "nh-mode", "", "next-hop mode: dynamic or static (3.1+)")
	fs.StringVar(&analyzer.MAC, "analyzer-mac", "", "analyzer MAC address (3.1+)")
	fs.StringVar(&analyzer.VTEP, "vtep", "", "static next hop: VTEP IP address")
	fs.StringVar(&analyzer.VTEPMAC, "vtep-mac", "", "static next hop: VTEP MAC address")
	fs.IntVar(&analyzer.VNI, "vni", 0, "static next hop: VXLAN VNI")
	fs.IntVar(&analyzer.NICVLAN, "nic-vlan", 0, "NIC-assisted mirroring on this VLAN (4.0+)")
	fs.StringVar(&m.Protocol, "protocol", "", "match: any, tcp, udp, icmp, icmp6 or a number")
	fs.StringVar(&m.Direction, "direction", "", "match: <> both ways, > from the network only")
	fs.StringVar(&m.SrcCIDR, "src", "", "match: source subnet instead of the whole network")
	fs.StringVar(&m.DstCIDR, "dst", "", "match: destination subnet")
	fs.StringVar(&m.SrcPorts, "src-port", "", "match: source port or range N-M")
	fs.StringVar(&m.DstPorts, "dst-port", "", "match: destination port or range N-M")
	fs.StringVar(&m.OtherVN, "other-vn", "", "match: traffic to/from this network only")
	fs.StringVar(&s.AnalyzerVN, "analyzer-vn", "", "the analyzer's network: of its left interface with --service-instance (default --vn); its routing instance with --juniper-header=false")
	fs.StringVar(&s.SnifferPort, "sniffer-port", "", "service instance: link this port of the sniffer VM to the instance")
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	if fs.NArg() > 0 {
		return usageErr("mirror create", fmt.Sprintf("unexpected argument %q", fs.Arg(0)))
	}
	analyzer.JuniperHeader = juniper.v
	if s.Name == "" {
		return usageErr("mirror", "--name is required")
	}
	if err := s.ChooseKind(si, perPort); err != nil {
		return usageErr("mirror", err.Error())
	}
	var err error
	if s.Project, err = provision.ParseProject(a.project); err != nil {
		return usageErr("mirror", err.Error())
	}
	if err := s.Check(); err != nil {
		return usageErr("mirror", err.Error())
	}
	p, err := a.provisioner()
	if err != nil {
		return fail("mirror", err)
	}
	p.Wait = wait
	ctx, stop := signalContext()
	defer stop()
	res, err := p.Create(ctx, s)
	if err != nil {
		return fail("mirror", fmt.Errorf("create mirror %s: %w", s.Name, err))
	}
	own, _ := a.credentialsProject(ctx) // only for a note
	provision.PrintCreated(os.Stdout, os.Stderr, s.Name, res, own, a.dryRun)
	return exitOK
}

// registerScope declares the flag that widens list and delete to every
// project; --project is an API flag.
func registerScope(fs *pflag.FlagSet, s *provision.Scope) {
	fs.BoolVar(&s.All, "all-projects", false, "look in every project the credentials can read (default: --project, else the credentials' project)")
}

func mirrorList(args []string) int {
	fs := newFlagSet("mirror list", mirrorListUsage)
	var (
		a       apiFlags
		scope   provision.Scope
		format  string
		jsonOut bool
	)
	a.register(fs, false)
	registerScope(fs, &scope)
	fs.StringVarP(&format, "output", "o", "table", "output: table (for people) or json (every check, for scripts)")
	fs.BoolVar(&jsonOut, "json", false, "the same as -o json")
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	if fs.NArg() > 0 {
		return usageErr("mirror list", fmt.Sprintf("unexpected argument %q", fs.Arg(0)))
	}
	if jsonOut {
		if fs.Changed("output") && format != "json" {
			return usageErr("mirror list", "--json and -o "+format+" contradict each other")
		}
		format = "json"
	}
	if format != "table" && format != "json" {
		return usageErr("mirror", fmt.Sprintf("-o %q: want table or json", format))
	}
	scope.Project = a.project
	if err := scope.Check(); err != nil {
		return usageErr("mirror", err.Error())
	}
	p, err := a.provisioner()
	if err != nil {
		return fail("mirror", err)
	}
	ctx, stop := signalContext()
	defer stop()
	projects, err := scope.Projects(ctx, a.credentialsProject)
	if err != nil {
		return fail("mirror", err)
	}
	ms, err := p.List(ctx, projects)
	if err != nil {
		return fail("mirror", fmt.Errorf("list mirrors: %w", err))
	}
	print := provision.Print
	if format == "json" {
		print = provision.PrintJSON
	}
	if err := print(os.Stdout, ms); err != nil {
		return fail("mirror", err)
	}
	return exitOK
}

func mirrorDelete(args []string) int {
	fs := newFlagSet("mirror delete", mirrorDeleteUsage)
	var (
		a     apiFlags
		scope provision.Scope
		wait  time.Duration
	)
	a.register(fs, true)
	registerScope(fs, &scope)
	fs.DurationVar(&wait, "wait", provision.DefaultWait, "how long to wait for the schema transformer to remove a policy mirror's rules")
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	if fs.NArg() != 1 {
		return usageErr("mirror delete", "want one NAME (see vrsniff mirror delete --help)")
	}
	name := fs.Arg(0)
	scope.Project = a.project
	if err := scope.Check(); err != nil {
		return usageErr("mirror", err.Error())
	}
	p, err := a.provisioner()
	if err != nil {
		return fail("mirror", err)
	}
	p.Wait = wait
	ctx, stop := signalContext()
	defer stop()
	projects, err := scope.Projects(ctx, a.credentialsProject)
	if err != nil {
		return fail("mirror", err)
	}
	notes, err := p.Delete(ctx, projects, name)
	for _, n := range notes {
		fmt.Fprintf(os.Stderr, "note: %s\n", n)
	}
	if err != nil {
		return fail("mirror", err)
	}
	if !a.dryRun {
		fmt.Printf("deleted mirror %s\n", name)
	}
	return exitOK
}

func mirrorHeat(args []string) int {
	fs := newFlagSet("mirror heat", mirrorHeatUsage)
	var (
		o       heat.Options
		out     string
		project string
	)
	fs.StringVar((*string)(&o.Mirror.Kind), "mode", string(provision.KindPolicy), "what the vRouters mirror to: policy (the sniffer's capture IP) or service-instance (an analyzer service instance)")
	fs.StringVar(&o.Target, "target", heat.TargetNetwork, "what is mirrored: network (an existing one; the stack outputs the mirror create command that attaches it), "+
		"port (a workload port the stack creates on it) or new-network (a network the stack creates)")
	fs.StringVar(&o.Mirror.Name, "name", "sniffer", "mirror name; objects are named vrsniff-NAME")
	fs.StringVar(&o.Mirror.VN, "vn", "", "default for target_network: its UUID or domain:project:name")
	fs.StringVar(&project, "project", "", "default for project_fq_name, domain:project (default: the project of --vn)")
	fs.StringVar(&o.Image, "image", "", "default for the image parameter")
	fs.StringVar(&o.Flavor, "flavor", "", "default for the flavor parameter")
	fs.StringVar(&o.VrsniffURL, "vrsniff-url", "", "default for the vrsniff_url parameter (where the VM downloads vrsniff)")
	fs.StringVar(&o.VrsniffSHA256, "vrsniff-sha256", "", "default for the vrsniff_sha256 parameter (the binary's SHA-256 from SHA256SUMS; the VM refuses a binary that differs)")
	fs.StringVarP(&out, "output", "o", "-", "output `file`, - for stdout")
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	if fs.NArg() > 0 {
		return usageErr("mirror heat", fmt.Sprintf("unexpected argument %q", fs.Arg(0)))
	}
	if project != "" {
		o.Mirror.Project = strings.Split(project, ":") // checked by Template
	}
	b, err := heat.Template(o)
	if err != nil {
		return usageErr("mirror", err.Error())
	}
	if out == "-" {
		_, err = os.Stdout.Write(b)
	} else if err = os.WriteFile(out, b, 0o644); err != nil {
		err = fmt.Errorf("write %s: %w", out, err)
	}
	if err != nil {
		return fail("mirror", err)
	}
	return exitOK
}
