package objstore

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/vrsniff/vrsniff/internal/secret"
)

// Defaults of Config.
const (
	DefaultRegion   = "us-east-1"
	DefaultProfile  = "default"
	DefaultPartSize = 16 << 20
	// MinPartSize is the smallest part S3 accepts in a multipart upload
	// (every part but the last).
	MinPartSize = 5 << 20
	// awsEndpoint is where a store goes when neither Config nor the
	// environment names an endpoint.
	awsEndpoint = "https://s3.amazonaws.com"
)

// Config says where a Store is and how to reach it. The zero value of a
// field means "not given": Open then looks in the environment, then in the
// AWS shared credentials file. The keys come from AccessKey/SecretKey;
// else from a CredentialsFile or Profile named here; else from
// $AWS_ACCESS_KEY_ID/$AWS_SECRET_ACCESS_KEY (with $AWS_SESSION_TOKEN);
// else from the profile $AWS_PROFILE (or "default") of
// $AWS_SHARED_CREDENTIALS_FILE (or ~/.aws/credentials). docs/fleet.md,
// "Connecting to the bucket", has the table.
type Config struct {
	// URL is "s3://BUCKET/PREFIX" (ParseURL).
	URL string
	// Endpoint is "https://host:port", "http://host:port" or "host:port"
	// (HTTPS); "" takes $AWS_ENDPOINT_URL_S3, then $AWS_ENDPOINT_URL, then
	// AWS S3 itself. Plain HTTP only when it says http://.
	Endpoint string
	// Region signs the requests; "" takes $AWS_REGION, then
	// $AWS_DEFAULT_REGION, then DefaultRegion.
	Region string
	// AccessKey and SecretKey, given together, win over every other source.
	AccessKey, SecretKey string
	// CredentialsFile is an AWS shared credentials file (INI:
	// aws_access_key_id, aws_secret_access_key, aws_session_token) and
	// Profile its section. Naming either here is an explicit choice that
	// wins over the environment's keys. The file must not be open to other
	// users (secret.ReadFile).
	CredentialsFile string
	Profile         string
	// CACert is a PEM file of CA certificates trusted beside the system's.
	CACert string
	// PartSize is the part size of multipart uploads in bytes: 0 is
	// DefaultPartSize, less than MinPartSize is refused. A file up to one
	// part is sent in one PUT.
	PartSize int64
	// ListPageSize is the number of keys asked for per list request; 0
	// leaves it to the server (1000 on S3 and RGW).
	ListPageSize int
}

// Location is a parsed store URL: the bucket and the key prefix under
// which the store keeps its objects ("" or ending in '/').
type Location struct {
	Bucket string
	Prefix string
}

// String is the URL that ParseURL reads back: "s3://BUCKET/PREFIX".
func (l Location) String() string { return "s3://" + l.Bucket + "/" + l.Prefix }

// ParseURL parses "s3://BUCKET" or "s3://BUCKET/PREFIX". The bucket
// follows S3's naming rules (3-63 lowercase letters, digits, '.' and '-',
// starting and ending with a letter or digit, no "..", not an IPv4
// address); the prefix may not start with '/' or hold empty, "." or ".."
// elements or control characters, and gets a trailing '/' when it lacks
// one.
func ParseURL(s string) (Location, error) {
	rest, ok := strings.CutPrefix(s, "s3://")
	if !ok {
		return Location{}, fmt.Errorf("store URL %q: want s3://BUCKET/PREFIX", s)
	}
	bucket, prefix, _ := strings.Cut(rest, "/")
	if err := checkBucket(bucket); err != nil {
		return Location{}, fmt.Errorf("store URL %q: %w", s, err)
	}
	if prefix != "" {
		if strings.HasPrefix(prefix, "/") {
			return Location{}, fmt.Errorf("store URL %q: the prefix may not start with '/'", s)
		}
		prefix = strings.TrimSuffix(prefix, "/")
		for _, e := range strings.Split(prefix, "/") {
			if e == "" || e == "." || e == ".." {
				return Location{}, fmt.Errorf("store URL %q: prefix element %q: want no empty, '.' or '..' elements", s, e)
			}
		}
		for _, r := range prefix {
			if r < 0x20 || r == 0x7f || r == '\\' || r == 0xfffd {
				return Location{}, fmt.Errorf("store URL %q: prefix holds %q", s, r)
			}
		}
		// S3 keys are at most 1024 bytes; leave room for the layout's.
		if len(prefix) > 512 {
			return Location{}, fmt.Errorf("store URL %q: prefix longer than 512 bytes", s)
		}
		prefix += "/"
	}
	return Location{Bucket: bucket, Prefix: prefix}, nil
}

func checkBucket(b string) error {
	if len(b) < 3 || len(b) > 63 {
		return fmt.Errorf("bucket %q: want 3 to 63 characters", b)
	}
	for i := 0; i < len(b); i++ {
		c := b[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.' || c == '-') {
			return fmt.Errorf("bucket %q: want lowercase letters, digits, '.' and '-'", b)
		}
	}
	if !isAlnum(b[0]) || !isAlnum(b[len(b)-1]) {
		return fmt.Errorf("bucket %q: want a letter or digit first and last", b)
	}
	if strings.Contains(b, "..") || strings.Contains(b, ".-") || strings.Contains(b, "-.") {
		return fmt.Errorf("bucket %q: no \"..\", \".-\" or \"-.\"", b)
	}
	if ip := net.ParseIP(b); ip != nil {
		return fmt.Errorf("bucket %q: an IP address is not a bucket name", b)
	}
	return nil
}

func isAlnum(c byte) bool { return c >= 'a' && c <= 'z' || c >= '0' && c <= '9' }

// resolved is a Config with every source applied.
type resolved struct {
	loc          Location
	host         string // host:port
	secure       bool
	aws          bool // no endpoint given: AWS S3, virtual-host style
	region       string
	access       string
	secretKey    string
	sessionToken string
	keysFrom     string // where the keys came from, for errors: "config", "environment", a file
	caCert       string
	partSize     int64
	pageSize     int
}

// resolve applies the precedence: the Config's fields (flags), then the
// environment (getenv), then the AWS shared credentials file. For the keys:
// AccessKey/SecretKey; else a CredentialsFile or Profile named in the
// Config; else $AWS_ACCESS_KEY_ID/$AWS_SECRET_ACCESS_KEY (with
// $AWS_SESSION_TOKEN); else the profile ($AWS_PROFILE or "default") of
// $AWS_SHARED_CREDENTIALS_FILE or ~/.aws/credentials when it exists. No
// keys at all is an error: the store never signs anonymously.
func (c Config) resolve(getenv func(string) string) (resolved, error) {
	var r resolved
	var err error
	if r.loc, err = ParseURL(c.URL); err != nil {
		return r, err
	}
	ep := first(c.Endpoint, getenv("AWS_ENDPOINT_URL_S3"), getenv("AWS_ENDPOINT_URL"))
	if ep == "" {
		ep, r.aws = awsEndpoint, true
	}
	if r.host, r.secure, err = parseEndpoint(ep); err != nil {
		return r, err
	}
	r.region = first(c.Region, getenv("AWS_REGION"), getenv("AWS_DEFAULT_REGION"), DefaultRegion)
	switch r.partSize = c.PartSize; {
	case r.partSize == 0:
		r.partSize = DefaultPartSize
	case r.partSize < MinPartSize:
		return r, fmt.Errorf("part size %d: want at least %d bytes (5 MiB, S3's smallest part)", c.PartSize, MinPartSize)
	}
	if c.ListPageSize < 0 || c.ListPageSize > 1000 {
		return r, fmt.Errorf("list page size %d: want 0 (the server's) to 1000", c.ListPageSize)
	}
	r.pageSize, r.caCert = c.ListPageSize, c.CACert

	switch {
	case c.AccessKey != "" || c.SecretKey != "":
		if c.AccessKey == "" || c.SecretKey == "" {
			return r, errors.New("S3 keys: give both the access key and the secret key")
		}
		r.access, r.secretKey, r.keysFrom = c.AccessKey, c.SecretKey, "config"
	case c.CredentialsFile != "" || c.Profile != "":
		file := first(c.CredentialsFile, getenv("AWS_SHARED_CREDENTIALS_FILE"), defaultCredentialsFile(getenv))
		if err := r.fromFile(file, first(c.Profile, getenv("AWS_PROFILE"), DefaultProfile)); err != nil {
			return r, err
		}
	case getenv("AWS_ACCESS_KEY_ID") != "" || getenv("AWS_SECRET_ACCESS_KEY") != "":
		r.access, r.secretKey = getenv("AWS_ACCESS_KEY_ID"), getenv("AWS_SECRET_ACCESS_KEY")
		if r.access == "" || r.secretKey == "" {
			return r, errors.New("S3 keys: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY must be set together")
		}
		r.sessionToken, r.keysFrom = getenv("AWS_SESSION_TOKEN"), "environment"
	default:
		file := first(getenv("AWS_SHARED_CREDENTIALS_FILE"), defaultCredentialsFile(getenv))
		if file == "" {
			return r, errors.New("S3 keys: none given (flags, AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or a credentials file)")
		}
		if _, err := os.Stat(file); err != nil && getenv("AWS_SHARED_CREDENTIALS_FILE") == "" {
			return r, fmt.Errorf("S3 keys: none given (flags, AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or a credentials file; %s: %w)", file, err)
		}
		if err := r.fromFile(file, first(getenv("AWS_PROFILE"), DefaultProfile)); err != nil {
			return r, err
		}
	}
	return r, nil
}

func (r *resolved) fromFile(file, profile string) error {
	if file == "" {
		return errors.New("S3 credentials file: none named and no home directory")
	}
	b, err := secret.ReadFile(file)
	if err != nil {
		return fmt.Errorf("S3 credentials file: %w", err)
	}
	keys, err := parseCredentials(b, profile)
	if err != nil {
		return fmt.Errorf("S3 credentials file %s: %w", file, err)
	}
	r.access, r.secretKey, r.sessionToken = keys["aws_access_key_id"], keys["aws_secret_access_key"], keys["aws_session_token"]
	if r.access == "" || r.secretKey == "" {
		return fmt.Errorf("S3 credentials file %s: profile %q lacks aws_access_key_id or aws_secret_access_key", file, profile)
	}
	r.keysFrom = file
	return nil
}

// parseCredentials reads one profile's keys from an AWS shared credentials
// file: "[profile]" sections of "key = value" lines, '#' and ';' comments.
func parseCredentials(b []byte, profile string) (map[string]string, error) {
	var keys map[string]string
	in := false
	sc := bufio.NewScanner(bytes.NewReader(b))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || line[0] == '#' || line[0] == ';':
		case line[0] == '[':
			name, ok := strings.CutSuffix(line[1:], "]")
			if !ok {
				return nil, fmt.Errorf("line %d: want [profile]", n)
			}
			in = strings.TrimSpace(name) == profile
			if in && keys == nil {
				keys = map[string]string{}
			}
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok {
				return nil, fmt.Errorf("line %d: want key = value", n)
			}
			if in {
				keys[strings.ToLower(strings.TrimSpace(k))] = strings.TrimSpace(v)
			}
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if keys == nil {
		return nil, fmt.Errorf("no profile %q", profile)
	}
	return keys, nil
}

func defaultCredentialsFile(getenv func(string) string) string {
	home := getenv("HOME")
	if home == "" {
		return ""
	}
	return filepath.Join(home, ".aws", "credentials")
}

// parseEndpoint reads "https://host:port", "http://host:port" or
// "host:port" (HTTPS) into host:port and whether it is TLS.
func parseEndpoint(ep string) (host string, secure bool, err error) {
	if !strings.Contains(ep, "://") {
		ep = "https://" + ep
	}
	u, err := url.Parse(ep)
	if err != nil {
		return "", false, fmt.Errorf("S3 endpoint %q: %w", secret.RedactURL(ep), err)
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return "", false, fmt.Errorf("S3 endpoint %q: want https://HOST[:PORT], http://HOST[:PORT] or HOST[:PORT]", secret.RedactURL(ep))
	case u.User != nil:
		return "", false, fmt.Errorf("S3 endpoint %q: keys go in the credentials, not the URL", secret.RedactURL(ep))
	case u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "":
		return "", false, fmt.Errorf("S3 endpoint %q: want only a scheme, a host and a port", secret.RedactURL(ep))
	}
	return u.Host, u.Scheme == "https", nil
}

func first(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

// Open connects to the store that c names and checks that its bucket
// exists: the error of a missing bucket, refused keys or an unreachable
// endpoint names the bucket and the endpoint, never the keys.
func Open(ctx context.Context, c Config) (*Store, error) {
	r, err := c.resolve(os.Getenv)
	if err != nil {
		return nil, err
	}
	tr, err := minio.DefaultTransport(r.secure)
	if err != nil {
		return nil, err
	}
	if r.caCert != "" {
		pem, err := os.ReadFile(r.caCert)
		if err != nil {
			return nil, fmt.Errorf("S3 CA certificate: %w", err)
		}
		pool, err := x509.SystemCertPool()
		if err != nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("S3 CA certificate %s: no PEM certificate in it", r.caCert)
		}
		if tr.TLSClientConfig == nil {
			tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
		}
		tr.TLSClientConfig.RootCAs = pool
	}
	// Path-style requests (host/bucket/key) work on every engine: RGW and
	// Swift's s3api have no wildcard DNS for virtual hosts by default. AWS
	// itself gets the virtual-host style it prefers.
	lookup := minio.BucketLookupPath
	if r.aws {
		lookup = minio.BucketLookupAuto
	}
	cl, err := minio.New(r.host, &minio.Options{
		Creds:        credentials.NewStaticV4(r.access, r.secretKey, r.sessionToken),
		Secure:       r.secure,
		Region:       r.region,
		BucketLookup: lookup,
		Transport:    tr,
	})
	if err != nil {
		return nil, fmt.Errorf("S3 client for %s: %w", r.endpoint(), err)
	}
	s := &Store{cl: cl, core: minio.Core{Client: cl}, loc: r.loc, endpoint: r.endpoint(),
		partSize: r.partSize, pageSize: r.pageSize}
	ok, err := cl.BucketExists(ctx, r.loc.Bucket)
	if err != nil {
		return nil, fmt.Errorf("bucket %s at %s (keys from %s): %w", r.loc.Bucket, s.endpoint, r.keysFrom, err)
	}
	if !ok {
		return nil, fmt.Errorf("bucket %s at %s: no such bucket", r.loc.Bucket, s.endpoint)
	}
	return s, nil
}

func (r resolved) endpoint() string {
	if r.secure {
		return "https://" + r.host
	}
	return "http://" + r.host
}
