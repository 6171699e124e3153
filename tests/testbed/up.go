package main

// `testbed up`: start everything, write the admin kubeconfig once /readyz answers, join
// the first nodes, serve the control API, and on SIGTERM or Ctrl-C stop everything and
// remove the namespace and the state directory.

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"
)

type upOptions struct {
	hollowNodes   int
	serverNodes   int
	notExternal   int
	kubeconfigOut string
	datastore     string
	stateDir      string
	keepState     bool
	noK3sWrites   bool
	dualStack     bool
	externalIP    bool
	peerCCM       bool
	peerWorkers   int
	peerQPS       float64
	peerBurst     int
	exitWithPID   int
}

func runUp(args []string) int {
	var o upOptions
	fs := flag.NewFlagSet("up", flag.ContinueOnError)
	fs.IntVar(&o.hollowNodes, "hollow-nodes", 0, "hollow kubelets to start with (k3s agents unless --no-k3s-writes)")
	fs.IntVar(&o.serverNodes, "server-nodes", 1, "how many of --hollow-nodes are k3s servers (control-plane role labels)")
	fs.IntVar(&o.notExternal, "not-external-nodes", 0, "extra hollow kubelets without --cloud-provider=external")
	fs.StringVar(&o.kubeconfigOut, "kubeconfig-out", "", "where to write the admin kubeconfig (required)")
	fs.StringVar(&o.datastore, "datastore", "etcd", "etcd (embedded) or sqlite (kine, k3s's default)")
	fs.StringVar(&o.stateDir, "state-dir", "", "state directory (default: a new temporary directory)")
	fs.BoolVar(&o.keepState, "keep-state", false, "keep the state directory (logs, audit log) on exit")
	fs.BoolVar(&o.noK3sWrites, "no-k3s-writes", false, "plain kubelets: no k3s agent or server writes")
	fs.BoolVar(&o.dualStack, "dual-stack", false, "IPv4 and IPv6 addresses for the first nodes")
	fs.BoolVar(&o.externalIP, "external-ip", false, "an external address for each of the first nodes")
	fs.BoolVar(&o.peerCCM, "peer-ccm", false, "run the upstream cloud-node controller")
	fs.IntVar(&o.peerWorkers, "peer-ccm-workers", 1, "its --concurrent-node-syncs (upstream default 1)")
	fs.Float64Var(&o.peerQPS, "peer-ccm-qps", 20, "its client QPS (upstream default 20)")
	fs.IntVar(&o.peerBurst, "peer-ccm-burst", 30, "its client burst (upstream default 30)")
	fs.IntVar(&o.exitWithPID, "exit-with-pid", 0, "stop (and clean up) when the process with this PID ends, e.g. a test binary")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if o.kubeconfigOut == "" {
		fmt.Fprintln(os.Stderr, "testbed up: --kubeconfig-out FILE is required")
		return 2
	}
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "testbed up: must run as root (it creates a network namespace for the nodes' addresses)")
		return 2
	}
	if _, err := exec.LookPath("ip"); err != nil {
		fmt.Fprintln(os.Stderr, "testbed up: the `ip` command (iproute2) is required")
		return 2
	}
	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer cancel()
	if o.exitWithPID > 0 {
		go func() {
			for syscall.Kill(o.exitWithPID, 0) == nil {
				time.Sleep(500 * time.Millisecond)
			}
			progress("process %d ended", o.exitWithPID)
			cancel()
		}()
	}
	if err := up(ctx, o); err != nil {
		fmt.Fprintf(os.Stderr, "testbed up: %v\n", err)
		return 1
	}
	return 0
}

func progress(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "testbed: "+format+"\n", args...)
}

func up(ctx context.Context, o upOptions) (err error) {
	if o.stateDir == "" {
		if o.stateDir, err = os.MkdirTemp("", "bare-ccm-testbed-"); err != nil {
			return err
		}
	}
	kubeconfigOut, err := filepath.Abs(o.kubeconfigOut)
	if err != nil {
		return err
	}
	started := time.Now()
	l, err := newLayout(o.stateDir)
	if err != nil {
		return err
	}
	c := newCluster(l, o.datastore)
	defer func() {
		progress("stopping")
		c.stopAll()
		_ = os.Remove(kubeconfigOut)
		if !o.keepState {
			_ = os.RemoveAll(o.stateDir)
		}
		progress("stopped")
	}()

	progress("state in %s; starting %s", o.stateDir, o.datastore)
	etcdServers, err := c.startDatastore(ctx)
	if err != nil {
		return err
	}
	progress("starting kube-apiserver on %s", l.server())
	if err := c.startAPIServer(ctx, etcdServers); err != nil {
		return err
	}
	if err := installPeerRBAC(ctx, c.admin); err != nil {
		return fmt.Errorf("installing the peer CCM's RBAC: %w", err)
	}
	if err := copyFile(l.kubeconfig("admin"), kubeconfigOut); err != nil {
		return err
	}
	progress("kube-apiserver ready after %s; admin kubeconfig in %s", time.Since(started).Round(time.Millisecond), kubeconfigOut)

	if err := c.start(compKCM, append([]string{"controller-manager"}, controllerManagerFlags(l)...)); err != nil {
		return err
	}
	if err := c.start(compScheduler, append([]string{"scheduler"}, schedulerFlags(l)...)); err != nil {
		return err
	}
	if c.ns, err = createNetns(fmt.Sprintf("bccm-tb-%d", os.Getpid())); err != nil {
		return err
	}
	ln, err := listenIn("/var/run/netns/"+c.ns.name, fmt.Sprintf("127.0.0.1:%d", l.apiPort))
	if err != nil {
		return fmt.Errorf("API forwarder in the nodes' namespace: %w", err)
	}
	defer ln.Close()
	go forward(ln, fmt.Sprintf("127.0.0.1:%d", l.apiPort))

	if o.peerCCM {
		argv := []string{"peer-ccm", "--kubeconfig", l.kubeconfig("peer-ccm"),
			"--concurrent-node-syncs", fmt.Sprint(o.peerWorkers),
			"--kube-api-qps", fmt.Sprint(o.peerQPS), "--kube-api-burst", fmt.Sprint(o.peerBurst)}
		if err := c.start(compPeerCCM, argv); err != nil {
			return err
		}
	}
	stopControl, err := c.serveControl(ctx)
	if err != nil {
		return err
	}
	defer stopControl()

	if err := c.joinInitial(o); err != nil {
		return err
	}
	progress("ready after %s: %d hollow nodes joining; control socket %s", time.Since(started).Round(time.Millisecond),
		o.hollowNodes+o.notExternal, l.controlSocket())
	if err := writeJSON(filepath.Join(o.stateDir, "ready.json"), c.status()); err != nil {
		return err
	}

	select {
	case <-ctx.Done():
		return nil
	case ch := <-c.exits:
		return fmt.Errorf("%s exited unexpectedly (%v); its log: %s", ch.name, ch.err,
			filepath.Join(l.logDir(), ch.name+".log"))
	}
}

// joinInitial starts the nodes `up` was asked for.
func (c *cluster) joinInitial(o upOptions) error {
	k3s := func(role string) string {
		if o.noK3sWrites {
			return "none"
		}
		return role
	}
	servers := min(o.serverNodes, o.hollowNodes)
	if o.noK3sWrites {
		servers = 0
	}
	base := JoinRequest{DualStack: o.dualStack, ExternalIP: o.externalIP}
	for _, req := range []JoinRequest{
		{Count: servers, Prefix: "tb-server", K3s: k3s("server")},
		{Count: o.hollowNodes - servers, Prefix: "tb-agent", K3s: k3s("agent")},
		{Count: o.notExternal, Prefix: "tb-legacy", K3s: k3s("agent"), NotExternal: true},
	} {
		if req.Count <= 0 {
			continue
		}
		req.DualStack, req.ExternalIP = base.DualStack, base.ExternalIP
		if _, err := c.join(req); err != nil {
			return err
		}
	}
	return nil
}

func copyFile(from, to string) error {
	data, err := os.ReadFile(from)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(to), 0o700); err != nil {
		return err
	}
	tmp := to + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, to)
}
