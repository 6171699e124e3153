package main

// What the supervisor tells a hollow-node process to run: one HollowGroup per process,
// written as JSON into the state directory.

import (
	"encoding/json"
	"fmt"
	"os"
	"time"
)

// HollowGroup is the set of kubelets one `testbed hollow` process runs.
type HollowGroup struct {
	Name string `json:"name"`
	// AdminKubeconfig is the k3s server's identity, for its role-label writes.
	AdminKubeconfig string       `json:"adminKubeconfig"`
	Nodes           []HollowNode `json:"nodes"`
}

// HollowNode is one kubelet and the k3s processes around it.
type HollowNode struct {
	Name string `json:"name"`
	// Dir is the kubelet's root directory (short: it holds unix sockets).
	Dir string `json:"dir"`
	// Kubeconfig holds the node's own client certificate (system:node:<name>).
	Kubeconfig string `json:"kubeconfig"`
	// NodeIP is the kubelet's --node-ip ("" for none).
	NodeIP string `json:"nodeIP,omitempty"`
	// External is --cloud-provider=external: register with the uninitialized taint.
	External bool `json:"external"`
	// Labels are the kubelet's --node-labels.
	Labels map[string]string `json:"labels,omitempty"`
	// K3s, when set, makes the node a k3s node: a k3s runtime version and user agent,
	// and the agent's (and for servers, the server's) writes after registration.
	K3s *K3sNode `json:"k3s,omitempty"`
	// InterfaceIPs are the addresses the node's interfaces carry (informational: the
	// supervisor assigns them before the process starts).
	InterfaceIPs []string `json:"interfaceIPs,omitempty"`
}

// K3sNode describes the k3s agent (and server) of a hollow node.
type K3sNode struct {
	// Role is "agent" or "server".
	Role string `json:"role"`
	// NodeArgs is the command line k3s records in k3s.io/node-args.
	NodeArgs []string `json:"nodeArgs"`
	// AgentDelay is how long after the kubelet starts the agent's configureNode runs.
	AgentDelay Duration `json:"agentDelay"`
	// ServerDelay is how long after that the server's role labels are written.
	ServerDelay Duration `json:"serverDelay"`
}

// Duration is a time.Duration written as a Go duration string in JSON.
type Duration struct{ time.Duration }

func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(d.String()) }

func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("bad duration %q: %w", s, err)
	}
	d.Duration = v
	return nil
}

func readGroup(path string) (*HollowGroup, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var g HollowGroup
	if err := json.Unmarshal(data, &g); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &g, nil
}

func writeJSON(path string, v any) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
