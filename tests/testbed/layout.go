package main

// The state directory of one test bed and everything in it: PKI, kubeconfigs, ports,
// logs, the audit log and the control socket.

import (
	"crypto/x509/pkix"
	"fmt"
	"net"
	"os"
	"path/filepath"
)

// Identities with kubeconfigs in every test bed (user name, groups).
var identities = map[string]pkix.Name{
	"admin":              {CommonName: "testbed-admin", Organization: []string{"system:masters"}},
	"controller-manager": {CommonName: "system:kube-controller-manager"},
	"scheduler":          {CommonName: "system:kube-scheduler"},
	"peer-ccm":           {CommonName: peerCCMUser},
}

// peerCCMUser is the upstream CCM's identity, bound to the ClusterRole of rbac.go.
const peerCCMUser = "testbed:peer-ccm"

type layout struct {
	dir string
	// shortDir holds the kubelets' root directories: their unix sockets (the fake CRI's,
	// the kubelet's pod-resources socket) must have paths shorter than 108 bytes
	// (sun_path), which a state directory under a long TMPDIR would exceed.
	shortDir string
	ca       *CA
	serving  KeyPair
	saKey    KeyPair
	apiPort  int
	// self is this program, which every child process runs.
	self string
}

func newLayout(dir string) (*layout, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	l := &layout{dir: dir, self: self, shortDir: fmt.Sprintf("/tmp/bccm-%d", os.Getpid())}
	if err := os.MkdirAll(l.shortDir, 0o700); err != nil {
		return nil, err
	}
	if l.ca, err = newCA(filepath.Join(dir, "pki")); err != nil {
		return nil, err
	}
	hosts := []string{"127.0.0.1", "::1", "localhost", serviceIP,
		"kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local"}
	if l.serving, err = l.ca.Issue("apiserver", pkix.Name{CommonName: "kube-apiserver"}, hosts); err != nil {
		return nil, err
	}
	if l.saKey, err = serviceAccountKey(filepath.Join(dir, "pki")); err != nil {
		return nil, err
	}
	if l.apiPort, err = freePort(); err != nil {
		return nil, err
	}
	for name, subject := range identities {
		pair, err := l.ca.Issue(name, subject, nil)
		if err != nil {
			return nil, err
		}
		if err := writeKubeconfig(l.kubeconfig(name), l.server(), l.ca.CertPEM(), pair); err != nil {
			return nil, err
		}
	}
	return l, nil
}

func (l *layout) server() string { return fmt.Sprintf("https://127.0.0.1:%d", l.apiPort) }

func (l *layout) kubeconfig(name string) string {
	return filepath.Join(l.dir, "kubeconfigs", name+".yaml")
}

func (l *layout) auditLog() string      { return filepath.Join(l.dir, "audit.log") }
func (l *layout) logDir() string        { return filepath.Join(l.dir, "logs") }
func (l *layout) controlSocket() string { return filepath.Join(l.dir, "control.sock") }

// nodeKubeconfig issues a node's client certificate (system:node:<name> in group
// system:nodes, the identity the Node authorizer and NodeRestriction act on) and writes
// its kubeconfig.
func (l *layout) nodeKubeconfig(name string) (string, error) {
	subject := pkix.Name{CommonName: "system:node:" + name, Organization: []string{"system:nodes"}}
	pair, err := l.ca.Issue("node-"+name, subject, nil)
	if err != nil {
		return "", err
	}
	path := filepath.Join(l.dir, "kubeconfigs", "node-"+name+".yaml")
	return path, writeKubeconfig(path, l.server(), l.ca.CertPEM(), pair)
}

// freePort asks the kernel for an unused loopback port.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}
