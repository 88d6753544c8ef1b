package testenv

import (
	"context"
	"strings"
	"testing"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// A private cluster's RGW goes down, refusing requests, and comes back
// with the objects stored before.
func TestCeph(t *testing.T) {
	c := NewCeph(t)
	ctx := context.Background()
	put := func() error {
		_, err := c.client(t).PutObject(ctx, c.Bucket, "k", strings.NewReader("v"), 1, minio.PutObjectOptions{})
		return err
	}
	if err := put(); err != nil {
		t.Fatal(err)
	}
	c.StopRGW(t)
	down, err := minio.New(c.host(), &minio.Options{Creds: credentials.NewStaticV4(c.AccessKey, c.SecretKey, ""), Region: c.Region, MaxRetries: 1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := down.PutObject(ctx, c.Bucket, "k", strings.NewReader("v"), 1, minio.PutObjectOptions{}); err == nil {
		t.Fatal("put succeeded with RGW down")
	}
	c.StartRGW(t)
	o, err := c.client(t).StatObject(ctx, c.Bucket, "k", minio.StatObjectOptions{})
	if err != nil || o.Size != 1 {
		t.Fatalf("after the restart: %+v, %v", o, err)
	}
}
