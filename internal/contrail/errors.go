package contrail

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Sentinel errors that an *APIError matches with errors.Is, so that callers
// can react to the kind of failure without looking at status codes.
var (
	ErrExists       = errors.New("already exists or still in use") // 409
	ErrNotFound     = errors.New("not found")                      // 404
	ErrUnauthorized = errors.New("authentication failed")          // 401
	ErrForbidden    = errors.New("permission denied")              // 403
	ErrBadRequest   = errors.New("rejected by the server")         // 400
)

// APIError is a non-2xx answer of the config API or of Keystone.
type APIError struct {
	Method  string // HTTP method
	Path    string // request path, without query and host
	Status  int    // HTTP status code
	Message string // the server's explanation, cleaned up for display
}

func (e *APIError) Error() string {
	var hint string
	switch e.Status {
	case http.StatusConflict:
		hint = "conflict (the object already exists, or is still referenced)"
	case http.StatusNotFound:
		hint = "not found"
	case http.StatusUnauthorized:
		hint = "authentication failed: check the credentials (clouds.yaml / OS_* variables)"
	case http.StatusForbidden:
		hint = "permission denied: the user lacks the role for this operation"
	case http.StatusBadRequest:
		hint = "rejected by the server"
	case http.StatusPreconditionFailed:
		hint = "quota exceeded"
	default:
		hint = http.StatusText(e.Status)
	}
	s := fmt.Sprintf("%s %s: %d %s", e.Method, e.Path, e.Status, hint)
	if e.Message != "" {
		s += ": " + e.Message
	}
	return s
}

// Is lets errors.Is match an APIError against the sentinel errors.
func (e *APIError) Is(target error) bool {
	switch target {
	case ErrExists:
		return e.Status == http.StatusConflict
	case ErrNotFound:
		return e.Status == http.StatusNotFound
	case ErrUnauthorized:
		return e.Status == http.StatusUnauthorized
	case ErrForbidden:
		return e.Status == http.StatusForbidden
	case ErrBadRequest:
		return e.Status == http.StatusBadRequest
	}
	return false
}

// maxMessage bounds what an error body contributes to an error string: some
// servers answer with whole HTML pages or tracebacks.
const maxMessage = 300

// ParseErrorBody extracts a one-line, printable explanation from an error
// response body. The config API answers in plain text ("Bad property ..."),
// Keystone and proxies in JSON ({"error": {"message": ...}} or
// {"message": ...}); anything else is shown as text, shortened.
func ParseErrorBody(body []byte) string {
	msg := strings.TrimSpace(string(body))
	if strings.HasPrefix(msg, "{") {
		var v struct {
			Message string `json:"message"`
			Error   *struct {
				Message string `json:"message"`
				Title   string `json:"title"`
			} `json:"error"`
		}
		if json.Unmarshal(body, &v) == nil {
			switch {
			case v.Error != nil && v.Error.Message != "":
				msg = v.Error.Message
			case v.Error != nil && v.Error.Title != "":
				msg = v.Error.Title
			case v.Message != "":
				msg = v.Message
			}
		}
	}
	var b strings.Builder
	space := false
	for _, r := range msg {
		if r == utf8RuneError || unicode.IsSpace(r) || !unicode.IsPrint(r) {
			space = true
			continue
		}
		if space && b.Len() > 0 {
			b.WriteByte(' ')
		}
		space = false
		b.WriteRune(r)
	}
	return shorten(b.String())
}

// shorten keeps the head and the tail of a long message: the config API
// puts the whole value it refused in the middle ("Bad property in create:
// Error validating property network_policy_entries value {...}") and the
// reason, which names the field, at the end.
func shorten(s string) string {
	if len(s) <= maxMessage {
		return s
	}
	head, tail := maxMessage/3, maxMessage-maxMessage/3
	for head > 0 && !utf8.RuneStart(s[head]) {
		head--
	}
	t := len(s) - tail
	for t < len(s) && !utf8.RuneStart(s[t]) {
		t++
	}
	return s[:head] + " ... " + s[t:]
}

const utf8RuneError = '\uFFFD'
