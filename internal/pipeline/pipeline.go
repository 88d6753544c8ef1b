// Package pipeline moves packets from a source through the decoder and the
// filter to the sinks, counting everything on the way.
package pipeline

import (
	"github.com/vrsniff/vrsniff/internal/mirror"
)

// Sink receives decoded packets that passed the filter. The packet and its
// slices are valid only during the call.
type Sink interface {
	WritePacket(p *mirror.Packet) error
}
