package main

import (
	"context"
	"time"

	"github.com/vrsniff/vrsniff/internal/objstore"
	"github.com/vrsniff/vrsniff/internal/query"
)

// openFleet opens the bucket of the Wireshark fleet interface's store URL;
// the endpoint and keys come from the environment and the credentials
// file (docs/fleet.md, "Connecting to the bucket").
func openFleet(store string) (query.Bucket, query.Options, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	st, err := objstore.Open(ctx, objstore.Config{URL: store})
	if err != nil {
		return nil, query.Options{}, err
	}
	o := query.FleetOptions()
	o.Application = "vrsniff extcap"
	return st, o, nil
}
