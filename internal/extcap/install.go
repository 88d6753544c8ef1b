package extcap

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
)

// LinkName is the file name Wireshark finds the program under; vrsniff
// acts as the extcap program when run under a name starting with it.
const LinkName = "vrsniff-extcap"

// PersonalDirs returns the personal extcap folders of a Wireshark version
// ("4.0.17"): Wireshark up to 4.0 looks in the configuration folder
// (~/.config/wireshark/extcap, or under $XDG_CONFIG_HOME), 4.1 and later in
// ~/.local/lib/wireshark/extcap. An unknown version ("") gets both.
func PersonalDirs(version, home, xdgConfig string) []string {
	if xdgConfig == "" {
		xdgConfig = filepath.Join(home, ".config")
	}
	old := filepath.Join(xdgConfig, "wireshark", "extcap")
	cur := filepath.Join(home, ".local", "lib", "wireshark", "extcap")
	m := versionRE.FindStringSubmatch(version)
	if m == nil {
		return []string{old, cur}
	}
	major, _ := strconv.Atoi(m[1])
	minor, _ := strconv.Atoi(m[2])
	if major < 4 || major == 4 && minor == 0 {
		return []string{old}
	}
	return []string{cur}
}

var versionRE = regexp.MustCompile(`(\d+)\.(\d+)(?:\.\d+)?`)

// WiresharkVersion asks tshark for the installed Wireshark version; "" when
// tshark is not there.
func WiresharkVersion() string {
	out, err := exec.Command("tshark", "--version").Output()
	if err != nil {
		return ""
	}
	// "TShark (Wireshark) 4.0.17 (Git v4.0.17 packaged as ...)"
	m := regexp.MustCompile(`\(Wireshark\) (\d+\.\d+\.\d+)`).FindSubmatch(out)
	if m == nil {
		return ""
	}
	return string(m[1])
}

// Install links exe into each folder under LinkName, creating the folders.
// An existing link is replaced; an existing regular file is left alone and
// reported. It returns the links it made.
func Install(exe string, dirs []string) ([]string, error) {
	exe, err := filepath.Abs(exe)
	if err != nil {
		return nil, err
	}
	var made []string
	for _, d := range dirs {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return made, fmt.Errorf("install: %w", err)
		}
		link := filepath.Join(d, LinkName)
		if fi, err := os.Lstat(link); err == nil {
			if fi.Mode()&fs.ModeSymlink == 0 {
				return made, fmt.Errorf("install: %s exists and is not a link: remove it first", link)
			}
			if err := os.Remove(link); err != nil {
				return made, fmt.Errorf("install: %w", err)
			}
		} else if !errors.Is(err, fs.ErrNotExist) {
			return made, fmt.Errorf("install: %w", err)
		}
		if err := os.Symlink(exe, link); err != nil {
			return made, fmt.Errorf("install: %w", err)
		}
		made = append(made, link)
	}
	return made, nil
}

// InstallSelf links the running binary (links resolved) into dir, or into
// the personal folders of the installed Wireshark version when dir is ""
// (PersonalDirs), and tells w each link it made and what to do next.
func InstallSelf(dir string, w io.Writer) error {
	exe, err := os.Executable()
	if err == nil {
		exe, err = filepath.EvalSymlinks(exe)
	}
	if err != nil {
		return fmt.Errorf("find the vrsniff binary: %w", err)
	}
	dirs := []string{dir}
	if dir == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return err
		}
		dirs = PersonalDirs(WiresharkVersion(), home, os.Getenv("XDG_CONFIG_HOME"))
	}
	links, err := Install(exe, dirs)
	for _, l := range links {
		fmt.Fprintf(w, "%s -> %s\n", l, exe)
	}
	if err != nil {
		return err
	}
	fmt.Fprintln(w, "restart Wireshark to see the vrsniff-remote and vrsniff-local interfaces")
	return nil
}
