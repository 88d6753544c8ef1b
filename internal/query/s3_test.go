package query_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/vrsniff/vrsniff/internal/filter"
	"github.com/vrsniff/vrsniff/internal/objstore"
	"github.com/vrsniff/vrsniff/internal/query"
	"github.com/vrsniff/vrsniff/internal/testenv"
)

// s3Bucket is a Bucket over a real S3 engine, the least that reads the
// layout: every manifest under v1/, range GETs.
type s3Bucket struct {
	cl     *minio.Client
	bucket string
}

func (b s3Bucket) Manifests(ctx context.Context, since, until time.Time, sniffers []string) ([]objstore.Manifest, error) {
	var ms []objstore.Manifest
	for o := range b.cl.ListObjects(ctx, b.bucket, minio.ListObjectsOptions{Prefix: objstore.LayoutVersion + "/", Recursive: true}) {
		if o.Err != nil {
			return nil, o.Err
		}
		if !strings.HasSuffix(o.Key, objstore.SuffixManifest) {
			continue
		}
		rc, err := b.cl.GetObject(ctx, b.bucket, o.Key, minio.GetObjectOptions{})
		if err != nil {
			return nil, err
		}
		var m objstore.Manifest
		err = json.NewDecoder(rc).Decode(&m)
		rc.Close()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", o.Key, err)
		}
		ms = append(ms, m)
	}
	return ms, nil
}

func (b s3Bucket) GetRange(ctx context.Context, key string, off, n int64) (io.ReadCloser, error) {
	var o minio.GetObjectOptions
	if err := o.SetRange(off, off+n-1); err != nil {
		return nil, err
	}
	return b.cl.GetObject(ctx, b.bucket, key, o)
}

// TestRunS3: the fleet uploaded to Ceph RGW answers as the bucket in
// memory does, reading the same bytes through the indexes.
func TestRunS3(t *testing.T) {
	e := testenv.S3(t)
	u, err := url.Parse(e.URL)
	if err != nil {
		t.Fatal(err)
	}
	cl, err := minio.New(u.Host, &minio.Options{Creds: credentials.NewStaticV4(e.AccessKey, e.SecretKey, ""),
		Secure: u.Scheme == "https", Region: e.Region})
	if err != nil {
		t.Fatal(err)
	}
	fl := newFleet(t)
	ctx := context.Background()
	for k, v := range fl.b.objs {
		if _, err := cl.PutObject(ctx, e.Bucket, k, bytes.NewReader(v), int64(len(v)), minio.PutObjectOptions{}); err != nil {
			t.Fatalf("put %s: %v", k, err)
		}
	}
	since, until := window()
	q := query.Query{Since: since, Until: until, Filter: filter.Options{BPF: "host 10.0.0.2 and port 80", VN: "vn-b"}}
	o := query.Options{OpenIndex: openFakeIndex, CommunityID: communityID, Application: "vrsniff"}
	var got bytes.Buffer
	st, err := query.Run(ctx, s3Bucket{cl, e.Bucket}, q, &got, o)
	if err != nil {
		t.Fatal(err)
	}
	want, wst := runQuery(t, fl, q, o)
	if !bytes.Equal(got.Bytes(), want) || st.Packets == 0 {
		t.Errorf("from S3: %d packets, %d bytes; in memory: %d packets, %d bytes", st.Packets, got.Len(), wst.Packets, len(want))
	}
	if st.PcapBytes != wst.PcapBytes || st.Ranges != wst.Ranges || st.Indexed != fl.files {
		t.Errorf("from S3: %d bytes in %d GETs, %d indexed; in memory: %d bytes in %d GETs", st.PcapBytes, st.Ranges, st.Indexed,
			wst.PcapBytes, wst.Ranges)
	}
}
