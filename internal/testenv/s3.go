package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// S3Endpoint is a real S3 engine the tests use: Ceph RGW on 127.0.0.1,
// started by scripts/ceph-rgw.sh (.ci/run starts it for CI).
type S3Endpoint struct {
	URL       string // http://127.0.0.1:PORT
	AccessKey string
	SecretKey string
	Region    string
	Bucket    string // a bucket of the test's own, empty at the start
}

// S3 returns the engine named by $VRSNIFF_TEST_S3 (its URL; the keys are
// $VRSNIFF_TEST_S3_KEY and $VRSNIFF_TEST_S3_SECRET, scripts/ceph-rgw.sh's
// by default) with a new bucket that is emptied and removed when the test
// ends. Without the engine the test fails under CI=true, where .ci/run
// starts one, and is skipped elsewhere with how to start it.
func S3(t testing.TB) S3Endpoint {
	t.Helper()
	e := S3Endpoint{URL: os.Getenv("VRSNIFF_TEST_S3"), AccessKey: os.Getenv("VRSNIFF_TEST_S3_KEY"),
		SecretKey: os.Getenv("VRSNIFF_TEST_S3_SECRET"), Region: "us-east-1"}
	if e.AccessKey == "" {
		e.AccessKey, e.SecretKey = "vrsniff", "vrsniffsecret"
	}
	missing := func(why string) {
		t.Helper()
		if os.Getenv("CI") == "true" {
			t.Fatalf("S3 engine: %s (CI starts Ceph RGW with scripts/ceph-rgw.sh and sets VRSNIFF_TEST_S3)", why)
		}
		t.Skipf("S3 engine: %s; start one with scripts/ceph-rgw.sh and set VRSNIFF_TEST_S3=http://127.0.0.1:17480", why)
	}
	if e.URL == "" {
		missing("VRSNIFF_TEST_S3 is not set")
	}
	u, err := url.Parse(e.URL)
	if err != nil || u.Host == "" {
		t.Fatalf("VRSNIFF_TEST_S3=%q: want http://HOST:PORT", e.URL)
	}
	if c, err := net.DialTimeout("tcp", u.Host, 2*time.Second); err != nil {
		missing(err.Error())
	} else {
		c.Close()
	}
	e.Bucket = newBucket(t, e, true)
	return e
}

// client returns a client of e's engine.
func (e S3Endpoint) client(t testing.TB) *minio.Client {
	t.Helper()
	u, err := url.Parse(e.URL)
	if err != nil {
		t.Fatal(err)
	}
	cl, err := minio.New(u.Host, &minio.Options{Creds: credentials.NewStaticV4(e.AccessKey, e.SecretKey, ""),
		Secure: u.Scheme == "https", Region: e.Region})
	if err != nil {
		t.Fatalf("S3 client: %v", err)
	}
	return cl
}

// newBucket makes a bucket with a random name on e's engine, with
// cleanup emptied and removed when the test ends, and returns its name.
func newBucket(t testing.TB, e S3Endpoint, cleanup bool) string {
	t.Helper()
	cl := e.client(t)
	var b [6]byte
	rand.Read(b[:])
	bucket := "t-" + hex.EncodeToString(b[:])
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := cl.MakeBucket(ctx, bucket, minio.MakeBucketOptions{Region: e.Region}); err != nil {
		t.Fatalf("make bucket %s: %v", bucket, err)
	}
	if !cleanup {
		return bucket
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		for o := range cl.ListObjects(ctx, bucket, minio.ListObjectsOptions{Recursive: true}) {
			if o.Err == nil {
				cl.RemoveObject(ctx, bucket, o.Key, minio.RemoveObjectOptions{})
			}
		}
		for u := range cl.ListIncompleteUploads(ctx, bucket, "", true) {
			if u.Err == nil {
				cl.RemoveIncompleteUpload(ctx, bucket, u.Key)
			}
		}
		cl.RemoveBucket(ctx, bucket)
	})
	return bucket
}

// IncompleteUploads lists the keys of the multipart uploads begun and
// neither completed nor aborted in e's bucket under prefix. A failed list
// fails the test.
func (e S3Endpoint) IncompleteUploads(t testing.TB, prefix string) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var keys []string
	for u := range e.client(t).ListIncompleteUploads(ctx, e.Bucket, prefix, true) {
		if u.Err != nil {
			t.Fatalf("list incomplete uploads under %s/%s: %v", e.Bucket, prefix, u.Err)
		}
		keys = append(keys, u.Key)
	}
	return keys
}
