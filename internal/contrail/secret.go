package contrail

import "log/slog"

// Secret holds a password or a token. It prints, logs and marshals as a
// fixed placeholder so that it cannot leak through fmt, log/slog or JSON
// dumps of a configuration; use string(s) where the value is really needed.
type Secret string

const redacted = "[REDACTED]"

// String implements fmt.Stringer.
func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return redacted
}

// GoString implements fmt.GoStringer, used by %#v.
func (s Secret) GoString() string { return `"` + s.String() + `"` }

// LogValue implements slog.LogValuer.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }

// MarshalText implements encoding.TextMarshaler (and so JSON and YAML).
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }
