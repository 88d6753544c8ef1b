package extcap

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/vrsniff/vrsniff/internal/extract"
	"github.com/vrsniff/vrsniff/internal/filter"
	"github.com/vrsniff/vrsniff/internal/query"
)

// Fleet is the interface that reads what a fleet of sniffers stored in
// object storage: the packets of a time window from every sniffer, merged
// in time order (internal/query).
const Fleet = "vrsniff-fleet"

// fleetArgs are the fleet interface's own options in the capture dialog.
func fleetArgs() []arg {
	return []arg{
		{call: "store", display: "Store", typ: "string", tooltip: "Bucket and prefix the sniffers upload to, e.g. s3://captures/fleet (S3 credentials as vrsniff capture takes them)",
			extra: "{required=true}{placeholder=s3://bucket/prefix}{group=Store}"},
		{call: "since", display: "Since", typ: "string", tooltip: "Start of the time window: RFC 3339, now, or relative like -15m",
			extra: "{default=-15m}{group=Store}"},
		{call: "until", display: "Until", typ: "string", tooltip: "End of the time window (excluded): RFC 3339, now, or relative like -5m",
			extra: "{default=now}{group=Store}"},
		{call: "sniffer", display: "Sniffers", typ: "string", tooltip: "Sniffer ids, comma separated (all when empty)", extra: "{group=Store}"},
		{call: "community_id", display: "Community ID", typ: "string", tooltip: "Keep the packets of one flow, both directions (Community ID v1)",
			extra: "{group=Filter}"},
	}
}

// fleetQuery is the query the options ask for; now is the time relative
// times count from.
func (o Options) fleetQuery(flt filter.Options, now time.Time) (query.Query, error) {
	if o.Store == "" {
		return query.Query{}, errors.New("no store given (option store)")
	}
	since := o.Since
	if since == "" {
		since = "-15m"
	}
	from, to, err := extract.ParseWindow(since, o.Until, now)
	if err != nil {
		return query.Query{}, err
	}
	q := query.Query{Since: from, Until: to, Filter: flt, CommunityID: o.CommunityID}
	if o.Sniffer != "" {
		for s := range strings.SplitSeq(o.Sniffer, ",") {
			q.Sniffers = append(q.Sniffers, strings.TrimSpace(s))
		}
	}
	return q, nil
}

// captureFleet runs the query into the FIFO.
func (pr *Program) captureFleet(ctx context.Context, o Options, flt filter.Options) error {
	fifo, err := openFIFO(ctx, o.FIFO)
	if fifo == nil {
		return err
	}
	defer fifo.Close()
	q, err := o.fleetQuery(flt, time.Now())
	if err != nil {
		return err
	}
	b, qo, err := pr.OpenFleet(o.Store)
	if err != nil {
		return fmt.Errorf("store %s: %w", o.Store, err)
	}
	qo.Application = "vrsniff extcap"
	if _, err := query.Run(ctx, b, q, fifoWriter{fifo}, qo); err != nil {
		return stopErr(ctx, err)
	}
	return nil
}
