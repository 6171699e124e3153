package main

// `testbed apiserver`: the real kube-apiserver (k8s.io/kubernetes cmd/kube-apiserver/app,
// the production command, as cmd/kube-apiserver/apiserver.go runs it) with the settings
// of issue 10: TLS from the test bed's CA, Node,RBAC authorization, NodeRestriction,
// ServiceAccount tokens (TokenRequest), a Metadata-level audit log of every request, and
// no endpoint reconciler (as the upstream integration framework,
// test/integration/framework, runs it).

import (
	"fmt"
	"os"
	"path/filepath"

	_ "k8s.io/component-base/logs/json/register"
	_ "k8s.io/component-base/metrics/prometheus/clientgo"
	_ "k8s.io/component-base/metrics/prometheus/version"
	apiserver "k8s.io/kubernetes/cmd/kube-apiserver/app"
)

// auditPolicy records every request at Metadata level: user, verb, resource, response
// code. Tests read it to count bare-ccm's requests and refusals.
const auditPolicy = `apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived"]
rules:
  - level: Metadata
`

// Cluster-wide ranges, k3s's defaults (k3s docs: --cluster-cidr 10.42.0.0/16,
// --service-cidr 10.43.0.0/16).
const (
	clusterCIDR = "10.42.0.0/16"
	serviceCIDR = "10.43.0.0/16"
	serviceIP   = "10.43.0.1"
)

// apiServerFlags are the kube-apiserver flags for the test bed's layout.
func apiServerFlags(l *layout, etcdServers string) ([]string, error) {
	policy := filepath.Join(l.dir, "audit-policy.yaml")
	if err := os.WriteFile(policy, []byte(auditPolicy), 0o600); err != nil {
		return nil, err
	}
	return []string{
		"--etcd-servers=" + etcdServers,
		fmt.Sprintf("--secure-port=%d", l.apiPort),
		"--bind-address=127.0.0.1",
		"--advertise-address=127.0.0.1",
		"--tls-cert-file=" + l.serving.Cert,
		"--tls-private-key-file=" + l.serving.Key,
		"--client-ca-file=" + l.ca.CertFile(),
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file=" + l.saKey.Cert,
		"--service-account-signing-key-file=" + l.saKey.Key,
		"--api-audiences=https://kubernetes.default.svc.cluster.local",
		"--service-cluster-ip-range=" + serviceCIDR,
		"--authorization-mode=Node,RBAC",
		"--enable-admission-plugins=NodeRestriction",
		"--endpoint-reconciler-type=none",
		"--allow-privileged=true",
		"--audit-policy-file=" + policy,
		"--audit-log-path=" + l.auditLog(),
		"--audit-log-format=json",
		"--audit-log-maxbackup=0",
		"--profiling=false",
		"--v=0",
	}, nil
}

func runAPIServer(args []string) int {
	return runUpstream(apiserver.NewAPIServerCommand(), args)
}
