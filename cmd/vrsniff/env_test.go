package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
)

// TestEnvPrecedence: a flag on the command line wins over its VRSNIFF_
// variable, which wins over the YAML file, which wins over the default.
func TestEnvPrecedence(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "c.yaml")
	if err := os.WriteFile(cfg, []byte("rotate-size: 10M\nrotate-every: 5m\ndir: /yaml\nmirror-vlan: 7\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	newFS := func() (*pflag.FlagSet, *sizeFlag, *time.Duration, *string, *decoderFlags, *string) {
		fs := newFlagSet("x", "")
		var dec decoderFlags
		dec.register(fs)
		size := sizeFlag(1)
		fs.Var(&size, "rotate-size", "")
		every := fs.Duration("rotate-every", time.Hour, "")
		dir := fs.String("dir", "/default", "")
		format := fs.String("format", "pcapng", "")
		fs.String("config", "", "")
		return fs, &size, every, dir, &dec, format
	}
	fs, size, every, dir, dec, format := newFS()
	args := []string{"--config", cfg, "--dir", "/flag"}
	env := []string{"VRSNIFF_ROTATE_SIZE=20M", "VRSNIFF_DIR=/env", "VRSNIFF_PORT=9000,9001", "VRSNIFF_FORMAT=", "PATH=/bin", "VRSNIFF_SHARED=/x"}
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	if err := presetFlags(fs, env); err != nil {
		t.Fatal(err)
	}
	tr, err := dec.traffic.parse()
	if err != nil {
		t.Fatal(err)
	}
	if *size != 20<<20 { // env over YAML
		t.Errorf("rotate-size %d, want VRSNIFF_ROTATE_SIZE's 20M", *size)
	}
	if *dir != "/flag" { // flag over env and YAML
		t.Errorf("dir %s, want the flag's", *dir)
	}
	if *every != 5*time.Minute { // YAML over default
		t.Errorf("rotate-every %v, want the file's", *every)
	}
	if *format != "pcapng" { // empty counts as unset
		t.Errorf("format %q, want the default", *format)
	}
	if len(tr.Ports) != 2 || tr.Ports[0] != 9000 || tr.Ports[1] != 9001 || tr.MirrorVLAN != 7 {
		t.Errorf("traffic %+v: want VRSNIFF_PORT's ports and the file's VLAN", tr)
	}

	// VRSNIFF_CONFIG names the file when --config does not.
	fs, size, _, dir, _, _ = newFS()
	if err := presetFlags(fs, []string{"VRSNIFF_CONFIG=" + cfg}); err != nil {
		t.Fatal(err)
	}
	if *size != 10<<20 || *dir != "/yaml" {
		t.Errorf("with VRSNIFF_CONFIG: rotate-size %d dir %s, want the file's", *size, *dir)
	}
	// --config wins over VRSNIFF_CONFIG.
	fs, _, _, _, _, _ = newFS()
	if err := fs.Parse([]string{"--config", cfg}); err != nil {
		t.Fatal(err)
	}
	if err := presetFlags(fs, []string{"VRSNIFF_CONFIG=/no/such/file"}); err != nil {
		t.Errorf("--config did not win over VRSNIFF_CONFIG: %v", err)
	}

	for envVar, want := range map[string]string{
		"VRSNIFF_ROTATE_SIZ=1M":        "VRSNIFF_ROTATE_SIZ names no flag",
		"VRSNIFF_ROTATE_SIZE=lots":     "VRSNIFF_ROTATE_SIZE: ",
		"VRSNIFF_CONFIG=/no/such/file": "/no/such/file",
	} {
		fs, _, _, _, _, _ := newFS()
		if err := presetFlags(fs, []string{envVar}); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: got %v, want an error containing %q", envVar, err, want)
		}
	}
}

// Every flag of vrsniff capture has its variable, and the mapping is the
// documented one.
func TestFlagEnv(t *testing.T) {
	for flagName, want := range map[string]string{
		"rotate-size": "VRSNIFF_ROTATE_SIZE", "i": "VRSNIFF_I", "token-file": "VRSNIFF_TOKEN_FILE", "config": "VRSNIFF_CONFIG",
	} {
		if got := flagEnv(flagName); got != want {
			t.Errorf("flagEnv(%q) = %q, want %q", flagName, got, want)
		}
	}
}
