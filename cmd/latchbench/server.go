package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// buildLatchd builds cmd/latchd of the module that holds the working
// directory into dir and returns the binary's path.
func buildLatchd(ctx context.Context, dir string) (string, error) {
	mod, err := moduleDir(ctx)
	if err != nil {
		return "", err
	}
	return goBuildLatchd(ctx, mod, filepath.Join(dir, "latchd"))
}

// moduleDir returns the root of the module that holds the working
// directory, or an error outside one.
func moduleDir(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", errors.New("run latchbench inside the Latch module, or pass -latchd")
	}
	return filepath.Dir(mod), nil
}

// goBuildLatchd builds ./cmd/latchd of the source tree src as the binary
// bin and returns bin. Every latchd the benchmark runs is built this way, so
// two builds differ only in their source.
func goBuildLatchd(ctx context.Context, src, bin string) (string, error) {
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/latchd")
	cmd.Dir = src
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("go build ./cmd/latchd in %s: %w", src, err)
	}
	return bin, nil
}

// freeAddr returns a loopback address with a port that was free a moment ago.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// newMasterKey returns a random LATCH_MASTER_KEY, the same for every start of
// latchd in one run so that its signing keys survive a restart.
func newMasterKey() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.StdEncoding.EncodeToString(b)
}

// proc is a child process serving HTTP on addr.
type proc struct {
	name string
	addr string
	cmd  *exec.Cmd
	log  string
	exit chan error
}

func (p *proc) pid() int       { return p.cmd.Process.Pid }
func (p *proc) url() string    { return "http://" + p.addr }
func (p *proc) String() string { return fmt.Sprintf("%s (pid %d, %s)", p.name, p.pid(), p.addr) }

// startProc starts bin with args and env (on top of the environment less
// every LATCH_ variable), logging to logPath, and waits until GET
// readyPath answers 200.
func startProc(ctx context.Context, name, addr, bin string, args, env []string, logPath, readyPath string) (*proc, error) {
	lf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "LATCH_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, env...)
	cmd.Stdout, cmd.Stderr = lf, lf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		lf.Close()
		return nil, err
	}
	p := &proc{name: name, addr: addr, cmd: cmd, log: logPath, exit: make(chan error, 1)}
	go func() { p.exit <- cmd.Wait(); lf.Close() }()
	deadline := time.Now().Add(60 * time.Second)
	c := &http.Client{Timeout: time.Second}
	for {
		res, err := c.Get(p.url() + readyPath)
		if err == nil {
			io.Copy(io.Discard, res.Body)
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return p, nil
			}
		}
		select {
		case err := <-p.exit:
			return nil, fmt.Errorf("%s exited at start (%v); its log:\n%s", name, err, tail(logPath))
		case <-ctx.Done():
			p.stop()
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			p.stop()
			return nil, fmt.Errorf("%s did not become ready in 60s; its log:\n%s", name, tail(logPath))
		}
	}
}

// stop sends SIGTERM, waits up to 20 s for a clean exit, then kills.
func (p *proc) stop() {
	if p == nil || p.cmd.Process == nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exit:
	case <-time.After(20 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.exit
	}
}

func tail(path string) string {
	b, _ := os.ReadFile(path)
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}
