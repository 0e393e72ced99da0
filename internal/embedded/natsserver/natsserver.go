// Package natsserver runs a real nats-server with JetStream inside this process: for the
// single-process pipeline (internal/embedded) and tests. Only the binaries that embed a server
// import it, so the worker services and ksefctl do not link nats-server.
package natsserver

import (
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// Options configures [Run].
type Options struct {
	Dir  string // JetStream file storage; required
	Host string // default 127.0.0.1
	Port int    // -1 picks a free port; 0 means 4222
}

// Run starts a real nats-server with JetStream inside this process
// and waits until it accepts connections. Its URL is s.ClientURL(); stop it
// with s.Shutdown() and s.WaitForShutdown().
func Run(opts Options) (*server.Server, error) {
	if opts.Dir == "" {
		return nil, errors.New("natsserver: embedded server needs a storage directory")
	}
	if opts.Host == "" {
		opts.Host = "127.0.0.1"
	}
	s, err := server.NewServer(&server.Options{
		ServerName: "ksef-pipeline-embedded",
		Host:       opts.Host,
		Port:       opts.Port,
		JetStream:  true,
		StoreDir:   opts.Dir,
		NoSigs:     true,
		NoLog:      true,
	})
	if err != nil {
		return nil, fmt.Errorf("natsserver: embedded server: %w", err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		s.Shutdown()
		return nil, errors.New("natsserver: embedded server not ready after 10s")
	}
	return s, nil
}
