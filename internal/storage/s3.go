package storage

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"iter"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"syscall"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// S3 is a Store on an S3-compatible server (MinIO, AWS S3, ...).
type S3 struct {
	c        *minio.Client
	partSize uint64
}

// NewS3 returns a Store for cfg. It does not contact the server.
func NewS3(cfg S3Config) (*S3, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	tr, err := minio.DefaultTransport(cfg.UseTLS)
	if err != nil {
		return nil, fmt.Errorf("storage: s3 transport: %w", err)
	}
	if cfg.CAFile != "" {
		pem, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("storage: s3 CA: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("storage: s3 CA %s: no PEM certificates", cfg.CAFile)
		}
		tr.TLSClientConfig.RootCAs = pool
	}
	c, err := minio.New(cfg.Endpoint, &minio.Options{
		Creds:      credentials.NewStaticV4(cfg.AccessKey, cfg.SecretKey, ""),
		Secure:     cfg.UseTLS,
		Region:     cfg.Region,
		Transport:  tr,
		MaxRetries: cfg.MaxRetries,
	})
	if err != nil {
		return nil, fmt.Errorf("storage: s3 client: %w", err)
	}
	return &S3{c: c, partSize: cfg.PartSize}, nil
}

func (s *S3) EnsureBuckets(ctx context.Context, buckets ...string) error {
	for _, b := range buckets {
		if err := checkBucket(b); err != nil {
			return err
		}
		ok, err := s.c.BucketExists(ctx, b)
		if err != nil {
			return s3Err("bucket exists", b, "", err)
		}
		if ok {
			continue
		}
		err = s.c.MakeBucket(ctx, b, minio.MakeBucketOptions{})
		if code := minio.ToErrorResponse(err).Code; code == "BucketAlreadyOwnedByYou" || code == "BucketAlreadyExists" {
			err = nil // created meanwhile by another worker
		}
		if err != nil {
			return s3Err("make bucket", b, "", err)
		}
	}
	return nil
}

// Put uploads r. An object of at most PartSize bytes is read into memory,
// hashed and uploaded in one request carrying its digest. A larger one is
// streamed in parts of PartSize (at most twice PartSize of memory; objects
// of unknown size up to 10,000 parts), hashed on the way, and then copied
// onto itself on the server to attach the digest, so for a moment it is
// visible without one.
func (s *S3) Put(ctx context.Context, bucket, key string, r io.Reader, size int64, meta ObjectMeta) (ObjectInfo, error) {
	if err := checkObject(bucket, key); err != nil {
		return ObjectInfo{}, err
	}
	if err := checkMeta(meta.Metadata); err != nil {
		return ObjectInfo{}, err
	}
	first := int64(s.partSize)
	if size >= 0 && size < first {
		first = size
	}
	// Read up to one byte more than fits in one request; a small first
	// read keeps small objects of unknown size from costing a whole part.
	buf, err := readHead(r, first+1)
	if err != nil {
		return ObjectInfo{}, fmt.Errorf("storage: put %s/%s: read: %w", bucket, key, err)
	}
	n := len(buf)
	if size >= 0 && int64(n) > size {
		return ObjectInfo{}, fmt.Errorf("%w: put %s/%s: reader longer than size %d", ErrInvalid, bucket, key, size)
	}
	if int64(n) <= first { // the whole object is in buf
		if size >= 0 && int64(n) != size {
			return ObjectInfo{}, fmt.Errorf("%w: put %s/%s: reader shorter than size %d", ErrInvalid, bucket, key, size)
		}
		sum := sha256.Sum256(buf)
		digest := base64.StdEncoding.EncodeToString(sum[:])
		return s.putOnce(ctx, bucket, key, bytes.NewReader(buf), int64(n), meta, digest)
	}
	hr := newHashingReader(io.MultiReader(bytes.NewReader(buf), r))
	if _, err := s.putOnce(ctx, bucket, key, hr, size, meta, ""); err != nil {
		return ObjectInfo{}, err
	}
	if size >= 0 {
		// The client read exactly size bytes; more left means a wrong size.
		var one [1]byte
		if m, _ := io.ReadFull(r, one[:]); m > 0 || hr.n != size {
			_ = s.c.RemoveObject(ctx, bucket, key, minio.RemoveObjectOptions{})
			return ObjectInfo{}, fmt.Errorf("%w: put %s/%s: reader longer than size %d", ErrInvalid, bucket, key, size)
		}
	}
	digest := hr.sum()
	um := userMeta(meta, digest)
	if meta.ContentType != "" {
		um["Content-Type"] = meta.ContentType
	}
	_, err = s.c.ComposeObject(ctx,
		minio.CopyDestOptions{Bucket: bucket, Object: key, ReplaceMetadata: true, UserMetadata: um},
		minio.CopySrcOptions{Bucket: bucket, Object: key})
	if err != nil {
		return ObjectInfo{}, s3Err("attach digest", bucket, key, err)
	}
	return s.Stat(ctx, bucket, key)
}

// readHead reads up to limit bytes of r, allocating 64 KiB first and the
// whole limit only when r is longer than that.
func readHead(r io.Reader, limit int64) ([]byte, error) {
	small := make([]byte, min(limit, 64<<10))
	n, err := io.ReadFull(r, small)
	if err == io.EOF || err == io.ErrUnexpectedEOF || (err == nil && int64(n) == limit) {
		return small[:n], nil
	}
	if err != nil {
		return nil, err
	}
	buf := make([]byte, limit)
	copy(buf, small)
	m, err := io.ReadFull(r, buf[n:])
	if err != nil && err != io.EOF && err != io.ErrUnexpectedEOF {
		return nil, err
	}
	return buf[:n+m], nil
}

func (s *S3) putOnce(ctx context.Context, bucket, key string, r io.Reader, size int64, meta ObjectMeta, digest string) (ObjectInfo, error) {
	info, err := s.c.PutObject(ctx, bucket, key, r, size, minio.PutObjectOptions{
		ContentType:  meta.ContentType,
		UserMetadata: userMeta(meta, digest),
		PartSize:     s.partSize,
		NumThreads:   1,
	})
	if err != nil {
		return ObjectInfo{}, s3Err("put", bucket, key, err)
	}
	return ObjectInfo{
		Bucket: bucket, Key: key, Size: info.Size, SHA256: digest,
		ContentType: meta.ContentType, Metadata: copyMeta(meta.Metadata), LastModified: info.LastModified,
	}, nil
}

func userMeta(meta ObjectMeta, digest string) map[string]string {
	um := make(map[string]string, len(meta.Metadata)+1)
	for k, v := range meta.Metadata {
		um[k] = escapeMeta(v)
	}
	if digest != "" {
		um[MetaSHA256] = digest
	}
	return um
}

func (s *S3) Get(ctx context.Context, bucket, key string) (io.ReadCloser, ObjectInfo, error) {
	if err := checkObject(bucket, key); err != nil {
		return nil, ObjectInfo{}, err
	}
	obj, err := s.c.GetObject(ctx, bucket, key, minio.GetObjectOptions{})
	if err != nil {
		return nil, ObjectInfo{}, s3Err("get", bucket, key, err)
	}
	oi, err := obj.Stat()
	if err != nil {
		obj.Close()
		return nil, ObjectInfo{}, s3Err("get", bucket, key, err)
	}
	return obj, fromMinio(bucket, oi), nil
}

func (s *S3) Stat(ctx context.Context, bucket, key string) (ObjectInfo, error) {
	if err := checkObject(bucket, key); err != nil {
		return ObjectInfo{}, err
	}
	oi, err := s.c.StatObject(ctx, bucket, key, minio.StatObjectOptions{})
	if err != nil {
		return ObjectInfo{}, s3Err("stat", bucket, key, err)
	}
	return fromMinio(bucket, oi), nil
}

func fromMinio(bucket string, oi minio.ObjectInfo) ObjectInfo {
	info := ObjectInfo{
		Bucket: bucket, Key: oi.Key, Size: oi.Size, ContentType: oi.ContentType,
		LastModified: oi.LastModified, Metadata: map[string]string{},
	}
	for k, v := range oi.UserMetadata {
		k = strings.ToLower(k)
		if k == MetaSHA256 {
			info.SHA256 = v
			continue
		}
		info.Metadata[k] = unescapeMeta(v)
	}
	return info
}

func (s *S3) Delete(ctx context.Context, bucket, key string) error {
	if err := checkObject(bucket, key); err != nil {
		return err
	}
	if err := s.c.RemoveObject(ctx, bucket, key, minio.RemoveObjectOptions{}); err != nil {
		return s3Err("delete", bucket, key, err)
	}
	return nil
}

func (s *S3) List(ctx context.Context, bucket, prefix string) iter.Seq2[ObjectInfo, error] {
	return func(yield func(ObjectInfo, error) bool) {
		if err := checkBucket(bucket); err != nil {
			yield(ObjectInfo{}, err)
			return
		}
		ctx, cancel := context.WithCancel(ctx)
		defer cancel() // stops the listing goroutine when the caller breaks
		for oi := range s.c.ListObjects(ctx, bucket, minio.ListObjectsOptions{Prefix: prefix, Recursive: true}) {
			if oi.Err != nil {
				yield(ObjectInfo{}, s3Err("list", bucket, prefix, oi.Err))
				return
			}
			if !yield(ObjectInfo{Bucket: bucket, Key: oi.Key, Size: oi.Size, LastModified: oi.LastModified}, nil) {
				return
			}
		}
	}
}

// s3Err maps a minio-go error to the package's errors.
func s3Err(op, bucket, key string, err error) error {
	resp := minio.ToErrorResponse(err)
	where := bucket
	if key != "" {
		where += "/" + key
	}
	switch {
	case resp.Code == "NoSuchKey":
		return fmt.Errorf("%w: %s %s", ErrNotFound, op, where)
	case resp.Code == "NoSuchBucket":
		return fmt.Errorf("%w: %s %s", ErrBucketNotFound, op, where)
	case transientS3(resp, err):
		return fmt.Errorf("%w: %s %s: %w", ErrTransient, op, where, err)
	}
	return fmt.Errorf("storage: %s %s: %w", op, where, err)
}

func transientS3(resp minio.ErrorResponse, err error) bool {
	switch resp.Code {
	case "SlowDown", "RequestTimeout", "InternalError", "ServiceUnavailable",
		"XMinioServerNotInitialized", "XMinioStorageFull", "RequestTimeTooSkewed":
		return true
	}
	if resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusRequestTimeout {
		return true
	}
	if errors.Is(err, context.Canceled) {
		return false
	}
	var netErr net.Error
	var urlErr *url.Error
	return errors.As(err, &netErr) || errors.As(err, &urlErr) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET)
}
