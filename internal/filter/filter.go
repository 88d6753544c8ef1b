// Package filter selects decoded mirror packets by their metadata and by a
// tcpdump expression applied to the inner frame.
package filter

import (
	"context"
	"fmt"
	"net/url"
	"strings"

	"github.com/gopacket/gopacket/layers"
	"golang.org/x/net/bpf"

	"github.com/vrsniff/vrsniff/internal/mirror"
)

// Options are the filter settings as the user gives them; empty means any.
//
// A VN pattern with a ':' is a glob matched against the fully qualified
// name (default-domain:admin:vn-web, *:admin:vn-web); one without a ':' is
// matched against the last ':'-separated part of the name, the network's
// own name (vn-web, vn-*). Globs are path.Match's, except that '*' and '?'
// also match '/': names are arbitrary bytes (spaces, UTF-8, '/'), and '\'
// makes a character literal. An absent name matches no pattern.
type Options struct {
	VN        string // pattern matched against the source or the destination VN
	SrcVN     string // pattern for the source VN
	DstVN     string // pattern for the destination VN
	Direction string // "ingress", "egress" or ""
	BPF       string // tcpdump syntax, applied to the inner Ethernet frame
}

// Filter decides whether a decoded packet is kept. The zero value keeps
// everything. A Filter is not safe for concurrent use (the BPF machine is
// shared); give each goroutine its own.
type Filter struct {
	opts         Options
	vn, src, dst vnPattern
	dir          mirror.Direction
	vm           *bpf.VM
}

// New checks the options and compiles the BPF expression within the
// limits MaxExprLen, MaxTerms, MaxInstructions and CompileTimeout; an
// expression over them gives an error wrapping ErrTooComplex.
func New(o Options) (*Filter, error) {
	f := &Filter{opts: o}
	var err error
	if f.vn, err = compileVN(o.VN); err != nil {
		return nil, err
	}
	if f.src, err = compileVN(o.SrcVN); err != nil {
		return nil, err
	}
	if f.dst, err = compileVN(o.DstVN); err != nil {
		return nil, err
	}
	if o.Direction != "" {
		d, ok := mirror.ParseDirection(o.Direction)
		if !ok {
			return nil, fmt.Errorf("direction %q: want ingress or egress", o.Direction)
		}
		f.dir = d
	}
	if o.BPF != "" {
		ctx, cancel := context.WithTimeout(context.Background(), CompileTimeout)
		vm, err := compile(ctx, o.BPF)
		cancel()
		if err != nil {
			return nil, err
		}
		f.vm = vm
	}
	return f, nil
}

// FromQuery builds a filter from URL query parameters vn, src_vn, dst_vn,
// direction and bpf, as the HTTP stream and the extcap use them; the VN
// patterns work as in Options (?vn=vn-web).
func FromQuery(q url.Values) (*Filter, error) {
	return New(Options{
		VN: q.Get("vn"), SrcVN: q.Get("src_vn"), DstVN: q.Get("dst_vn"),
		Direction: q.Get("direction"), BPF: q.Get("bpf"),
	})
}

// Query is the inverse of FromQuery.
func (o Options) Query() url.Values {
	q := url.Values{}
	for k, v := range map[string]string{"vn": o.VN, "src_vn": o.SrcVN, "dst_vn": o.DstVN, "direction": o.Direction, "bpf": o.BPF} {
		if v != "" {
			q.Set(k, v)
		}
	}
	return q
}

// Options returns the settings the filter was made from.
func (f *Filter) Options() Options { return f.opts }

// Match reports whether p, already decoded, passes the filter.
func (f *Filter) Match(p *mirror.Packet) bool {
	if f == nil {
		return true
	}
	m := &p.Meta
	if f.opts.VN != "" && !f.vn.match(m.SrcVN) && !f.vn.match(m.DstVN) {
		return false
	}
	if f.opts.SrcVN != "" && !f.src.match(m.SrcVN) {
		return false
	}
	if f.opts.DstVN != "" && !f.dst.match(m.DstVN) {
		return false
	}
	if f.dir != mirror.DirUnknown && m.Direction != f.dir {
		return false
	}
	if f.vm != nil {
		frame := p.Frame
		if p.Mode == mirror.ModeOther && p.LinkType != layers.LinkTypeEthernet {
			return false // the expression was compiled for Ethernet
		}
		n, err := f.vm.Run(frame)
		if err != nil || n == 0 {
			return false
		}
	}
	return true
}

// MayMatchVNs reports whether a packet from VN src to VN dst can pass the
// filter's VN patterns, whatever else it holds: how a reader decides from
// a stored file's VN pair counts whether to read it. A nil Filter, or one
// without VN patterns, gives true. An empty name stands for an absent one
// too, so it is kept where either could match.
func (f *Filter) MayMatchVNs(src, dst string) bool {
	if f == nil {
		return true
	}
	// A stored pair's names are text: "" was an absent or an empty name.
	may := func(v vnPattern, pattern, name string) bool {
		return pattern == "" || v.match([]byte(name))
	}
	if f.opts.VN != "" && !may(f.vn, f.opts.VN, src) && !may(f.vn, f.opts.VN, dst) {
		return false
	}
	return may(f.src, f.opts.SrcVN, src) && may(f.dst, f.opts.DstVN, dst)
}

// String writes the options as the command-line flags that give them
// (--vn vn-web --bpf 'tcp port 80'), "" for a filter that keeps
// everything: how a capture file records the filter in effect.
func (o Options) String() string {
	var b strings.Builder
	for _, f := range [...]struct{ flag, v string }{
		{"vn", o.VN}, {"src-vn", o.SrcVN}, {"dst-vn", o.DstVN}, {"direction", o.Direction}, {"bpf", o.BPF},
	} {
		if f.v == "" {
			continue
		}
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteString("--" + f.flag + " " + shellQuote(f.v))
	}
	return b.String()
}

// shellQuote quotes s for a POSIX shell when it holds anything but
// letters, digits and -_.:/
func shellQuote(s string) string {
	plain := strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_.:/", r))
	}) < 0
	if plain {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
