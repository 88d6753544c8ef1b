package server

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"net/url"
	"strconv"
	"time"
)

// downloadLink is the path at which the file name can be downloaded. With a
// token it is signed, so that a link (on the page, in a browser's history,
// in a proxy's log) never holds the token:
//
//	/api/captures/NAME?expires=UNIX&sig=MAC
//
// where UNIX is when the link stops working (LinkTTL from now, in seconds
// since 1970) and MAC is base64url (unpadded) HMAC-SHA256 of "NAME\nUNIX"
// under a key drawn at start: links end with the process, and grant nothing
// but that download.
func (s *Server) downloadLink(name string) string {
	p := "/api/captures/" + url.PathEscape(name)
	if s.opts.Token == "" {
		return p
	}
	exp := strconv.FormatInt(s.now().Add(LinkTTL).Unix(), 10)
	return p + "?expires=" + exp + "&sig=" + s.linkMAC(name, exp)
}

func (s *Server) linkMAC(name, expires string) string {
	m := hmac.New(sha256.New, s.linkKey)
	m.Write([]byte(name))
	m.Write([]byte{'\n'})
	m.Write([]byte(expires))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// checkLink reports whether sig signs a download of name valid until
// expires, which has not passed.
func (s *Server) checkLink(name, expires, sig string) bool {
	exp, err := strconv.ParseInt(expires, 10, 64)
	if err != nil || s.now().After(time.Unix(exp, 0)) {
		return false
	}
	return hmac.Equal([]byte(sig), []byte(s.linkMAC(name, expires)))
}
