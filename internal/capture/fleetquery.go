package capture

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/vrsniff/vrsniff/internal/query"
	"github.com/vrsniff/vrsniff/internal/server"
)

// fleetQuerier answers GET /api/query from a fleet's bucket.
type fleetQuerier struct {
	b query.Bucket
	o query.Options
}

var _ server.Querier = fleetQuerier{}

// newFleetQuerier reads b with the flow indexes the sniffers upload.
func newFleetQuerier(b query.Bucket, version string) fleetQuerier {
	o := query.FleetOptions()
	o.Application = "vrsniff " + version
	return fleetQuerier{b, o}
}

func (f fleetQuerier) Query(ctx context.Context, w io.Writer, q server.FleetQuery) (server.QueryStats, error) {
	st, err := query.Run(ctx, f.b, query.Query{Since: q.Since, Until: q.Until, Filter: q.Filter, Sniffers: q.Sniffers,
		CommunityID: q.CommunityID}, w, f.o)
	if errors.Is(err, query.ErrBadQuery) {
		err = fmt.Errorf("%w: %w", server.ErrBadQuery, err)
	}
	return server.QueryStats{Packets: st.Packets, Warnings: st.Extract.Warnings()}, err
}
