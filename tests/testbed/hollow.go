package main

// `testbed hollow --group FILE`: real kubelets, each a kubemark hollow node (k8s.io/kubernetes pkg/kubemark and cmd/kubemark/app/hollow_node.go, run):
// the real kubelet code with a fake CRI (k8s.io/cri-client pkg/fake), a fake cAdvisor
// and a stub container manager. Differences from kubemark's `run`, each for a reason:
//   - started with kubeletapp.RunKubelet directly (kubemark's HollowKubelet.Run blocks
//     forever), so that a group could hold several; the supervisor gives each process
//     one, for the reason in join.go (kubeletsPerProcess);
//   - the fake image service, never the host's containerd (--use-host-image-service=false);
//   - an empty providerID (GetHollowKubeletConfig sets kubemark://<name>, and a providerID
//     is immutable once set: the CCM under test must set it);
//   - no kubelet server ports and no static pod directory;
//   - MaxOpenFiles at the process's hard limit (RunKubelet sets RLIMIT_NOFILE for the
//     whole process, soft and hard, from it);
//   - the fake runtime's call log is trimmed (it grows by every CRI call otherwise).
// The node's network turns ready only once flannel could start (cni.go). k3s nodes also
// report a k3s containerd version and the k3s user agent, and run the
// k3s agent's and server's writes (k3s.go).

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	noopoteltrace "go.opentelemetry.io/otel/trace/noop"
	clientset "k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/tools/record"
	internalapi "k8s.io/cri-api/pkg/apis"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	remote "k8s.io/cri-client/pkg"
	fakeremote "k8s.io/cri-client/pkg/fake"
	"k8s.io/klog/v2"
	kubeletapp "k8s.io/kubernetes/cmd/kubelet/app"
	"k8s.io/kubernetes/cmd/kubelet/app/options"
	cadvisortest "k8s.io/kubernetes/pkg/kubelet/cadvisor/testing"
	"k8s.io/kubernetes/pkg/kubelet/cm"
	"k8s.io/kubernetes/pkg/kubemark"

	_ "k8s.io/component-base/metrics/prometheus/restclient"
)

// k3sRuntimeVersion is what a k3s node reports as containerRuntimeVersion: k3s bundles
// its own containerd build, versioned with a -k3s suffix.
const k3sRuntimeVersion = "2.1.5-k3s1"

func runHollow(args []string) int {
	fs := flag.NewFlagSet("hollow", flag.ContinueOnError)
	groupFile := fs.String("group", "", "JSON description of the kubelets to run")
	if err := fs.Parse(args); err != nil || *groupFile == "" {
		fmt.Fprintln(os.Stderr, "testbed hollow: --group FILE is required")
		return 2
	}
	group, err := readGroup(*groupFile)
	if err != nil {
		fmt.Fprintf(os.Stderr, "testbed hollow: %v\n", err)
		return 2
	}
	var limit syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &limit); err != nil {
		fmt.Fprintf(os.Stderr, "testbed hollow: %v\n", err)
		return 1
	}
	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer cancel()

	var wg sync.WaitGroup
	failed := make(chan error, len(group.Nodes))
	for _, node := range group.Nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := startHollowKubelet(ctx, group, node, int64(limit.Max)); err != nil {
				failed <- fmt.Errorf("node %s: %w", node.Name, err)
			}
		}()
	}
	wg.Wait()
	select {
	case err := <-failed:
		fmt.Fprintf(os.Stderr, "testbed hollow: %v\n", err)
		return 1
	default:
	}
	fmt.Fprintf(os.Stderr, "testbed hollow: %d kubelets started\n", len(group.Nodes))
	<-ctx.Done()
	return 0
}

// startHollowKubelet starts one kubelet (and its k3s writers) and returns once it runs.
func startHollowKubelet(ctx context.Context, group *HollowGroup, node HollowNode, maxOpenFiles int64) error {
	restConfig, err := clientcmd.BuildConfigFromFlags("", node.Kubeconfig)
	if err != nil {
		return err
	}
	// hollow_node.go: protobuf, QPS 10, burst 20 (kubemark's flag defaults).
	restConfig.ContentType = "application/vnd.kubernetes.protobuf"
	restConfig.QPS, restConfig.Burst = 10, 20
	restConfig.UserAgent = "hollow-kubelet"
	if node.K3s != nil {
		// k3s runs the kubelet inside its own binary, so the API server records the
		// kubelet's writes under the manager "k3s".
		restConfig.UserAgent = "k3s"
	}
	client, err := clientset.NewForConfig(restConfig)
	if err != nil {
		return err
	}

	flags, config := kubemark.GetHollowKubeletConfig(&kubemark.HollowKubeletOptions{
		NodeName:    node.Name,
		MaxPods:     110,
		NodeLabels:  node.Labels,
		PodsPerCore: 0,
	})
	// GetHollowKubeletConfig made directories under /tmp; use the group's directory.
	_ = os.RemoveAll(flags.RootDirectory)
	root := node.Dir
	if err := os.MkdirAll(filepath.Join(root, "pod-logs"), 0o700); err != nil {
		return err
	}
	flags.RootDirectory = root
	flags.NodeIP = node.NodeIP
	if node.External {
		flags.CloudProvider = "external"
	}
	config.PodLogsDir = filepath.Join(root, "pod-logs")
	config.StaticPodPath = ""
	config.ProviderID = ""
	config.EnableServer = false
	config.ReadOnlyPort = 0
	config.MaxOpenFiles = maxOpenFiles

	heartbeatConfig := *restConfig
	heartbeatConfig.Timeout = config.NodeStatusUpdateFrequency.Duration
	if lease := time.Duration(config.NodeLeaseDurationSeconds) * time.Second; heartbeatConfig.Timeout > lease {
		heartbeatConfig.Timeout = lease
	}
	heartbeatConfig.QPS = -1
	heartbeatClient, err := clientset.NewForConfig(&heartbeatConfig)
	if err != nil {
		return err
	}

	endpoint := "unix://" + filepath.Join(root, "cri.sock")
	fakeRuntime := fakeremote.NewFakeRemoteRuntime()
	if err := fakeRuntime.Start(endpoint); err != nil {
		return fmt.Errorf("fake runtime: %w", err)
	}
	go trimCallLogs(ctx, fakeRuntime)
	if node.External {
		// Before the kubelet starts, so that its first status says NotReady.
		setNetworkReady(fakeRuntime, false)
		go gateNetwork(ctx, fakeRuntime, client, node.Name)
	}
	go func() { <-ctx.Done(); fakeRuntime.Stop() }()
	var runtimeService internalapi.RuntimeService
	runtimeService, err = remote.NewRemoteRuntimeServiceBuilder().
		WithEndpoint(endpoint).
		WithConnectionTimeout(15 * time.Second).
		Build(ctx)
	if err != nil {
		return fmt.Errorf("runtime service: %w", err)
	}
	if node.K3s != nil {
		runtimeService = k3sRuntime{runtimeService}
	}

	deps := kubemark.NewHollowKubelet(flags, config, client, heartbeatClient,
		&cadvisortest.Fake{NodeName: node.Name},
		fakeRuntime.ImageService,
		runtimeService,
		cm.NewStubContainerManager(),
	).KubeletDeps
	deps.TracerProvider = noopoteltrace.NewTracerProvider()
	deps.Recorder = &record.FakeRecorder{}

	if err := kubeletapp.RunKubelet(ctx, &options.KubeletServer{
		KubeletFlags:         *flags,
		KubeletConfiguration: *config,
	}, deps); err != nil {
		return fmt.Errorf("kubelet: %w", err)
	}
	klog.InfoS("hollow kubelet started", "node", node.Name, "nodeIP", node.NodeIP, "external", node.External)

	if node.K3s != nil {
		go runK3sWrites(ctx, group, node, client)
	}
	return nil
}

// k3sRuntime reports the runtime as k3s's bundled containerd.
type k3sRuntime struct{ internalapi.RuntimeService }

func (r k3sRuntime) Version(ctx context.Context, apiVersion string) (*runtimeapi.VersionResponse, error) {
	v, err := r.RuntimeService.Version(ctx, apiVersion)
	if err != nil {
		return nil, err
	}
	return &runtimeapi.VersionResponse{
		Version:           v.Version,
		RuntimeName:       "containerd",
		RuntimeVersion:    k3sRuntimeVersion,
		RuntimeApiVersion: v.RuntimeApiVersion,
	}, nil
}

// trimCallLogs empties the fake runtime's record of calls now and then: the fake keeps
// every CRI call in a slice (k8s.io/cri-api pkg/apis/testing, FakeRuntimeService.Called),
// and the kubelet's PLEG alone calls it every second.
func trimCallLogs(ctx context.Context, rt *fakeremote.RemoteRuntime) {
	tick := time.NewTicker(30 * time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			rt.RuntimeService.Lock()
			rt.RuntimeService.Called = nil
			rt.RuntimeService.Unlock()
			rt.ImageService.Lock()
			rt.ImageService.Called = nil
			rt.ImageService.Unlock()
		}
	}
}
