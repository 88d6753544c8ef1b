package objstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
)

// ErrNotFound is the error (through errors.Is) of an operation on a key
// that does not exist.
var ErrNotFound = errors.New("no such key")

// ErrRange is the error (through errors.Is) of GetRange from an offset at
// or past the end of the object.
var ErrRange = errors.New("range not satisfiable")

// Store is a bucket and a prefix on an S3 engine. Keys given to and
// returned by its methods are relative to the prefix. It uses the S3
// subset every engine serves (docs/fleet.md): PUT and multipart upload
// with Content-MD5 on every request that carries data and no streaming
// (aws-chunked) signatures, Range GET, ListObjectsV2, HEAD, DELETE and
// multi-delete. A Store is safe for concurrent use.
type Store struct {
	cl       *minio.Client
	core     minio.Core
	loc      Location
	endpoint string
	partSize int64
	pageSize int
}

// Object is what a list or a HEAD tells of an object.
type Object struct {
	Key          string    `json:"key"` // relative to the store's prefix
	Size         int64     `json:"size"`
	ETag         string    `json:"etag"` // without quotes
	LastModified time.Time `json:"last_modified"`
	ContentType  string    `json:"content_type,omitempty"` // Stat only
}

// Location is the bucket and prefix of the store.
func (s *Store) Location() Location { return s.loc }

// Endpoint is the URL of the S3 engine, "https://host:port".
func (s *Store) Endpoint() string { return s.endpoint }

func (s *Store) full(key string) string { return s.loc.Prefix + key }

func (s *Store) rel(key string) string { return strings.TrimPrefix(key, s.loc.Prefix) }

// fail wraps err with the operation and the key, and turns S3's "no such
// key" into ErrNotFound and "invalid range" into ErrRange.
func (s *Store) fail(op, key string, err error) error {
	var er minio.ErrorResponse
	if errors.As(err, &er) {
		switch {
		case er.Code == minio.NoSuchKey || er.StatusCode == http.StatusNotFound && er.Code != minio.NoSuchBucket:
			err = fmt.Errorf("%w (%s)", ErrNotFound, er.Code)
		case er.Code == minio.InvalidRange || er.StatusCode == http.StatusRequestedRangeNotSatisfiable:
			err = fmt.Errorf("%w (%s)", ErrRange, er.Code)
		}
	}
	return fmt.Errorf("s3 %s s3://%s/%s: %w", op, s.loc.Bucket, s.full(key), err)
}

func checkKey(key string) error {
	if key == "" || strings.HasPrefix(key, "/") {
		return fmt.Errorf("key %q: want a relative, non-empty key", key)
	}
	return nil
}

func (s *Store) putOptions(contentType string) minio.PutObjectOptions {
	// Content-MD5 on every part and no SHA-256 of the payload: the server
	// checks each part, and Swift's s3api (which refuses the aws-chunked
	// streaming signature minio-go would otherwise use over plain HTTP)
	// accepts the request. No CRC32C: not every engine knows it.
	return minio.PutObjectOptions{ContentType: contentType, PartSize: uint64(s.partSize),
		SendContentMd5: true, DisableContentSha256: true}
}

// PutFile uploads the file at path as key, as PutReader does.
func (s *Store) PutFile(ctx context.Context, key, path, contentType string) error {
	if err := checkKey(key); err != nil {
		return s.fail("put", key, err)
	}
	f, err := os.Open(path)
	if err != nil {
		return s.fail("put", key, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return s.fail("put", key, err)
	}
	if err := s.PutReader(ctx, key, f, st.Size(), contentType); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

// PutReader uploads size bytes read from r as key: in one PUT up to the
// part size (Config.PartSize), in a multipart upload of parts of that size
// above it. Every request carries its Content-MD5, so a part damaged on
// the way is refused by the server; a failed multipart upload is aborted.
// r is read once, in order.
func (s *Store) PutReader(ctx context.Context, key string, r io.Reader, size int64, contentType string) error {
	if err := checkKey(key); err != nil {
		return s.fail("put", key, err)
	}
	// r as an io.Reader only: minio-go would read a ReaderAt in parallel
	// sections without Content-MD5.
	_, err := s.cl.PutObject(ctx, s.loc.Bucket, s.full(key), struct{ io.Reader }{r}, size, s.putOptions(contentType))
	if err != nil {
		return s.fail("put", key, err)
	}
	return nil
}

// PutBytes uploads data as key in one PUT (up to the part size) or a
// multipart upload, with Content-MD5 as PutFile.
func (s *Store) PutBytes(ctx context.Context, key string, data []byte, contentType string) error {
	if err := checkKey(key); err != nil {
		return s.fail("put", key, err)
	}
	_, err := s.cl.PutObject(ctx, s.loc.Bucket, s.full(key), bytes.NewReader(data), int64(len(data)), s.putOptions(contentType))
	if err != nil {
		return s.fail("put", key, err)
	}
	return nil
}

// Get reads the whole object key, refusing one larger than max bytes.
func (s *Store) Get(ctx context.Context, key string, max int64) ([]byte, error) {
	if err := checkKey(key); err != nil {
		return nil, s.fail("get", key, err)
	}
	rc, info, _, err := s.core.GetObject(ctx, s.loc.Bucket, s.full(key), minio.GetObjectOptions{})
	if err != nil {
		return nil, s.fail("get", key, err)
	}
	defer rc.Close()
	if info.Size > max {
		return nil, s.fail("get", key, fmt.Errorf("%d bytes, more than the %d allowed", info.Size, max))
	}
	b, err := io.ReadAll(io.LimitReader(rc, max+1))
	switch {
	case err != nil:
		return nil, s.fail("get", key, err)
	case int64(len(b)) > max:
		return nil, s.fail("get", key, fmt.Errorf("more than the %d bytes allowed", max))
	case info.Size >= 0 && int64(len(b)) != info.Size:
		return nil, s.fail("get", key, fmt.Errorf("read %d of %d bytes", len(b), info.Size))
	}
	return b, nil
}

// GetRange reads n bytes of key from offset off (a Range GET). A range
// that runs past the end is cut at the end; one that starts at or past
// the end fails with ErrRange. The caller closes the reader.
func (s *Store) GetRange(ctx context.Context, key string, off, n int64) (io.ReadCloser, error) {
	if err := checkKey(key); err != nil {
		return nil, s.fail("get range", key, err)
	}
	if off < 0 || n <= 0 {
		return nil, s.fail("get range", key, fmt.Errorf("offset %d, length %d: want offset >= 0 and length > 0", off, n))
	}
	var o minio.GetObjectOptions
	if err := o.SetRange(off, off+n-1); err != nil {
		return nil, s.fail("get range", key, err)
	}
	rc, _, _, err := s.core.GetObject(ctx, s.loc.Bucket, s.full(key), o)
	if err != nil {
		return nil, s.fail(fmt.Sprintf("get range %d+%d", off, n), key, err)
	}
	return rc, nil
}

// Stat reads the object's size, ETag, time and content type (HEAD).
func (s *Store) Stat(ctx context.Context, key string) (Object, error) {
	if err := checkKey(key); err != nil {
		return Object{}, s.fail("stat", key, err)
	}
	oi, err := s.cl.StatObject(ctx, s.loc.Bucket, s.full(key), minio.StatObjectOptions{})
	if err != nil {
		return Object{}, s.fail("stat", key, err)
	}
	o := s.object(oi)
	o.ContentType = oi.ContentType
	return o, nil
}

func (s *Store) object(oi minio.ObjectInfo) Object {
	return Object{Key: s.rel(oi.Key), Size: oi.Size, ETag: strings.Trim(oi.ETag, `"`), LastModified: oi.LastModified}
}

// List yields every object whose key starts with prefix, at any depth, in
// key order, page by page (Config.ListPageSize keys a request). It stops
// at the first error, which it yields.
func (s *Store) List(ctx context.Context, prefix string) iter.Seq2[Object, error] {
	return func(yield func(Object, error) bool) {
		ctx, cancel := context.WithCancel(ctx)
		defer cancel() // ends minio-go's listing goroutine when the loop breaks
		for oi := range s.cl.ListObjects(ctx, s.loc.Bucket, minio.ListObjectsOptions{
			Prefix: s.full(prefix), Recursive: true, MaxKeys: s.pageSize}) {
			if oi.Err != nil {
				yield(Object{}, s.fail("list", prefix, oi.Err))
				return
			}
			if !yield(s.object(oi), nil) {
				return
			}
		}
	}
}

// Dirs lists the "directories" one level below prefix: the distinct keys
// up to the next '/' after prefix (S3's common prefixes with delimiter
// "/"), each ending in '/', in key order. prefix normally ends in '/'.
func (s *Store) Dirs(ctx context.Context, prefix string) ([]string, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var dirs []string
	for oi := range s.cl.ListObjects(ctx, s.loc.Bucket, minio.ListObjectsOptions{
		Prefix: s.full(prefix), MaxKeys: s.pageSize}) {
		if oi.Err != nil {
			return nil, s.fail("list dirs", prefix, oi.Err)
		}
		if strings.HasSuffix(oi.Key, "/") {
			dirs = append(dirs, s.rel(oi.Key))
		}
	}
	return dirs, nil
}

// Delete removes key. Removing a key that does not exist is not an error
// (S3 answers both alike).
func (s *Store) Delete(ctx context.Context, key string) error {
	if err := checkKey(key); err != nil {
		return s.fail("delete", key, err)
	}
	if err := s.cl.RemoveObject(ctx, s.loc.Bucket, s.full(key), minio.RemoveObjectOptions{}); err != nil {
		return s.fail("delete", key, err)
	}
	return nil
}

// deletePasses is how many times DeletePrefix lists and deletes before it
// gives up: a multi-delete cut short (RGW has been seen to drop one's
// answer mid-body) leaves keys that the next pass finds.
const deletePasses = 3

// DeletePrefix removes every object under prefix (not ""), up to 1000 keys
// a multi-delete request (which carries Content-MD5), and returns how many
// it removed. It goes on past a key it fails to remove; when some remain
// it lists and deletes again, up to deletePasses times, and then returns
// the first failure of the last pass.
func (s *Store) DeletePrefix(ctx context.Context, prefix string) (int, error) {
	if prefix == "" {
		return 0, s.fail("delete prefix", prefix, errors.New("refusing to delete the whole store"))
	}
	n := 0
	for pass := 1; ; pass++ {
		m, err := s.deletePass(ctx, prefix)
		n += m
		if err == nil || pass == deletePasses || ctx.Err() != nil {
			return n, err
		}
	}
}

func (s *Store) deletePass(ctx context.Context, prefix string) (int, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	keys := make(chan minio.ObjectInfo)
	listed := make(chan error, 1)
	go func() {
		defer close(keys)
		for oi := range s.cl.ListObjects(ctx, s.loc.Bucket, minio.ListObjectsOptions{
			Prefix: s.full(prefix), Recursive: true, MaxKeys: s.pageSize}) {
			if oi.Err != nil {
				listed <- oi.Err
				return
			}
			select {
			case keys <- oi:
			case <-ctx.Done():
				listed <- ctx.Err()
				return
			}
		}
		listed <- nil
	}()
	n := 0
	var firstErr error
	for r := range s.cl.RemoveObjectsWithResult(ctx, s.loc.Bucket, keys, minio.RemoveObjectsOptions{}) {
		if r.Err != nil {
			if firstErr == nil {
				firstErr = s.fail("delete", s.rel(r.ObjectName), r.Err)
			}
			continue
		}
		n++
	}
	cancel() // the lister may still wait to send when the removal gave up
	if err := <-listed; err != nil && firstErr == nil {
		firstErr = s.fail("delete prefix: list", prefix, err)
	}
	return n, firstErr
}

// AbortUploads aborts the incomplete multipart uploads under prefix that
// began more than olderThan ago (0: all of them), and returns how many it
// aborted: an upload cut short by a crash keeps its parts, and their
// cost, until it is aborted.
func (s *Store) AbortUploads(ctx context.Context, prefix string, olderThan time.Duration) (int, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	cut := time.Now().Add(-olderThan)
	n := 0
	err := s.eachUpload(ctx, s.full(prefix), func(u minio.ObjectMultipartInfo) error {
		if olderThan > 0 && !u.Initiated.Before(cut) {
			return nil
		}
		err := s.core.AbortMultipartUpload(ctx, s.loc.Bucket, u.Key, u.UploadID)
		// RGW URL-encodes the keys of the uploads it lists, as asked, but
		// does not say so (no EncodingType in the answer), so minio-go
		// leaves them encoded: "dt%3D…" for "dt=…". Decoding every key
		// would break a real '%' elsewhere; try the decoded key when the
		// upload is not found under the listed one.
		if dec, derr := url.QueryUnescape(u.Key); err != nil && derr == nil && dec != u.Key &&
			minio.ToErrorResponse(err).Code == "NoSuchUpload" {
			u.Key = dec
			err = s.core.AbortMultipartUpload(ctx, s.loc.Bucket, u.Key, u.UploadID)
		}
		if err != nil {
			return s.fail("abort upload "+u.UploadID, s.rel(u.Key), err)
		}
		n++
		return nil
	})
	return n, err
}

// eachUpload calls fn for every incomplete multipart upload whose key
// starts with full (a key of the bucket, prefix included), once each.
//
// It asks for them all at once (no delimiter). Swift's s3api takes the
// empty delimiter minio-go sends then for one that matches at once, and
// answers with the prefix as a common prefix and no upload; an answer
// with a common prefix is therefore walked again one level at a time,
// with delimiter "/".
func (s *Store) eachUpload(ctx context.Context, full string, fn func(minio.ObjectMultipartInfo) error) error {
	seen := map[string]bool{}
	var walk func(p string, delimited bool) error
	walk = func(p string, delimited bool) error {
		var dirs []string
		split := false
		for u := range s.cl.ListIncompleteUploads(ctx, s.loc.Bucket, p, !delimited) {
			if u.Err != nil {
				return s.fail("list uploads", s.rel(p), u.Err)
			}
			if u.UploadID == "" { // a common prefix
				split = true
				if d, ok := underPrefix(u.Key, p); delimited && ok {
					dirs = append(dirs, d)
				}
				continue
			}
			if seen[u.UploadID] {
				continue
			}
			seen[u.UploadID] = true
			if err := fn(u); err != nil {
				return err
			}
		}
		if split && !delimited {
			return walk(p, true)
		}
		for _, d := range dirs {
			if err := walk(d, true); err != nil {
				return err
			}
		}
		return nil
	}
	return walk(full, false)
}

// underPrefix returns a common prefix d of a delimited list under p when
// it lies strictly below p, URL-decoded if the engine left it encoded.
func underPrefix(d, p string) (string, bool) {
	if !strings.HasPrefix(d, p) {
		if dec, err := url.QueryUnescape(d); err == nil {
			d = dec
		}
	}
	return d, strings.HasPrefix(d, p) && len(d) > len(p)
}
