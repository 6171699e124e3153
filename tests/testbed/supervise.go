package main

// Child processes of the supervisor: each component runs as `testbed <component>` with
// its output in <state>/logs/<name>.log, in its own process group, and dies with the
// supervisor (Pdeathsig) even when the supervisor is killed.

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"time"
)

// child is one supervised process.
type child struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}
	// err is the wait result, valid once done is closed.
	err error
	// expectExit is set when the supervisor (or a test, through `testbed signal`) stops
	// the process on purpose, so its exit is not a failure.
	mu         sync.Mutex
	expectExit bool
}

func (c *child) expect() {
	c.mu.Lock()
	c.expectExit = true
	c.mu.Unlock()
}

func (c *child) expected() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.expectExit
}

// startChild starts cmd with its output in logDir/name.log.
func startChild(logDir, name string, cmd *exec.Cmd) (*child, error) {
	if err := os.MkdirAll(logDir, 0o700); err != nil {
		return nil, err
	}
	log, err := os.OpenFile(filepath.Join(logDir, name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		log.Close()
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	c := &child{name: name, cmd: cmd, done: make(chan struct{})}
	go func() {
		c.err = cmd.Wait()
		log.Close()
		close(c.done)
	}()
	return c, nil
}

// running reports whether the process has not exited.
func (c *child) running() bool {
	select {
	case <-c.done:
		return false
	default:
		return true
	}
}

// signal sends sig to the child's process group.
func (c *child) signal(sig syscall.Signal) error {
	if !c.running() {
		return fmt.Errorf("%s is not running", c.name)
	}
	return syscall.Kill(-c.cmd.Process.Pid, sig)
}

// stop sends SIGTERM, then SIGKILL after grace, and waits for the exit.
func (c *child) stop(grace time.Duration) {
	c.expect()
	if !c.running() {
		return
	}
	_ = syscall.Kill(-c.cmd.Process.Pid, syscall.SIGCONT) // a paused child cannot exit
	_ = syscall.Kill(-c.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-c.done:
	case <-time.After(grace):
		_ = syscall.Kill(-c.cmd.Process.Pid, syscall.SIGKILL)
		<-c.done
	}
}

func (c *child) pid() int {
	if c.cmd.Process == nil {
		return 0
	}
	return c.cmd.Process.Pid
}
