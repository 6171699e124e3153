package main

// Nodes joining a running test bed: addresses on the namespace's interfaces, a client
// certificate per node, and one `testbed hollow` process per group of kubelets.

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// JoinRequest asks for Count new nodes.
type JoinRequest struct {
	Count int `json:"count"`
	// Prefix of the node names (default "tb-node"); names are <prefix>-1 to <prefix>-<count>.
	Prefix string `json:"prefix,omitempty"`
	// AddressIndex, when set, numbers the nodes' addresses from it instead of after the
	// last node's, so that two bursts that never run at once get the same addresses (a
	// benchmark's contestants meet identical nodes).
	AddressIndex int `json:"addressIndex,omitempty"`
	// K3s is the k3s role of the nodes: "agent" (default), "server" or "none" (a plain
	// kubelet, no k3s writes).
	K3s string `json:"k3s,omitempty"`
	// DualStack gives each node an IPv6 address besides its IPv4 one.
	DualStack bool `json:"dualStack,omitempty"`
	// ExternalIP gives each node an external address (k3s --node-external-ip).
	ExternalIP bool `json:"externalIP,omitempty"`
	// NotExternal runs the kubelets without --cloud-provider=external: no taint, and the
	// kubelet reports its own addresses on every status sync.
	NotExternal bool `json:"notExternal,omitempty"`
	// KubeletNodeIP is what the kubelet gets as --node-ip: "k3s" (default: as k3s with
	// --disable-cloud-controller passes it, only for a single-stack node), "all" (the
	// operator's --kubelet-arg=node-ip=v4,v6) or "none".
	KubeletNodeIP string `json:"kubeletNodeIP,omitempty"`
	// AgentDelay and ServerDelay (Go durations) time the k3s writes after the kubelet
	// starts; defaults 200ms and 500ms.
	AgentDelay  string `json:"agentDelay,omitempty"`
	ServerDelay string `json:"serverDelay,omitempty"`
	// Labels are kubelet --node-labels.
	Labels map[string]string `json:"labels,omitempty"`
	// OwnNetns gives each node a network namespace of its own (nodenetns.go): eth0 with
	// its internal addresses, eth1 with a public one, which no k3s flag names unless
	// ExternalIP is set too.
	OwnNetns bool `json:"ownNetns,omitempty"`
}

// JoinedNode describes a node the test bed started.
type JoinedNode struct {
	Name        string   `json:"name"`
	InternalIPs []string `json:"internalIPs"`
	ExternalIPs []string `json:"externalIPs,omitempty"`
	KubeletIP   string   `json:"kubeletNodeIP,omitempty"`
	Group       string   `json:"group"`
	// PublicIPs are on eth1 of the node's own namespace (OwnNetns).
	PublicIPs []string `json:"publicIPs,omitempty"`
	// Netns is the node's own namespace (OwnNetns), for `ip netns exec`.
	Netns string `json:"netns,omitempty"`
}

// kubeletsPerProcess is 1, as upstream kubemark runs them: a second kubelet in the same
// process panics when its Run registers the volume-stats and log metrics collectors a
// second time (k8s.io/kubernetes pkg/kubelet/kubelet.go, initializeModules:
// metrics.RegisterCollectors -> legacyregistry.CustomMustRegister, "duplicate metrics
// collector registration attempted"), and the legacy registry cannot be replaced.
const kubeletsPerProcess = 1

// hollowProc is one running `testbed hollow` process.
type hollowProc struct {
	name  string
	nodes []JoinedNode
	proc  *child
	// netns is the node's own namespace (OwnNetns), nil in the shared one.
	netns *nodeNetns
}

// Address plans: internal 10.44.0.0/16 and fd44::/64, external 198.18.0.0/15 (RFC 2544,
// benchmarking) and 2001:db8::/32 (documentation). Node n gets the n-th host of each.
var (
	internalV4 = netip.MustParseAddr("10.44.0.0")
	internalV6 = netip.MustParseAddr("fd44::")
	externalV4 = netip.MustParseAddr("198.18.0.0")
	externalV6 = netip.MustParseAddr("2001:db8::")
)

func nthAddr(base netip.Addr, n int) string {
	b := base.AsSlice()
	for i := len(b) - 1; i >= 0 && n > 0; i-- {
		sum := int(b[i]) + n
		b[i] = byte(sum)
		n = sum >> 8
	}
	a, _ := netip.AddrFromSlice(b)
	return a.String()
}

func (r *JoinRequest) defaults() error {
	if r.Count <= 0 {
		return fmt.Errorf("count must be at least 1")
	}
	if r.Prefix == "" {
		r.Prefix = "tb-node"
	}
	if r.K3s == "" {
		r.K3s = "agent"
	}
	if r.K3s != "agent" && r.K3s != "server" && r.K3s != "none" {
		return fmt.Errorf("k3s must be agent, server or none, not %q", r.K3s)
	}
	if r.KubeletNodeIP == "" {
		r.KubeletNodeIP = "k3s"
	}
	if r.KubeletNodeIP != "k3s" && r.KubeletNodeIP != "all" && r.KubeletNodeIP != "none" {
		return fmt.Errorf("kubeletNodeIP must be k3s, all or none, not %q", r.KubeletNodeIP)
	}
	if r.AgentDelay == "" {
		r.AgentDelay = "200ms"
	}
	if r.ServerDelay == "" {
		r.ServerDelay = "500ms"
	}
	for _, d := range []string{r.AgentDelay, r.ServerDelay} {
		if _, err := time.ParseDuration(d); err != nil {
			return fmt.Errorf("bad delay %q: %w", d, err)
		}
	}
	return nil
}

// join starts the requested nodes and returns them; the kubelets register on their own.
func (c *cluster) join(req JoinRequest) ([]JoinedNode, error) {
	if err := req.defaults(); err != nil {
		return nil, err
	}
	agentDelay, _ := time.ParseDuration(req.AgentDelay)
	serverDelay, _ := time.ParseDuration(req.ServerDelay)

	c.mu.Lock()
	first := req.AddressIndex
	if first <= 0 {
		first = c.nextIndex + 1
		c.nextIndex += req.Count
	}
	c.mu.Unlock()

	var all []JoinedNode
	for start := 0; start < req.Count; start += kubeletsPerProcess {
		end := min(start+kubeletsPerProcess, req.Count)
		group := &HollowGroup{
			Name:            fmt.Sprintf("hollow-%s-%d", req.Prefix, start+1),
			AdminKubeconfig: c.l.kubeconfig("admin"),
		}
		var joined []JoinedNode
		var internal, external []string
		for i := start; i < end; i++ {
			node, spec, err := c.nodeSpec(req, i+1, first+i, agentDelay, serverDelay)
			if err != nil {
				return all, err
			}
			node.Group = group.Name
			joined = append(joined, node)
			group.Nodes = append(group.Nodes, spec)
			internal = append(internal, node.InternalIPs...)
			external = append(external, node.ExternalIPs...)
			external = append(external, node.PublicIPs...)
		}
		ns := c.ns
		var own *nodeNetns
		if req.OwnNetns {
			var err error
			// Numbered from a sequence, not by address: two bursts with the same
			// AddressIndex must not share (or delete) a namespace.
			if own, err = c.createNodeNetns(c.nextDir(), internal, external); err != nil {
				return all, err
			}
			ns = own.ns
			for i := range joined {
				joined[i].Netns = own.ns.name
			}
		} else {
			if err := ns.addAddresses(internalLink, internal); err != nil {
				return all, err
			}
			if err := ns.addAddresses(externalLink, external); err != nil {
				return all, err
			}
		}
		if err := os.MkdirAll(filepath.Join(c.l.dir, "nodes"), 0o700); err != nil {
			return all, err
		}
		groupFile := filepath.Join(c.l.dir, "nodes", group.Name+".json")
		if err := writeJSON(groupFile, group); err != nil {
			return all, err
		}
		cmd := ns.command(c.l.self, "hollow", "--group", groupFile)
		proc, err := startChild(c.l.logDir(), group.Name, cmd)
		if err != nil {
			if own != nil {
				own.delete()
			}
			return all, err
		}
		c.mu.Lock()
		c.groups = append(c.groups, &hollowProc{name: group.Name, nodes: joined, proc: proc, netns: own})
		c.mu.Unlock()
		all = append(all, joined...)
	}
	return all, nil
}

// nodeSpec plans the i-th node of a request, with address number n: its addresses,
// identity, kubelet flags and k3s writes.
func (c *cluster) nodeSpec(req JoinRequest, i, n int, agentDelay, serverDelay time.Duration) (JoinedNode, HollowNode, error) {
	name := fmt.Sprintf("%s-%d", req.Prefix, i)
	node := JoinedNode{Name: name, InternalIPs: []string{nthAddr(internalV4, n)}}
	if req.DualStack {
		node.InternalIPs = append(node.InternalIPs, nthAddr(internalV6, n))
	}
	var external []string
	if req.ExternalIP || req.OwnNetns {
		external = []string{nthAddr(externalV4, n)}
		if req.DualStack {
			external = append(external, nthAddr(externalV6, n))
		}
	}
	if req.ExternalIP {
		node.ExternalIPs = external
	} else {
		node.PublicIPs = external
	}
	// k3s pkg/daemons/agent/agent_linux.go, kubeletArgsAndConfig: with the embedded CCM
	// disabled, the kubelet gets --node-ip only for a single-stack node.
	switch req.KubeletNodeIP {
	case "all":
		node.KubeletIP = strings.Join(node.InternalIPs, ",")
	case "k3s":
		if len(node.InternalIPs) == 1 {
			node.KubeletIP = node.InternalIPs[0]
		}
	}
	kubeconfig, err := c.l.nodeKubeconfig(name)
	if err != nil {
		return node, HollowNode{}, err
	}
	spec := HollowNode{
		Name:         name,
		Dir:          filepath.Join(c.l.shortDir, fmt.Sprint(c.nextDir())),
		Kubeconfig:   kubeconfig,
		NodeIP:       node.KubeletIP,
		External:     !req.NotExternal,
		Labels:       req.Labels,
		InterfaceIPs: append(append([]string{}, node.InternalIPs...), external...),
	}
	if req.K3s != "none" {
		spec.K3s = &K3sNode{
			Role:        req.K3s,
			NodeArgs:    k3sNodeArgs(req.K3s, node, !req.NotExternal),
			AgentDelay:  Duration{agentDelay},
			ServerDelay: Duration{serverDelay},
		}
	}
	return node, spec, nil
}

// nextDir numbers kubelet root directories: short, and never reused within a test bed.
func (c *cluster) nextDir() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.dirSeq++
	return c.dirSeq
}

// k3sNodeArgs is the command line a k3s node with these addresses records in
// k3s.io/node-args: `--flag value` pairs, secrets as ******** (k3s
// pkg/nodeconfig/nodeconfig.go getNodeArgs).
func k3sNodeArgs(role string, node JoinedNode, external bool) []string {
	args := []string{role}
	if role == "server" {
		args = append(args, "--disable-cloud-controller", "--disable", "servicelb")
	} else {
		args = append(args, "--server", "https://10.44.0.1:6443")
	}
	args = append(args, "--token", "********", "--node-ip", strings.Join(node.InternalIPs, ","))
	if len(node.ExternalIPs) > 0 {
		args = append(args, "--node-external-ip", strings.Join(node.ExternalIPs, ","))
	}
	if external {
		args = append(args, "--kubelet-arg", "cloud-provider=external")
	}
	if len(node.InternalIPs) > 1 && node.KubeletIP != "" {
		args = append(args, "--kubelet-arg", "node-ip="+node.KubeletIP)
	}
	return args
}

// leave stops the named groups (all when none are named) and deletes their Nodes.
func (c *cluster) leave(ctx context.Context, groups []string) (int, error) {
	want := map[string]bool{}
	for _, g := range groups {
		want[g] = true
	}
	c.mu.Lock()
	var stopping, keep []*hollowProc
	for _, g := range c.groups {
		if len(want) == 0 || want[g.name] {
			stopping = append(stopping, g)
		} else {
			keep = append(keep, g)
		}
	}
	c.groups = keep
	c.mu.Unlock()
	deleted := 0
	for _, g := range stopping {
		g.proc.stop(10 * time.Second)
		if g.netns != nil {
			g.netns.delete()
		}
		for _, n := range g.nodes {
			err := c.admin.CoreV1().Nodes().Delete(ctx, n.Name, metav1.DeleteOptions{})
			if err != nil && !apierrors.IsNotFound(err) {
				return deleted, fmt.Errorf("deleting node %s: %w", n.Name, err)
			}
			deleted++
		}
	}
	return deleted, nil
}
