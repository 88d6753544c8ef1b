package mirror

import (
	"slices"
	"strconv"
	"strings"
	"testing"
)

func TestParseTraffic(t *testing.T) {
	for _, tc := range []struct {
		ports, vxlan, vlan string
		want               Traffic
	}{
		{"", "", "", Traffic{}},
		{"8099", "4789", "0", Traffic{Ports: []uint16{8099}, VXLANPorts: []uint16{4789}}},
		{" 8099 , 8100", "4790,4791", "999", Traffic{Ports: []uint16{8099, 8100}, VXLANPorts: []uint16{4790, 4791}, MirrorVLAN: 999}},
		{"auto", "", "", Traffic{Ports: []uint16{DefaultPort}, AutoPorts: true}},
		{"9000,auto", "", " 1", Traffic{Ports: []uint16{9000}, AutoPorts: true, MirrorVLAN: 1}},
		{"65535", "1", "4094", Traffic{Ports: []uint16{65535}, VXLANPorts: []uint16{1}, MirrorVLAN: 4094}},
	} {
		got, err := Flags.Parse(tc.ports, tc.vxlan, tc.vlan)
		if err != nil {
			t.Errorf("%q %q %q: %v", tc.ports, tc.vxlan, tc.vlan, err)
			continue
		}
		if !slices.Equal(got.Ports, tc.want.Ports) || !slices.Equal(got.VXLANPorts, tc.want.VXLANPorts) ||
			got.AutoPorts != tc.want.AutoPorts || got.MirrorVLAN != tc.want.MirrorVLAN {
			t.Errorf("%q %q %q: %+v, want %+v", tc.ports, tc.vxlan, tc.vlan, got, tc.want)
		}
	}
}

// Every bad value is refused with a message that names its flag, the way
// the command at hand spells it.
func TestParseTrafficErrors(t *testing.T) {
	names := TrafficFlags{Ports: "--port", VXLANPorts: "--vxlan_port", MirrorVLAN: "--mirror_vlan"}
	for _, tc := range []struct {
		ports, vxlan, vlan string
		want               string
	}{
		{"0", "", "", `--port "0": bad port "0"`},
		{"65536", "", "", `--port "65536": bad port "65536"`},
		{"-1", "", "", `bad port "-1"`},
		{"a", "", "", `--port "a": bad port "a"`},
		{"1,,2", "", "", `--port "1,,2": bad port ""`},
		{"8099,", "", "", `bad port ""`},
		{"8099;8100", "", "", `bad port "8099;8100"`},
		{"0x1f", "", "", `bad port "0x1f"`},
		{"AUTO", "", "", `--port "AUTO": bad port "AUTO"`},
		{"8099,8099", "", "", "--port: port 8099 given twice"},
		{"", "auto", "", `--vxlan_port "auto": bad port "auto"`},
		{"", "0", "", `--vxlan_port "0": bad port "0"`},
		{"", "4789,4789", "", "--vxlan_port: port 4789 given twice"},
		{"4789", "", "", "--port and --vxlan_port both have port 4789"},
		{"", "8099", "", "--port and --vxlan_port both have port 8099"},
		{"9000,auto", "9000", "", "--port and --vxlan_port both have port 9000"},
		{"", "", "4095", `--mirror_vlan 4095: want a VLAN ID, 1-4094 (0: none)`},
		{"", "", "5000", `--mirror_vlan 5000`},
		{"", "", "65536", `--mirror_vlan "65536"`},
		{"", "", "-1", `--mirror_vlan "-1"`},
		{"", "", "x", `--mirror_vlan "x": want a VLAN ID`},
	} {
		_, err := names.Parse(tc.ports, tc.vxlan, tc.vlan)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q %q %q: error %v, want %q", tc.ports, tc.vxlan, tc.vlan, err, tc.want)
		}
	}
}

func TestTrafficValidate(t *testing.T) {
	for _, tc := range []struct {
		t    Traffic
		want string // "" for valid
	}{
		{Traffic{}, ""},
		{Traffic{Ports: []uint16{9000}, VXLANPorts: []uint16{8099}, MirrorVLAN: 4094}, ""},
		{Traffic{Ports: []uint16{0}}, "--port: port 0"},
		{Traffic{VXLANPorts: []uint16{0}}, "--vxlan-port: port 0"},
		{Traffic{Ports: []uint16{1, 2, 1}}, "--port: port 1 given twice"},
		{Traffic{VXLANPorts: []uint16{DefaultPort}}, "--port and --vxlan-port both have port 8099"},
		{Traffic{MirrorVLAN: 4095}, "--mirror-vlan 4095"},
	} {
		err := tc.t.Validate()
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%+v: %v, want %q", tc.t, err, tc.want)
		}
	}
}

// FormatPorts writes what Parse reads back.
func TestFormatPorts(t *testing.T) {
	if s := FormatPorts([]uint16{8099, 9000}, true); s != "8099,9000,auto" {
		t.Errorf("FormatPorts: %q", s)
	}
	tr, err := Flags.Parse(FormatPorts([]uint16{8099, 9000}, true), FormatPorts([]uint16{4789}, false), "")
	if err != nil || !slices.Equal(tr.Ports, []uint16{8099, 9000}) || !tr.AutoPorts {
		t.Errorf("round trip: %+v, %v", tr, err)
	}
}

// The parser refuses with an error naming a flag, or returns a valid
// Traffic that says what the strings say.
func FuzzParseTraffic(f *testing.F) {
	f.Add("8099,auto", "4789", "999")
	f.Add(" 1 ,65535", "2", "0")
	f.Add("8099,8099", "", "4095")
	f.Add("", "8099", "x")
	f.Fuzz(func(t *testing.T, ports, vxlan, vlan string) {
		tr, err := Flags.Parse(ports, vxlan, vlan)
		if err != nil {
			msg := err.Error()
			if !strings.HasPrefix(msg, Flags.Ports) && !strings.HasPrefix(msg, Flags.VXLANPorts) && !strings.HasPrefix(msg, Flags.MirrorVLAN) {
				t.Fatalf("error names no flag: %v", err)
			}
			return
		}
		if err := tr.Validate(); err != nil {
			t.Fatalf("Parse returned an invalid Traffic %+v: %v", tr, err)
		}
		if tr.AutoPorts != slices.Contains(fields(ports), "auto") {
			t.Fatalf("%q: AutoPorts %v", ports, tr.AutoPorts)
		}
		// Each number given is a port, in order; defaults stand for
		// nothing given.
		var want []uint16
		for _, e := range fields(ports) {
			if n, err := strconv.Atoi(e); err == nil {
				want = append(want, uint16(n))
			}
		}
		if len(want) == 0 && tr.AutoPorts {
			want = []uint16{DefaultPort}
		}
		if !slices.Equal(tr.Ports, want) {
			t.Fatalf("%q: ports %v, want %v", ports, tr.Ports, want)
		}
		if n, _ := strconv.Atoi(strings.TrimSpace(vlan)); int(tr.MirrorVLAN) != n {
			t.Fatalf("%q: VLAN %d", vlan, tr.MirrorVLAN)
		}
		back, err := Flags.Parse(FormatPorts(tr.Ports, tr.AutoPorts), FormatPorts(tr.VXLANPorts, false), strconv.Itoa(int(tr.MirrorVLAN)))
		if err != nil || !slices.Equal(back.Ports, tr.Ports) || !slices.Equal(back.VXLANPorts, tr.VXLANPorts) || back.AutoPorts != tr.AutoPorts {
			t.Fatalf("%+v does not read back: %+v, %v", tr, back, err)
		}
	})
}

func fields(s string) []string {
	if strings.TrimSpace(s) == "" {
		return nil
	}
	fs := strings.Split(s, ",")
	for i := range fs {
		fs[i] = strings.TrimSpace(fs[i])
	}
	return fs
}
