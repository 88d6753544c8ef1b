package testenv

import (
	"context"
	"net/url"
	"strings"
	"testing"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

func TestS3(t *testing.T) {
	e := S3(t)
	u, _ := url.Parse(e.URL)
	cl, err := minio.New(u.Host, &minio.Options{Creds: credentials.NewStaticV4(e.AccessKey, e.SecretKey, ""), Region: e.Region})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := cl.PutObject(ctx, e.Bucket, "a/b", strings.NewReader("hello"), 5, minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	var keys []string
	for o := range cl.ListObjects(ctx, e.Bucket, minio.ListObjectsOptions{Recursive: true}) {
		if o.Err != nil {
			t.Fatal(o.Err)
		}
		keys = append(keys, o.Key)
	}
	if len(keys) != 1 || keys[0] != "a/b" {
		t.Fatalf("listed %q, want [a/b]", keys)
	}
}
