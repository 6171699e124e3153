package main

// `testbed scheduler`: the real kube-scheduler (k8s.io/kubernetes cmd/kube-scheduler/app)
// with its default profile, so that the shipped manifests can be shown to schedule onto
// a tainted, NotReady control-plane node.

import (
	_ "k8s.io/component-base/logs/json/register"
	_ "k8s.io/component-base/metrics/prometheus/clientgo"
	_ "k8s.io/component-base/metrics/prometheus/version"
	scheduler "k8s.io/kubernetes/cmd/kube-scheduler/app"
)

func schedulerFlags(l *layout) []string {
	return []string{
		"--kubeconfig=" + l.kubeconfig("scheduler"),
		"--leader-elect=false",
		"--secure-port=0",
		"--v=0",
	}
}

func runScheduler(args []string) int {
	return runUpstream(scheduler.NewSchedulerCommand(), args)
}
