// Package deploy holds the files that install vrsniff on a sniffer VM: the
// systemd unit, the default settings and a cloud-init snippet that carries
// both. The Heat template of `vrsniff mirror heat` boots its sniffer VM with
// the same snippet.
package deploy

import _ "embed"

// CloudInit is cloud-init.yaml: it installs the binary from DefaultURL
// when its SHA-256 is DefaultSHA256 (edit both), writes Settings and Unit, makes a token and starts the service.
//
//go:embed cloud-init.yaml
var CloudInit string

// Unit is vrsniff.service.
//
//go:embed vrsniff.service
var Unit string

// Settings is vrsniff.yaml, the daemon's default settings.
//
//go:embed vrsniff.yaml
var Settings string

// Values in CloudInit meant to be replaced for a given VM.
const (
	DefaultURL = "https://downloads.example.com/vrsniff/latest/vrsniff-linux-amd64"
	// DefaultSHA256 is no SHA-256: the install script refuses to run
	// until it is replaced by the binary's (from the release's SHA256SUMS).
	DefaultSHA256    = "SHA256-OF-THE-BINARY"
	DefaultInterface = "i: ens4"
)
