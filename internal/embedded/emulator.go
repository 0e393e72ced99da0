package embedded

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/ksef-pipeline/ksef-pipeline/internal/emulator"
)

// startEmulator starts the KSeF emulator of cfg on a loopback port (EmulatorURL).
func (e *Pipeline) startEmulator(cfg emulator.Config) error {
	var err error
	if e.Emulator, err = emulator.New(cfg); err != nil {
		return fmt.Errorf("starting the emulator: %w", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	e.EmulatorURL = "http://" + ln.Addr().String()
	e.emulatorSrv = &http.Server{Handler: e.Emulator.Handler(), ReadHeaderTimeout: 10 * time.Second}
	go e.emulatorSrv.Serve(ln)
	return nil
}

// stopEmulator stops what startEmulator started.
func (e *Pipeline) stopEmulator() {
	if e.emulatorSrv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		e.emulatorSrv.Shutdown(ctx)
		cancel()
	}
	if e.Emulator != nil {
		e.Emulator.Close()
	}
}
