package main

// The running control plane: which components run, how each is started (and restarted
// after a test killed it), and how the supervisor knows each is ready.

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"time"

	clientset "k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

// Component names, in start order.
const (
	compDatastore = "datastore"
	compAPIServer = "apiserver"
	compKCM       = "controller-manager"
	compScheduler = "scheduler"
	compPeerCCM   = "peer-ccm"
)

type cluster struct {
	l         *layout
	datastore string // "etcd" or "sqlite"
	admin     *clientset.Clientset
	ns        *netns

	mu         sync.Mutex
	components map[string]*child
	argv       map[string][]string
	groups     []*hollowProc
	nextIndex  int
	dirSeq     int
	// exits receives a component whose process ended unexpectedly.
	exits chan *child
}

func newCluster(l *layout, datastore string) *cluster {
	return &cluster{
		l: l, datastore: datastore,
		components: map[string]*child{},
		argv:       map[string][]string{},
		exits:      make(chan *child, 16),
	}
}

// start runs argv (after this program's path) as component name.
func (c *cluster) start(name string, argv []string) error {
	ch, err := startChild(c.l.logDir(), name, exec.Command(c.l.self, argv...))
	if err != nil {
		return err
	}
	c.mu.Lock()
	c.components[name] = ch
	c.argv[name] = argv
	c.mu.Unlock()
	go func() {
		<-ch.done
		if !ch.expected() {
			c.exits <- ch
		}
	}()
	return nil
}

// restart starts a stopped or killed component again with its original arguments.
func (c *cluster) restart(name string) error {
	c.mu.Lock()
	old, argv := c.components[name], c.argv[name]
	c.mu.Unlock()
	if old == nil {
		return fmt.Errorf("no component %q", name)
	}
	old.stop(10 * time.Second)
	return c.start(name, argv)
}

func (c *cluster) component(name string) *child {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.components[name]
}

// startDatastore starts etcd (or kine with SQLite) and returns the --etcd-servers value
// once it accepts connections.
func (c *cluster) startDatastore(ctx context.Context) (string, error) {
	clientPort, err := freePort()
	if err != nil {
		return "", err
	}
	var argv []string
	switch c.datastore {
	case "etcd":
		peerPort, err := freePort()
		if err != nil {
			return "", err
		}
		argv = []string{"etcd", "--data-dir", filepath.Join(c.l.dir, "etcd"),
			"--client-port", fmt.Sprint(clientPort), "--peer-port", fmt.Sprint(peerPort)}
	case "sqlite":
		metricsPort, err := freePort()
		if err != nil {
			return "", err
		}
		db := filepath.Join(c.l.dir, "db")
		if err := os.MkdirAll(db, 0o700); err != nil {
			return "", err
		}
		// k3s's own SQLite endpoint (k3s pkg/cluster/managed.go and kine's
		// drivers/sqlite DefaultParams): <data-dir>/db/state.db with WAL.
		argv = []string{"kine", "--listen-address", fmt.Sprintf("127.0.0.1:%d", clientPort),
			"--endpoint", "sqlite://" + filepath.Join(db, "state.db") + "?" + kineSQLiteParams,
			"--metrics-bind-address", fmt.Sprintf("127.0.0.1:%d", metricsPort)}
	default:
		return "", fmt.Errorf("unknown datastore %q (etcd or sqlite)", c.datastore)
	}
	if err := c.start(compDatastore, argv); err != nil {
		return "", err
	}
	addr := fmt.Sprintf("127.0.0.1:%d", clientPort)
	if err := waitFor(ctx, 60*time.Second, c.component(compDatastore), func() error {
		conn, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			conn.Close()
		}
		return err
	}); err != nil {
		return "", fmt.Errorf("%s did not start: %w", c.datastore, err)
	}
	return "http://" + addr, nil
}

// startAPIServer starts kube-apiserver and waits until /readyz answers ok to the admin.
func (c *cluster) startAPIServer(ctx context.Context, etcdServers string) error {
	flags, err := apiServerFlags(c.l, etcdServers)
	if err != nil {
		return err
	}
	if err := c.start(compAPIServer, append([]string{"apiserver"}, flags...)); err != nil {
		return err
	}
	return c.waitReady(ctx, 180*time.Second)
}

// waitReady polls /readyz with the admin identity.
func (c *cluster) waitReady(ctx context.Context, limit time.Duration) error {
	client, err := adminHTTPClient(c.l)
	if err != nil {
		return err
	}
	err = waitFor(ctx, limit, c.component(compAPIServer), func() error {
		resp, err := client.Get(c.l.server() + "/readyz")
		if err != nil {
			return err
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("/readyz: %d %s", resp.StatusCode, body)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("kube-apiserver not ready: %w (see %s)", err, filepath.Join(c.l.logDir(), "apiserver.log"))
	}
	if c.admin == nil {
		config, err := clientcmd.BuildConfigFromFlags("", c.l.kubeconfig("admin"))
		if err != nil {
			return err
		}
		config.QPS, config.Burst = 200, 400
		config.UserAgent = "testbed"
		if c.admin, err = clientset.NewForConfig(config); err != nil {
			return err
		}
	}
	return nil
}

// adminHTTPClient is a plain HTTPS client with the admin certificate.
func adminHTTPClient(l *layout) (*http.Client, error) {
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(l.ca.CertPEM())
	cert, err := tls.LoadX509KeyPair(filepath.Join(l.dir, "pki", "admin.crt"), filepath.Join(l.dir, "pki", "admin.key"))
	if err != nil {
		return nil, err
	}
	return &http.Client{
		Timeout:   5 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{cert}}},
	}, nil
}

// waitFor retries check every 200 ms until it succeeds, limit passes, ctx ends or the
// process ch exits.
func waitFor(ctx context.Context, limit time.Duration, ch *child, check func() error) error {
	deadline := time.Now().Add(limit)
	for {
		err := check()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-ch.done:
			return fmt.Errorf("%s exited (%v); last check: %w", ch.name, ch.err, err)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// stopAll stops the nodes first, then the components in reverse start order.
func (c *cluster) stopAll() {
	c.mu.Lock()
	groups := c.groups
	c.groups = nil
	c.mu.Unlock()
	var wg sync.WaitGroup
	for _, g := range groups {
		wg.Add(1)
		go func() {
			defer wg.Done()
			g.proc.stop(10 * time.Second)
			if g.netns != nil {
				g.netns.delete()
			}
		}()
	}
	wg.Wait()
	for _, name := range []string{compPeerCCM, compScheduler, compKCM, compAPIServer, compDatastore} {
		if ch := c.component(name); ch != nil {
			ch.stop(15 * time.Second)
		}
	}
	if c.ns != nil {
		c.ns.delete()
	}
	_ = os.RemoveAll(c.l.shortDir)
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
