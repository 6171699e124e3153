package main

// The writes k3s makes to a Node after its kubelet registered it, which no Go module
// gives us (github.com/k3s-io/k3s replaces every k8s.io module with forks). Each step
// mirrors the k3s source named in its comment.

import (
	"context"
	"crypto/sha256"
	"encoding/base32"
	"encoding/json"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/watch"
	clientset "k8s.io/client-go/kubernetes"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"
	toolswatch "k8s.io/client-go/tools/watch"
	"k8s.io/klog/v2"
)

// Annotation and label keys k3s writes (k3s pkg/nodeconfig/nodeconfig.go; pkg/util,
// ControlPlaneRoleLabelKey and MasterRoleLabelKey).
const (
	nodeArgsAnnotation       = "k3s.io/node-args"
	nodeEnvAnnotation        = "k3s.io/node-env"
	nodeConfigHashAnnotation = "k3s.io/node-config-hash"
	controlPlaneRoleLabel    = "node-role.kubernetes.io/control-plane"
	masterRoleLabel          = "node-role.kubernetes.io/master"
)

// k3sNodeEnv is the K3S_* environment a k3s service typically has, secrets replaced by
// "********" as k3s does (nodeconfig.go, getNodeEnv and isSecret).
const k3sNodeEnv = `{"K3S_DATA_DIR":"/var/lib/rancher/k3s/data/current","K3S_TOKEN":"********"}`

func runK3sWrites(ctx context.Context, group *HollowGroup, node HollowNode, kubelet *clientset.Clientset) {
	if !sleepCtx(ctx, node.K3s.AgentDelay.Duration) {
		return
	}
	// The agent writes with the kubelet's own credentials (k3s pkg/agent/run.go,
	// startNetwork: util.GetClientSet(nodeConfig.AgentConfig.KubeConfigKubelet)).
	if err := configureNode(ctx, kubelet, node); err != nil {
		klog.ErrorS(err, "k3s agent: configureNode failed", "node", node.Name)
		return
	}
	if node.K3s.Role != "server" {
		return
	}
	if !sleepCtx(ctx, node.K3s.ServerDelay.Duration) {
		return
	}
	config, err := clientcmd.BuildConfigFromFlags("", group.AdminKubeconfig)
	if err != nil {
		klog.ErrorS(err, "k3s server: no client", "node", node.Name)
		return
	}
	config.UserAgent = "k3s-supervisor"
	server, err := clientset.NewForConfig(config)
	if err != nil {
		klog.ErrorS(err, "k3s server: no client", "node", node.Name)
		return
	}
	setNodeLabelsAndAnnotations(ctx, server, node.Name)
}

// configureNode mirrors k3s pkg/agent/run.go configureNode: watch the node until it
// exists, then Update it (the whole object, so with its resourceVersion) with the
// node-config annotations of pkg/nodeconfig/nodeconfig.go SetNodeConfigAnnotations; an
// Update that fails waits for the next change of the node and tries again. With the
// embedded CCM disabled it writes no k3s.io/*-ip address annotations.
func configureNode(ctx context.Context, client *clientset.Clientset, spec HollowNode) error {
	args, err := json.Marshal(spec.K3s.NodeArgs)
	if err != nil {
		return err
	}
	nodeArgs := string(args)
	sum := sha256.Sum256([]byte(nodeArgs + k3sNodeEnv))
	hash := base32.StdEncoding.EncodeToString(sum[:])

	nodes := client.CoreV1().Nodes()
	lw := toolscache.NewListWatchFromClient(client.CoreV1().RESTClient(), "nodes", metav1.NamespaceNone,
		fields.OneTermEqualSelector(metav1.ObjectNameField, spec.Name))
	condition := func(ev watch.Event) (bool, error) {
		node, ok := ev.Object.(*v1.Node)
		if !ok {
			return false, nil
		}
		if node.Annotations[nodeConfigHashAnnotation] == hash {
			return true, nil
		}
		if node.Annotations == nil {
			node.Annotations = map[string]string{}
		}
		node.Annotations[nodeEnvAnnotation] = k3sNodeEnv
		node.Annotations[nodeArgsAnnotation] = nodeArgs
		node.Annotations[nodeConfigHashAnnotation] = hash
		if _, err := nodes.Update(ctx, node, metav1.UpdateOptions{}); err != nil {
			klog.InfoS("k3s agent: failed to set annotations and labels", "node", spec.Name, "err", err)
			return false, nil
		}
		return true, nil
	}
	_, err = toolswatch.UntilWithSync(ctx, lw, &v1.Node{}, nil, condition)
	return err
}

// setNodeLabelsAndAnnotations mirrors k3s pkg/server/server.go
// setNodeLabelsAndAnnotations: Get the server's own node and Update it with the role
// labels (value "true"), once a second until it succeeds.
func setNodeLabelsAndAnnotations(ctx context.Context, client *clientset.Clientset, name string) {
	for {
		node, err := client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
		if err == nil {
			if node.Labels == nil {
				node.Labels = map[string]string{}
			}
			if v, ok := node.Labels[controlPlaneRoleLabel]; !ok || v != "true" {
				node.Labels[controlPlaneRoleLabel] = "true"
				node.Labels[masterRoleLabel] = "true"
			}
			if _, err = client.CoreV1().Nodes().Update(ctx, node, metav1.UpdateOptions{}); err == nil {
				return
			}
		}
		if !sleepCtx(ctx, time.Second) {
			return
		}
	}
}

// sleepCtx waits d, or returns false when ctx ends first.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
