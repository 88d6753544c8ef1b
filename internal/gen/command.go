package gen

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/gopacket/gopacket/layers"
	"github.com/vrsniff/vrsniff/internal/mirror"
)

// Command is what "vrsniff gen" is asked to write.
type Command struct {
	// Options are the generator's; Mix and LinkType are filled in from
	// Profile or MixSpec and from LinkTypeName.
	Options
	Count        int    // cases (mirrored frames); 0 with a Scenario: one run of it
	Profile      string // a name of Profiles, used when MixSpec is ""
	MixSpec      string // a mix in ParseMix's form, e.g. acl=3,port=1
	Format       string // pcap or pcapng
	Nanos        bool   // nanosecond timestamps in classic pcap
	LinkTypeName string // ether, sll, sll2, raw or mixed; "": ether for pcap, mixed for pcapng
	Out          string // the capture file; "-" is Write's stdout
	Truth        string // the expected results, one JSON object per line; "": none
}

var linkTypes = map[string]layers.LinkType{
	"ether": layers.LinkTypeEthernet,
	"sll":   layers.LinkTypeLinuxSLL,
	"sll2":  layers.LinkTypeLinuxSLL2,
	"raw":   layers.LinkTypeRaw,
	"mixed": 0,
}

// KindList lists the case kinds by name, comma-separated, for help texts.
func KindList() string {
	var ks []string
	for _, k := range Kinds() {
		ks = append(ks, k.String())
	}
	return strings.Join(ks, ", ")
}

// Prepare checks c and builds its generator. Its errors are the command
// line's.
func (c *Command) Prepare() (*Generator, Format, error) {
	var f Format
	switch c.Format {
	case "pcap":
		f = FormatPcap
		if c.Nanos {
			f = FormatPcapNanos
		}
	case "pcapng":
		f = FormatPcapNG
	default:
		return nil, 0, fmt.Errorf("unknown format %q: want pcap or pcapng", c.Format)
	}
	lt := c.LinkTypeName
	if lt == "" {
		lt = "mixed"
		if f != FormatPcapNG {
			lt = "ether"
		}
	}
	ltv, ok := linkTypes[lt]
	if !ok {
		return nil, 0, fmt.Errorf("unknown link type %q: want ether, sll, sll2, raw or mixed", lt)
	}
	if ltv == 0 && f != FormatPcapNG {
		return nil, 0, errors.New("a classic pcap file holds one link type: -linktype mixed needs -format pcapng")
	}
	if c.Count < 0 {
		return nil, 0, errors.New("negative count")
	}
	if c.MaxDist < 1 {
		return nil, 0, fmt.Errorf("reassembly distance %d: want 1..64", c.MaxDist)
	}
	m, ok := Profiles[c.Profile]
	if !ok {
		return nil, 0, fmt.Errorf("unknown profile %q (known: %s)", c.Profile, strings.Join(ProfileNames(), ", "))
	}
	if c.MixSpec != "" {
		var err error
		if m, err = ParseMix(c.MixSpec); err != nil {
			return nil, 0, err
		}
	}
	c.Mix, c.LinkType = m, ltv
	g, err := New(c.Options)
	if err == nil && c.Scenario != "" && c.Count == 0 {
		c.Count = g.SceneLen()
	}
	return g, f, err
}

// Write writes g's capture to c.Out (stdout when "-") and the expected
// results to c.Truth, and returns the line that sums the capture up.
func (c *Command) Write(g *Generator, f Format, stdout io.Writer) (string, error) {
	w := stdout
	var file, tf *os.File
	var err error
	if c.Out != "-" {
		if file, err = os.Create(c.Out); err != nil {
			return "", err
		}
		defer file.Close()
		w = file
	}
	var tw io.Writer
	if c.Truth != "" {
		if tf, err = os.Create(c.Truth); err != nil {
			return "", err
		}
		defer tf.Close()
		tw = tf
	}
	st, err := Write(w, tw, g, c.Count, f)
	if err == nil && file != nil {
		err = file.Close()
	}
	if err == nil && tf != nil {
		err = tf.Close()
	}
	if err != nil {
		return "", fmt.Errorf("%s: %w", c.Out, err)
	}
	from := "profile " + c.Profile
	if c.Scenario != "" {
		from = "scenario " + c.Scenario
	}
	line := fmt.Sprintf("%s: %d cases, %d packets (%d fragmented datagrams, %d malformed), %s, seed %d, %s",
		c.Out, st.Cases, st.Packets, st.Fragmented, st.Malformed, from, c.Seed, f)
	// The decoder needs to be told what it cannot guess: decap's defaults
	// are port 8099, VXLAN port 4789 and no mirror VLAN.
	var flags []string
	if p := c.Traffic.Ports; len(p) > 0 && p[0] != mirror.DefaultPort {
		flags = append(flags, fmt.Sprintf("--port %d", p[0]))
	}
	if p := c.Traffic.VXLANPorts; len(p) > 0 && p[0] != mirror.DefaultVXLANPort {
		flags = append(flags, fmt.Sprintf("--vxlan-port %d", p[0]))
	}
	if st.VLAN > 0 {
		flags = append(flags, fmt.Sprintf("--mirror-vlan %d", cmp.Or(c.Traffic.MirrorVLAN, DefaultMirrorVLAN)))
	}
	if len(flags) > 0 {
		line += "; decode it with vrsniff decap " + strings.Join(flags, " ")
	}
	return line, nil
}
