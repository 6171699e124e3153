package main

// `testbed peer-ccm`: the upstream cloud-node controller (k8s.io/cloud-provider
// controllers/node, the engine of k3s's embedded CCM and of the talos, proxmox and hcloud
// CCMs) driven by a small InstancesV2 provider that answers at once, as k3s's
// pkg/cloudprovider does: providerID k3s://<name>, instance type k3s, the InternalIP from
// alpha.kubernetes.io/provided-node-ip or the k3s.io/internal-ip annotation. Its
// defaults are upstream's (k8s.io/cloud-provider options and app/controllermanager.go):
// one node sync at a time, client QPS 20 and burst 30, protobuf, a status update every
// 5 minutes, informers resynced every 12-24 h.

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/client-go/informers"
	clientset "k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	cloudprovider "k8s.io/cloud-provider"
	nodecontroller "k8s.io/cloud-provider/controllers/node"
	controllersmetrics "k8s.io/component-base/metrics/prometheus/controllers"
	"k8s.io/klog/v2"
)

// Keys the provider reads (k8s.io/cloud-provider api/well_known_annotations.go; k3s
// pkg/cloudprovider/instances.go).
const (
	providedNodeIPAnnotation = "alpha.kubernetes.io/provided-node-ip"
	k3sInternalIPAnnotation  = "k3s.io/internal-ip"
	k3sExternalIPAnnotation  = "k3s.io/external-ip"
)

func runPeerCCM(args []string) int {
	fs := flag.NewFlagSet("peer-ccm", flag.ContinueOnError)
	kubeconfig := fs.String("kubeconfig", "", "kubeconfig of the controller")
	workers := fs.Int("concurrent-node-syncs", 1, "node sync workers (upstream default 1)")
	qps := fs.Float64("kube-api-qps", 20, "client QPS (upstream default 20)")
	burst := fs.Int("kube-api-burst", 30, "client burst (upstream default 30)")
	statusFrequency := fs.Duration("node-status-update-frequency", 5*time.Minute, "address refresh period (upstream default 5m)")
	if err := fs.Parse(args); err != nil || *kubeconfig == "" {
		fmt.Fprintln(os.Stderr, "testbed peer-ccm: --kubeconfig is required")
		return 2
	}
	config, err := clientcmd.BuildConfigFromFlags("", *kubeconfig)
	if err != nil {
		fmt.Fprintf(os.Stderr, "testbed peer-ccm: %v\n", err)
		return 1
	}
	config.QPS, config.Burst = float32(*qps), *burst
	config.ContentType = "application/vnd.kubernetes.protobuf"
	config.UserAgent = "cloud-controller-manager"
	client, err := clientset.NewForConfig(config)
	if err != nil {
		fmt.Fprintf(os.Stderr, "testbed peer-ccm: %v\n", err)
		return 1
	}

	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer cancel()
	// app/controllermanager.go ResyncPeriod: MinResyncPeriod (12h) times [1, 2).
	resync := time.Duration(float64(12*time.Hour) * (1 + rand.Float64()))
	factory := informers.NewSharedInformerFactory(client, resync)
	nodes := factory.Core().V1().Nodes()
	controller, err := nodecontroller.NewCloudNodeController(nodes, client, &k3sLikeCloud{},
		*statusFrequency, int32(*workers), int32(*workers))
	if err != nil {
		fmt.Fprintf(os.Stderr, "testbed peer-ccm: %v\n", err)
		return 1
	}
	factory.Start(ctx.Done())
	klog.InfoS("upstream cloud-node controller starting", "workers", *workers, "qps", *qps, "burst", *burst)
	controller.RunWithContext(ctx, controllersmetrics.NewControllerManagerMetrics("cloud-controller-manager"))
	return 0
}

// k3sLikeCloud is a cloudprovider.Interface with only InstancesV2.
type k3sLikeCloud struct{}

func (c *k3sLikeCloud) Initialize(cloudprovider.ControllerClientBuilder, <-chan struct{}) {}
func (c *k3sLikeCloud) LoadBalancer() (cloudprovider.LoadBalancer, bool)                  { return nil, false }
func (c *k3sLikeCloud) Instances() (cloudprovider.Instances, bool)                        { return nil, false }
func (c *k3sLikeCloud) InstancesV2() (cloudprovider.InstancesV2, bool)                    { return c, true }
func (c *k3sLikeCloud) Zones() (cloudprovider.Zones, bool)                                { return nil, false }
func (c *k3sLikeCloud) Clusters() (cloudprovider.Clusters, bool)                          { return nil, false }
func (c *k3sLikeCloud) Routes() (cloudprovider.Routes, bool)                              { return nil, false }
func (c *k3sLikeCloud) ProviderName() string                                              { return "k3s" }
func (c *k3sLikeCloud) HasClusterID() bool                                                { return false }

func (c *k3sLikeCloud) InstanceExists(context.Context, *v1.Node) (bool, error)   { return true, nil }
func (c *k3sLikeCloud) InstanceShutdown(context.Context, *v1.Node) (bool, error) { return false, nil }

// InstanceMetadata answers from the Node alone, like k3s's instances.go; a node with no
// address to report is an error, so the controller retries it (k3s: "address
// annotations not yet set").
func (c *k3sLikeCloud) InstanceMetadata(_ context.Context, node *v1.Node) (*cloudprovider.InstanceMetadata, error) {
	var addresses []v1.NodeAddress
	internal := node.Annotations[providedNodeIPAnnotation]
	if internal == "" {
		internal = node.Annotations[k3sInternalIPAnnotation]
	}
	if internal == "" {
		return nil, errors.New("address annotations not yet set")
	}
	for _, ip := range strings.Split(internal, ",") {
		addresses = append(addresses, v1.NodeAddress{Type: v1.NodeInternalIP, Address: ip})
	}
	if external := node.Annotations[k3sExternalIPAnnotation]; external != "" {
		for _, ip := range strings.Split(external, ",") {
			addresses = append(addresses, v1.NodeAddress{Type: v1.NodeExternalIP, Address: ip})
		}
	}
	addresses = append(addresses, v1.NodeAddress{Type: v1.NodeHostName, Address: node.Name})
	return &cloudprovider.InstanceMetadata{
		ProviderID:    "k3s://" + node.Name,
		InstanceType:  "k3s",
		NodeAddresses: addresses,
	}, nil
}
