package extcap

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A token file that other users can read is refused before anything is
// sent, and a password in the server URL never shows in a message.
func TestRemoteSecrets(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := os.WriteFile(fifo, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	tokenFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokenFile, []byte("0123456789abcdef\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(tokenFile, 0o644); err != nil {
		t.Fatal(err)
	}
	// Nothing listens there: a refusal that came after connecting would
	// read "connect to …".
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()

	pr := &Program{}
	_, err = run(t, pr, "--extcap-interface", Remote, "--capture", "--fifo", fifo, "--url", "http://"+addr, "--token_file", tokenFile)
	if err == nil || !strings.Contains(err.Error(), tokenFile+" is open to every user (mode 0644): chmod 600 "+tokenFile) {
		t.Errorf("open token file: %v", err)
	}

	const pass = "url-pa55word"
	for _, u := range []string{
		"http://user:" + pass + "@" + addr, // nothing listens any more
		"http://user:" + pass + "@host:port",
		"ftp://user:" + pass + "@host",
		"https://user:" + pass + "@",
	} {
		_, err := run(t, pr, "--extcap-interface", Remote, "--capture", "--fifo", fifo, "--url", u)
		if err == nil || strings.Contains(err.Error(), pass) || strings.Contains(err.Error(), "user") {
			t.Errorf("%s: %v", u, err)
		}
	}
	if b, _ := os.ReadFile(fifo); len(b) != 0 {
		t.Errorf("wrote %d bytes to the fifo on errors", len(b))
	}
}
