package main

// The node's network plugin, as far as the kubelet can tell. On k3s, flannel configures a
// node only once the node has a podCIDR and the cloud-controller-manager has removed the
// uninitialized taint; until then containerd reports NetworkReady=false ("cni plugin not
// initialized") and the kubelet keeps the node NotReady (kubernetes
// pkg/kubelet/nodestatus/setters.go, ReadyCondition). The fake runtime reports whatever
// its FakeStatus says, so this gate sets it from the node as the API server shows it.

import (
	"context"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/watch"
	clientset "k8s.io/client-go/kubernetes"
	toolscache "k8s.io/client-go/tools/cache"
	toolswatch "k8s.io/client-go/tools/watch"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	fakeremote "k8s.io/cri-client/pkg/fake"
	"k8s.io/klog/v2"
)

// uninitializedTaint is the taint a kubelet with --cloud-provider=external registers with
// (k8s.io/cloud-provider api/well_known_taints.go, TaintExternalCloudProvider).
const uninitializedTaint = "node.cloudprovider.kubernetes.io/uninitialized"

// gateNetwork reports the network not ready until the node could run flannel, then ready.
func gateNetwork(ctx context.Context, rt *fakeremote.RemoteRuntime, client *clientset.Clientset, name string) {
	setNetworkReady(rt, false)
	lw := toolscache.NewListWatchFromClient(client.CoreV1().RESTClient(), "nodes", metav1.NamespaceNone,
		fields.OneTermEqualSelector(metav1.ObjectNameField, name))
	_, err := toolswatch.UntilWithSync(ctx, lw, &v1.Node{}, nil, func(ev watch.Event) (bool, error) {
		node, ok := ev.Object.(*v1.Node)
		return ok && networkCanStart(node), nil
	})
	if err != nil {
		if ctx.Err() == nil {
			klog.ErrorS(err, "network gate stopped; reporting the network ready", "node", name)
		}
	}
	setNetworkReady(rt, true)
}

// networkCanStart: flannel has a podCIDR to configure and its pod can be scheduled.
func networkCanStart(node *v1.Node) bool {
	if node.Spec.PodCIDR == "" {
		return false
	}
	for _, t := range node.Spec.Taints {
		if t.Key == uninitializedTaint {
			return false
		}
	}
	return true
}

func setNetworkReady(rt *fakeremote.RemoteRuntime, ready bool) {
	network := &runtimeapi.RuntimeCondition{Type: runtimeapi.NetworkReady, Status: ready}
	if !ready {
		network.Reason = "NetworkPluginNotReady"
		network.Message = "Network plugin returns error: cni plugin not initialized"
	}
	rt.RuntimeService.Lock()
	defer rt.RuntimeService.Unlock()
	rt.RuntimeService.FakeStatus = &runtimeapi.RuntimeStatus{Conditions: []*runtimeapi.RuntimeCondition{
		{Type: runtimeapi.RuntimeReady, Status: true},
		network,
	}}
}
