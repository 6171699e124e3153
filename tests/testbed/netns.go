package main

// The nodes' network namespace. A kubelet refuses a --node-ip that is not on one of its
// host's interfaces (kubernetes pkg/kubelet/kubelet_node_status.go, validateNodeIP), so
// the hollow kubelets run inside a namespace the test bed creates, where the node IPs sit
// on veth interfaces (this kernel has no dummy links; veth works the same for this). No
// traffic is ever sent to those addresses: the only connection that crosses is the one
// to the API server, through a forwarder listening on 127.0.0.1:<api port> inside the
// namespace, so the same kubeconfig works on both sides.

import (
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

// Interfaces of a node namespace: eth0 carries the internal addresses, eth1 the
// external ones. Their veth peers are named veth-*, which `bare-ccm agent` skips.
const (
	internalLink = "eth0"
	externalLink = "eth1"
)

// netns is a network namespace made by the test bed.
type netns struct {
	name string
	mu   sync.Mutex
	// addresses already assigned, to make joins idempotent.
	assigned map[string]bool
}

// ip runs one `ip` command.
func ip(args ...string) error {
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// createNetns makes the namespace with loopback up and the two veth pairs.
func createNetns(name string) (*netns, error) {
	_ = ip("netns", "del", name) // a leftover of a killed run
	if err := ip("netns", "add", name); err != nil {
		return nil, err
	}
	ns := &netns{name: name, assigned: map[string]bool{}}
	cmds := [][]string{{"link", "set", "lo", "up"}}
	for _, link := range []string{internalLink, externalLink} {
		cmds = append(cmds,
			[]string{"link", "add", link, "type", "veth", "peer", "name", "veth-" + link},
			[]string{"link", "set", link, "up"},
			[]string{"link", "set", "veth-" + link, "up"},
		)
	}
	for _, c := range cmds {
		if err := ip(append([]string{"-n", name}, c...)...); err != nil {
			ns.delete()
			return nil, err
		}
	}
	return ns, nil
}

// addAddresses puts each address (host route, /32 or /128) on link, in one `ip -batch`.
func (ns *netns) addAddresses(link string, addrs []string) error {
	ns.mu.Lock()
	defer ns.mu.Unlock()
	var batch strings.Builder
	for _, a := range addrs {
		parsed := net.ParseIP(a)
		if parsed == nil {
			return fmt.Errorf("not an IP address: %q", a)
		}
		if ns.assigned[a] {
			continue
		}
		ns.assigned[a] = true
		if parsed.To4() != nil {
			fmt.Fprintf(&batch, "addr add %s/32 dev %s\n", a, link)
		} else {
			// nodad: usable at once, so the kubelet finds it when it starts.
			fmt.Fprintf(&batch, "addr add %s/128 dev %s nodad\n", a, link)
		}
	}
	if batch.Len() == 0 {
		return nil
	}
	cmd := exec.Command("ip", "-n", ns.name, "-batch", "-")
	cmd.Stdin = strings.NewReader(batch.String())
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("adding addresses in %s: %v: %s", ns.name, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// exec returns a command that runs argv inside the namespace.
func (ns *netns) command(argv ...string) *exec.Cmd {
	return exec.Command("ip", append([]string{"netns", "exec", ns.name}, argv...)...)
}

func (ns *netns) delete() { _ = ip("netns", "del", ns.name) }

// listenIn opens a TCP listener inside the namespace nsPath (a /var/run/netns file)
// from this process: the socket keeps the namespace it was created in, so only the one
// OS thread that creates it needs to switch (and switch back).
func listenIn(nsPath, addr string) (net.Listener, error) {
	runtime.LockOSThread()
	own, err := os.Open(fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid()))
	if err != nil {
		runtime.UnlockOSThread()
		return nil, err
	}
	defer own.Close()
	target, err := os.Open(nsPath)
	if err != nil {
		runtime.UnlockOSThread()
		return nil, err
	}
	defer target.Close()
	if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
		runtime.UnlockOSThread()
		return nil, fmt.Errorf("entering %s: %w", nsPath, err)
	}
	ln, listenErr := net.Listen("tcp", addr)
	if err := unix.Setns(int(own.Fd()), unix.CLONE_NEWNET); err != nil {
		// The thread stays in the wrong namespace: keep it locked so that the runtime
		// discards it when this goroutine ends, instead of reusing it.
		if ln != nil {
			ln.Close()
		}
		return nil, fmt.Errorf("leaving %s: %w", nsPath, err)
	}
	runtime.UnlockOSThread()
	return ln, listenErr
}

// forward accepts connections on ln and splices each to target (in this process's own
// namespace) until ln is closed.
func forward(ln net.Listener, target string) {
	for {
		in, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer in.Close()
			out, err := net.Dial("tcp", target)
			if err != nil {
				return
			}
			defer out.Close()
			done := make(chan struct{}, 2)
			go func() { _, _ = io.Copy(out, in); closeWrite(out); done <- struct{}{} }()
			go func() { _, _ = io.Copy(in, out); closeWrite(in); done <- struct{}{} }()
			<-done
			<-done
		}()
	}
}

func closeWrite(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.CloseWrite()
	}
}
