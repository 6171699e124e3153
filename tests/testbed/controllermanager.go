package main

// `testbed controller-manager`: the real kube-controller-manager
// (k8s.io/kubernetes cmd/kube-controller-manager/app) with the controllers that write to
// a Node in its first second on k3s, and those the tests' workloads need:
//   - nodeipam with --allocate-node-cidrs: flannel's podCIDR, as on k3s;
//   - nodelifecycle: the not-ready taints;
//   - ttl: the node.alpha.kubernetes.io/ttl annotation;
//   - serviceaccount, root-ca-cert-publisher: what a pod's token volume needs;
//   - daemonset, deployment, replicaset, garbagecollector, namespace: the shipped
//     manifests and the Helm chart's workloads, and their removal.

import (
	"strings"

	_ "k8s.io/component-base/logs/json/register"
	_ "k8s.io/component-base/metrics/prometheus/clientgo"
	_ "k8s.io/component-base/metrics/prometheus/version"
	controllermanager "k8s.io/kubernetes/cmd/kube-controller-manager/app"
)

var kcmControllers = []string{
	"nodeipam", "nodelifecycle", "ttl",
	"serviceaccount", "root-ca-cert-publisher",
	"daemonset", "deployment", "replicaset", "garbagecollector", "namespace",
}

func controllerManagerFlags(l *layout) []string {
	return []string{
		"--kubeconfig=" + l.kubeconfig("controller-manager"),
		"--controllers=" + strings.Join(kcmControllers, ","),
		"--allocate-node-cidrs=true",
		"--cluster-cidr=" + clusterCIDR,
		"--node-cidr-mask-size=24",
		"--service-cluster-ip-range=" + serviceCIDR,
		"--root-ca-file=" + l.ca.CertFile(),
		"--use-service-account-credentials=true",
		"--leader-elect=false",
		"--secure-port=0",
		"--kube-api-qps=100",
		"--kube-api-burst=200",
		"--v=0",
	}
}

func runControllerManager(args []string) int {
	return runUpstream(controllermanager.NewControllerManagerCommand(), args)
}
