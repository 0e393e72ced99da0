package ksef

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strings"

	"github.com/ksef-pipeline/ksef-pipeline/pkg/ksef/ksefapi"
)

// ErrUploadTarget reports a batch part upload request (from ksefSessionOpenBatch's answer) that
// the client refuses to follow: a scheme, host or method other than allowed. Nothing is sent.
var ErrUploadTarget = errors.New("batch part upload target refused")

// UploadPolicy says where batch parts may be uploaded. The encrypted parts and the headers KSeF
// gives (an upload token) go wherever its answer points, so the answer is not trusted blindly.
type UploadPolicy struct {
	// Hosts may receive parts besides the API's own host: "host" (any port) or "host:port".
	Hosts []string
	// Schemes allowed; empty means https, plus the API's own scheme (http for an emulator on
	// 127.0.0.1), so a client of an https API never uploads in the clear.
	Schemes []string
}

// WithUploadPolicy sets where batch parts may go (default: the API's host, https or the API's scheme).
func WithUploadPolicy(p UploadPolicy) Option { return func(c *Client) { c.upload = p } }

// checkUpload refuses an upload request that is not a PUT to an allowed scheme and host. Its
// error names the scheme, host and path only: the query may carry a signature.
func (c *Client) checkUpload(info ksefapi.PartUploadInfo) error {
	u, err := url.Parse(info.Url)
	if err != nil {
		return fmt.Errorf("%w: part %d: the upload URL does not parse", ErrUploadTarget, info.Ordinal)
	}
	where := u.Scheme + "://" + u.Host + u.EscapedPath()
	if !strings.EqualFold(info.Method, "PUT") {
		return fmt.Errorf("%w: part %d: method %q, want PUT (%s)", ErrUploadTarget, info.Ordinal, info.Method, where)
	}
	api, err := url.Parse(c.raw.Server)
	if err != nil {
		return fmt.Errorf("%w: the API URL does not parse", ErrUploadTarget)
	}
	schemes := c.upload.Schemes
	if len(schemes) == 0 {
		schemes = []string{"https", strings.ToLower(api.Scheme)}
	}
	if !slices.Contains(schemes, strings.ToLower(u.Scheme)) {
		return fmt.Errorf("%w: part %d: scheme %q, allowed %v (%s)", ErrUploadTarget, info.Ordinal, u.Scheme, schemes, where)
	}
	if u.User != nil || u.Host == "" {
		return fmt.Errorf("%w: part %d: the URL has user information or no host", ErrUploadTarget, info.Ordinal)
	}
	if !c.uploadHostAllowed(u, api) {
		return fmt.Errorf("%w: part %d: host %q is neither the API's (%s) nor in the allowed upload hosts %v (%s)",
			ErrUploadTarget, info.Ordinal, u.Host, api.Host, c.upload.Hosts, where)
	}
	return nil
}

func (c *Client) uploadHostAllowed(u, api *url.URL) bool {
	if strings.EqualFold(hostPort(u), hostPort(api)) {
		return true
	}
	for _, h := range c.upload.Hosts {
		if host, port, err := net.SplitHostPort(h); err == nil {
			if strings.EqualFold(net.JoinHostPort(host, port), hostPort(u)) {
				return true
			}
		} else if strings.EqualFold(strings.Trim(h, "[]"), u.Hostname()) {
			return true
		}
	}
	return false
}

// hostPort is u's host with its port made explicit.
func hostPort(u *url.URL) string {
	port := u.Port()
	if port == "" {
		switch strings.ToLower(u.Scheme) {
		case "https":
			port = "443"
		case "http":
			port = "80"
		}
	}
	return net.JoinHostPort(u.Hostname(), port)
}
