package main

// A node's own network namespace (join --own-netns): the host of a bare-metal node with
// two NICs, eth0 on the private network and eth1 on the public one, as `bare-ccm agent`
// meets it. Their veth peers are named veth-eth0 and veth-eth1, which the agent's
// default ignore list skips. The kubelet runs inside it; so can a test's agent
// (`ip netns exec`), reaching the API server through a forwarder on 127.0.0.1:<api port>
// in that namespace, as in the shared one (netns.go).

import (
	"fmt"
	"net"
	"os"
)

// nodeNetns is one node's namespace and its API forwarder.
type nodeNetns struct {
	ns *netns
	ln net.Listener
}

// createNodeNetns makes namespace number n, puts internal on eth0 and public on eth1,
// and starts the API forwarder in it.
func (c *cluster) createNodeNetns(n int, internal, public []string) (*nodeNetns, error) {
	ns, err := createNetns(fmt.Sprintf("bccm-tb-%d-n%d", os.Getpid(), n))
	if err != nil {
		return nil, err
	}
	if err := ns.addAddresses(internalLink, internal); err != nil {
		ns.delete()
		return nil, err
	}
	if err := ns.addAddresses(externalLink, public); err != nil {
		ns.delete()
		return nil, err
	}
	ln, err := listenIn("/var/run/netns/"+ns.name, fmt.Sprintf("127.0.0.1:%d", c.l.apiPort))
	if err != nil {
		ns.delete()
		return nil, fmt.Errorf("API forwarder in %s: %w", ns.name, err)
	}
	go forward(ln, fmt.Sprintf("127.0.0.1:%d", c.l.apiPort))
	return &nodeNetns{ns: ns, ln: ln}, nil
}

// delete stops the forwarder and removes the namespace (its interfaces go with it).
func (n *nodeNetns) delete() {
	n.ln.Close()
	n.ns.delete()
}

// AddressRequest puts addresses on an interface of a node's namespace while it runs (an
// operator adding an address), or of the shared namespace for a node without its own.
type AddressRequest struct {
	Node string `json:"node"`
	// Link is eth0 (internal) or eth1 (external).
	Link      string   `json:"link"`
	Addresses []string `json:"addresses"`
}

// addAddress serves AddressRequest.
func (c *cluster) addAddress(req AddressRequest) error {
	if req.Link != internalLink && req.Link != externalLink {
		return fmt.Errorf("link must be %s or %s, not %q", internalLink, externalLink, req.Link)
	}
	c.mu.Lock()
	ns := c.ns
	found := false
	for _, g := range c.groups {
		for _, node := range g.nodes {
			if node.Name == req.Node {
				found = true
				if g.netns != nil {
					ns = g.netns.ns
				}
			}
		}
	}
	c.mu.Unlock()
	if !found {
		return fmt.Errorf("no node %q", req.Node)
	}
	return ns.addAddresses(req.Link, req.Addresses)
}
