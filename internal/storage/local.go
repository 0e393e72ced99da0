package storage

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"iter"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
)

// Local is a Store in a directory, for single-process runs and tests:
// object bucket/key is the file <dir>/bucket/key, its metadata a JSON
// sidecar <dir>/.meta/bucket/key (bucket names cannot start with '.', so
// these never collide with buckets). Writes go to <dir>/.tmp first and
// are renamed into place, so readers see either the old or the new object.
// Keys are validated so that none leaves its bucket; as in a file system,
// "a" and "a/b" cannot both exist.
type Local struct {
	dir string
	// mu orders the two renames (data, sidecar) of a Put against readers
	// and deletes; the data itself is written outside it.
	mu sync.RWMutex
}

// sidecar is the JSON metadata file.
type sidecar struct {
	ContentType string            `json:"content_type,omitempty"`
	SHA256      string            `json:"sha256"`
	Metadata    map[string]string `json:"metadata,omitempty"`
}

// NewLocal returns a Store in dir, creating it if needed.
func NewLocal(dir string) (*Local, error) {
	for _, d := range []string{dir, filepath.Join(dir, ".meta"), filepath.Join(dir, ".tmp")} {
		if err := os.MkdirAll(d, 0o750); err != nil {
			return nil, fmt.Errorf("storage: local: %w", err)
		}
	}
	return &Local{dir: dir}, nil
}

func (l *Local) dataPath(bucket, key string) string {
	return filepath.Join(l.dir, bucket, filepath.FromSlash(key))
}

func (l *Local) metaPath(bucket, key string) string {
	return filepath.Join(l.dir, ".meta", bucket, filepath.FromSlash(key))
}

func (l *Local) bucketExists(bucket string) error {
	fi, err := os.Stat(filepath.Join(l.dir, bucket))
	if err != nil || !fi.IsDir() {
		return fmt.Errorf("%w: %s", ErrBucketNotFound, bucket)
	}
	return nil
}

func (l *Local) EnsureBuckets(ctx context.Context, buckets ...string) error {
	for _, b := range buckets {
		if err := checkBucket(b); err != nil {
			return err
		}
		for _, d := range []string{filepath.Join(l.dir, b), filepath.Join(l.dir, ".meta", b)} {
			if err := os.MkdirAll(d, 0o750); err != nil {
				return fmt.Errorf("storage: local bucket %s: %w", b, err)
			}
		}
	}
	return ctx.Err()
}

// ctxReader stops a copy when ctx ends.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

func (l *Local) Put(ctx context.Context, bucket, key string, r io.Reader, size int64, meta ObjectMeta) (ObjectInfo, error) {
	if err := checkObject(bucket, key); err != nil {
		return ObjectInfo{}, err
	}
	if err := checkMeta(meta.Metadata); err != nil {
		return ObjectInfo{}, err
	}
	if err := l.bucketExists(bucket); err != nil {
		return ObjectInfo{}, err
	}
	src := io.Reader(ctxReader{ctx, r})
	if size >= 0 {
		src = io.LimitReader(src, size+1)
	}
	hr := newHashingReader(src)
	dataF, err := l.writeTemp(hr)
	if err != nil {
		return ObjectInfo{}, fmt.Errorf("storage: put %s/%s: %w", bucket, key, err)
	}
	tmp := dataF.Name()
	defer os.Remove(tmp) // no-op once renamed
	defer dataF.Close()
	if size >= 0 && hr.n != size {
		return ObjectInfo{}, fmt.Errorf("%w: put %s/%s: read %d bytes, size %d", ErrInvalid, bucket, key, hr.n, size)
	}
	sc := sidecar{ContentType: meta.ContentType, SHA256: hr.sum(), Metadata: meta.Metadata}
	scData, err := json.Marshal(sc)
	if err != nil {
		return ObjectInfo{}, fmt.Errorf("storage: put %s/%s: %w", bucket, key, err)
	}
	scF, err := l.writeTemp(strings.NewReader(string(scData)))
	if err != nil {
		return ObjectInfo{}, fmt.Errorf("storage: put %s/%s: %w", bucket, key, err)
	}
	scTmp := scF.Name()
	defer os.Remove(scTmp)
	defer scF.Close()
	if err := errors.Join(syncBoth(dataF, scF), dataF.Close(), scF.Close()); err != nil {
		return ObjectInfo{}, fmt.Errorf("storage: put %s/%s: %w", bucket, key, err)
	}

	l.mu.Lock()
	defer l.mu.Unlock()
	data, side := l.dataPath(bucket, key), l.metaPath(bucket, key)
	for _, mv := range [][2]string{{tmp, data}, {scTmp, side}} {
		if err := os.MkdirAll(filepath.Dir(mv[1]), 0o750); err != nil {
			return ObjectInfo{}, conflict(bucket, key, err)
		}
		if err := os.Rename(mv[0], mv[1]); err != nil {
			return ObjectInfo{}, conflict(bucket, key, err)
		}
	}
	fi, err := os.Stat(data)
	if err != nil {
		return ObjectInfo{}, fmt.Errorf("storage: put %s/%s: %w", bucket, key, err)
	}
	return info(bucket, key, fi, sc), nil
}

// conflict reports a key that collides with another as file versus
// directory ("a" and "a/b").
func conflict(bucket, key string, err error) error {
	if errors.Is(err, syscall.ENOTDIR) || errors.Is(err, syscall.EISDIR) ||
		errors.Is(err, syscall.EEXIST) || errors.Is(err, syscall.ENOTEMPTY) {
		return fmt.Errorf("%w: key %s/%s collides with another key in the local store", ErrInvalid, bucket, key)
	}
	return fmt.Errorf("storage: put %s/%s: %w", bucket, key, err)
}

// writeTemp copies r to a new file under .tmp and returns it open, not yet synced.
func (l *Local) writeTemp(r io.Reader) (*os.File, error) {
	f, err := os.CreateTemp(filepath.Join(l.dir, ".tmp"), "put-*")
	if err != nil {
		return nil, err
	}
	if _, err := io.Copy(f, r); err != nil {
		f.Close()
		os.Remove(f.Name())
		return nil, err
	}
	return f, nil
}

// syncBoth flushes an object's data and metadata files to disk before they are renamed into
// place. The two fsyncs run at once: the file system can commit them together, where one after
// the other they cost two journal commits on every put.
func syncBoth(data, meta *os.File) error {
	errc := make(chan error, 1)
	go func() { errc <- meta.Sync() }()
	return errors.Join(data.Sync(), <-errc)
}

func info(bucket, key string, fi fs.FileInfo, sc sidecar) ObjectInfo {
	md := copyMeta(sc.Metadata)
	return ObjectInfo{
		Bucket: bucket, Key: key, Size: fi.Size(), SHA256: sc.SHA256,
		ContentType: sc.ContentType, Metadata: md, LastModified: fi.ModTime().UTC(),
	}
}

// open returns the data file (or nil) and info under the read lock.
func (l *Local) open(ctx context.Context, bucket, key string, withFile bool) (*os.File, ObjectInfo, error) {
	if err := checkObject(bucket, key); err != nil {
		return nil, ObjectInfo{}, err
	}
	if err := ctx.Err(); err != nil {
		return nil, ObjectInfo{}, err
	}
	if err := l.bucketExists(bucket); err != nil {
		return nil, ObjectInfo{}, err
	}
	l.mu.RLock()
	defer l.mu.RUnlock()
	path := l.dataPath(bucket, key)
	fi, err := os.Stat(path)
	if err != nil || fi.IsDir() {
		return nil, ObjectInfo{}, fmt.Errorf("%w: %s/%s", ErrNotFound, bucket, key)
	}
	var sc sidecar
	if b, err := os.ReadFile(l.metaPath(bucket, key)); err == nil {
		if err := json.Unmarshal(b, &sc); err != nil {
			return nil, ObjectInfo{}, fmt.Errorf("storage: %s/%s: metadata: %w", bucket, key, err)
		}
	}
	var f *os.File
	if withFile {
		if f, err = os.Open(path); err != nil {
			return nil, ObjectInfo{}, fmt.Errorf("storage: get %s/%s: %w", bucket, key, err)
		}
	}
	return f, info(bucket, key, fi, sc), nil
}

func (l *Local) Get(ctx context.Context, bucket, key string) (io.ReadCloser, ObjectInfo, error) {
	f, oi, err := l.open(ctx, bucket, key, true)
	if err != nil {
		return nil, ObjectInfo{}, err
	}
	return f, oi, nil
}

func (l *Local) Stat(ctx context.Context, bucket, key string) (ObjectInfo, error) {
	_, oi, err := l.open(ctx, bucket, key, false)
	return oi, err
}

func (l *Local) Delete(ctx context.Context, bucket, key string) error {
	if err := checkObject(bucket, key); err != nil {
		return err
	}
	if err := l.bucketExists(bucket); err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, p := range []string{l.dataPath(bucket, key), l.metaPath(bucket, key)} {
		if fi, err := os.Stat(p); err == nil && fi.IsDir() {
			return nil // a "directory" of other keys, not an object
		}
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("storage: delete %s/%s: %w", bucket, key, err)
		}
		l.pruneDirs(filepath.Dir(p), bucket)
	}
	return ctx.Err()
}

// pruneDirs removes empty directories left by a delete, up to the bucket,
// so that a later key may use the name ("a/b" deleted, "a" stored).
func (l *Local) pruneDirs(dir, bucket string) {
	stops := []string{filepath.Join(l.dir, bucket), filepath.Join(l.dir, ".meta", bucket)}
	for !slices.Contains(stops, dir) && strings.HasPrefix(dir, l.dir) {
		if os.Remove(dir) != nil { // not empty
			return
		}
		dir = filepath.Dir(dir)
	}
}

func (l *Local) List(ctx context.Context, bucket, prefix string) iter.Seq2[ObjectInfo, error] {
	return func(yield func(ObjectInfo, error) bool) {
		if err := checkBucket(bucket); err != nil {
			yield(ObjectInfo{}, err)
			return
		}
		if err := l.bucketExists(bucket); err != nil {
			yield(ObjectInfo{}, err)
			return
		}
		root := filepath.Join(l.dir, bucket)
		var out []ObjectInfo
		l.mu.RLock()
		err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if err := ctx.Err(); err != nil {
				return err
			}
			rel, _ := filepath.Rel(root, path)
			key := filepath.ToSlash(rel)
			if d.IsDir() {
				// Skip subtrees that cannot hold the prefix.
				if path != root && !strings.HasPrefix(key+"/", prefix) && !strings.HasPrefix(prefix, key+"/") {
					return filepath.SkipDir
				}
				return nil
			}
			if !strings.HasPrefix(key, prefix) {
				return nil
			}
			fi, err := d.Info()
			if err != nil {
				return nil // removed meanwhile
			}
			out = append(out, ObjectInfo{Bucket: bucket, Key: key, Size: fi.Size(), LastModified: fi.ModTime().UTC()})
			return nil
		})
		l.mu.RUnlock()
		if err != nil {
			yield(ObjectInfo{}, fmt.Errorf("storage: list %s/%s: %w", bucket, prefix, err))
			return
		}
		// Key order as in S3 (byte order of the whole key, not per directory).
		slices.SortFunc(out, func(a, b ObjectInfo) int { return strings.Compare(a.Key, b.Key) })
		for _, oi := range out {
			if !yield(oi, nil) {
				return
			}
		}
	}
}
