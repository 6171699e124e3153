package main

// The supervisor's control API: HTTP with JSON bodies on <state>/control.sock, so that
// tests and benchmarks can add nodes, remove them, and pause, kill or restart a
// component while the test bed runs. `testbed join|leave|signal|status` are its clients.

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// SignalRequest asks for a signal to a component, or its restart.
type SignalRequest struct {
	Component string `json:"component"`
	// Signal is STOP, CONT, TERM, KILL or RESTART.
	Signal string `json:"signal"`
}

// LeaveRequest names hollow groups to stop; none means all.
type LeaveRequest struct {
	Groups []string `json:"groups,omitempty"`
}

// Status describes a running test bed.
type Status struct {
	Server     string            `json:"server"`
	Kubeconfig string            `json:"kubeconfig"`
	AuditLog   string            `json:"auditLog"`
	Datastore  string            `json:"datastore"`
	Netns      string            `json:"netns"`
	Components map[string]int    `json:"components"` // name -> pid (0 when not running)
	Nodes      []JoinedNode      `json:"nodes"`
	GroupPIDs  map[string]int    `json:"groupPids"`
	Logs       string            `json:"logs"`
	Extra      map[string]string `json:"extra,omitempty"`
}

var signals = map[string]syscall.Signal{
	"STOP": syscall.SIGSTOP, "CONT": syscall.SIGCONT, "TERM": syscall.SIGTERM, "KILL": syscall.SIGKILL,
}

func (c *cluster) serveControl(ctx context.Context) (func(), error) {
	_ = os.Remove(c.l.controlSocket())
	ln, err := net.Listen("unix", c.l.controlSocket())
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /join", func(w http.ResponseWriter, r *http.Request) {
		var req JoinRequest
		if !decode(w, r, &req) {
			return
		}
		nodes, err := c.join(req)
		reply(w, nodes, err)
	})
	mux.HandleFunc("POST /leave", func(w http.ResponseWriter, r *http.Request) {
		var req LeaveRequest
		if !decode(w, r, &req) {
			return
		}
		n, err := c.leave(r.Context(), req.Groups)
		reply(w, map[string]int{"deleted": n}, err)
	})
	mux.HandleFunc("POST /signal", func(w http.ResponseWriter, r *http.Request) {
		var req SignalRequest
		if !decode(w, r, &req) {
			return
		}
		reply(w, map[string]string{"done": req.Signal}, c.signal(req))
	})
	mux.HandleFunc("POST /address", func(w http.ResponseWriter, r *http.Request) {
		var req AddressRequest
		if !decode(w, r, &req) {
			return
		}
		reply(w, map[string]string{"added": strings.Join(req.Addresses, ",")}, c.addAddress(req))
	})
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, r *http.Request) {
		reply(w, c.status(), nil)
	})
	server := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = server.Serve(ln) }()
	return func() {
		shutdown, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		_ = server.Shutdown(shutdown)
		_ = os.Remove(c.l.controlSocket())
	}, nil
}

func (c *cluster) signal(req SignalRequest) error {
	ch := c.component(req.Component)
	if ch == nil {
		return fmt.Errorf("no component %q (datastore, apiserver, controller-manager, scheduler, peer-ccm)", req.Component)
	}
	sig := strings.ToUpper(req.Signal)
	if sig == "RESTART" {
		return c.restart(req.Component)
	}
	s, ok := signals[sig]
	if !ok {
		return fmt.Errorf("unknown signal %q (STOP, CONT, TERM, KILL, RESTART)", req.Signal)
	}
	if s == syscall.SIGKILL || s == syscall.SIGTERM {
		ch.expect() // a test stops it on purpose; RESTART brings it back
	}
	return ch.signal(s)
}

func (c *cluster) status() Status {
	c.mu.Lock()
	defer c.mu.Unlock()
	st := Status{
		Server: c.l.server(), Kubeconfig: c.l.kubeconfig("admin"), AuditLog: c.l.auditLog(),
		Datastore: c.datastore, Components: map[string]int{}, GroupPIDs: map[string]int{},
		Logs: c.l.logDir(),
	}
	if c.ns != nil {
		st.Netns = c.ns.name
	}
	for name, ch := range c.components {
		pid := 0
		if ch.running() {
			pid = ch.pid()
		}
		st.Components[name] = pid
	}
	for _, g := range c.groups {
		st.Nodes = append(st.Nodes, g.nodes...)
		if g.proc.running() {
			st.GroupPIDs[g.name] = g.proc.pid()
		}
	}
	return st
}

func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	if err := json.NewDecoder(r.Body).Decode(v); err != nil && err != io.EOF {
		http.Error(w, "bad request body: "+err.Error(), http.StatusBadRequest)
		return false
	}
	return true
}

func reply(w http.ResponseWriter, v any, err error) {
	w.Header().Set("Content-Type", "application/json")
	if err != nil {
		w.WriteHeader(http.StatusInternalServerError)
		_ = json.NewEncoder(w).Encode(map[string]string{"error": err.Error()})
		return
	}
	_ = json.NewEncoder(w).Encode(v)
}

// controlRequest sends one request to the supervisor whose state is in stateDir and
// returns its JSON answer.
func controlRequest(stateDir, method, path string, body any) ([]byte, error) {
	sock := filepath.Join(stateDir, "control.sock")
	client := &http.Client{
		Timeout: 10 * time.Minute,
		Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", sock)
		}},
	}
	var reader io.Reader
	if body != nil {
		data, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		reader = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, "http://testbed"+path, reader)
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("cannot reach the test bed at %s: %w", sock, err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s %s: %s", method, path, strings.TrimSpace(string(out)))
	}
	return out, nil
}

// controlFlags starts the flags of a command that talks to the running test bed with
// its --state-dir.
func controlFlags(name string) (*flag.FlagSet, *string) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	stateDir := fs.String("state-dir", "", "state directory of the running test bed (default $TESTBED_STATE)")
	return fs, stateDir
}

// call is controlRequest for the command line: the answer goes to stdout.
func call(stateDir, method, path string, body any) int {
	if stateDir == "" {
		stateDir = os.Getenv("TESTBED_STATE")
	}
	if stateDir == "" {
		fmt.Fprintln(os.Stderr, "testbed: --state-dir (or TESTBED_STATE) names the running test bed")
		return 2
	}
	out, err := controlRequest(stateDir, method, path, body)
	if err != nil {
		fmt.Fprintf(os.Stderr, "testbed: %v\n", err)
		return 1
	}
	os.Stdout.Write(out)
	return 0
}

func runJoin(args []string) int {
	fs, stateDir := controlFlags("join")
	var req JoinRequest
	fs.IntVar(&req.Count, "nodes", 1, "how many nodes join")
	fs.IntVar(&req.AddressIndex, "address-index", 0, "number the addresses from this index (default: after the last node's)")
	fs.StringVar(&req.Prefix, "prefix", "", "node name prefix (default tb-node)")
	fs.StringVar(&req.K3s, "k3s", "", "k3s role: agent (default), server, none")
	fs.BoolVar(&req.DualStack, "dual-stack", false, "IPv4 and IPv6 node addresses")
	fs.BoolVar(&req.ExternalIP, "external-ip", false, "an external address per node (k3s --node-external-ip)")
	fs.BoolVar(&req.NotExternal, "not-external", false, "kubelets without --cloud-provider=external")
	fs.StringVar(&req.KubeletNodeIP, "kubelet-node-ip", "", "kubelet --node-ip: k3s (default), all, none")
	fs.StringVar(&req.AgentDelay, "agent-delay", "", "k3s agent write delay (default 200ms)")
	fs.StringVar(&req.ServerDelay, "server-delay", "", "k3s server label delay (default 500ms)")
	fs.BoolVar(&req.OwnNetns, "own-netns", false, "each node in a namespace of its own: eth0 internal, eth1 a public address")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	return call(*stateDir, "POST", "/join", req)
}

func runAddress(args []string) int {
	fs, stateDir := controlFlags("address")
	var req AddressRequest
	fs.StringVar(&req.Node, "node", "", "the node whose interface gets the addresses")
	fs.StringVar(&req.Link, "link", externalLink, "eth0 (internal) or eth1 (external)")
	add := fs.String("add", "", "comma-separated addresses to add")
	if err := fs.Parse(args); err != nil || req.Node == "" || *add == "" {
		fmt.Fprintln(os.Stderr, "testbed address: --node and --add are required")
		return 2
	}
	req.Addresses = strings.Split(*add, ",")
	return call(*stateDir, "POST", "/address", req)
}

func runLeave(args []string) int {
	fs, stateDir := controlFlags("leave")
	groups := fs.String("groups", "", "comma-separated hollow groups to stop (default: all)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	var req LeaveRequest
	if *groups != "" {
		req.Groups = strings.Split(*groups, ",")
	}
	return call(*stateDir, "POST", "/leave", req)
}

func runSignal(args []string) int {
	fs, stateDir := controlFlags("signal")
	var req SignalRequest
	fs.StringVar(&req.Component, "component", "apiserver", "datastore, apiserver, controller-manager, scheduler, peer-ccm")
	fs.StringVar(&req.Signal, "signal", "", "STOP, CONT, TERM, KILL or RESTART")
	if err := fs.Parse(args); err != nil || req.Signal == "" {
		fmt.Fprintln(os.Stderr, "testbed signal: --signal is required")
		return 2
	}
	return call(*stateDir, "POST", "/signal", req)
}

func runStatus(args []string) int {
	fs, stateDir := controlFlags("status")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	return call(*stateDir, "GET", "/status", nil)
}
