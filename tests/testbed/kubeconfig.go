package main

// Kubeconfig files for every identity of the test bed. They all name the API server as
// https://127.0.0.1:<port>: in the host's network namespace that is the API server itself,
// and inside the nodes' namespace a forwarder listens on the same address (netns.go), so
// one file serves both sides.

import (
	"os"
	"path/filepath"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// writeKubeconfig writes a kubeconfig for a client-certificate identity, atomically (a
// reader polling for the file never sees half of it).
func writeKubeconfig(path, server string, caPEM []byte, pair KeyPair) error {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["testbed"] = &clientcmdapi.Cluster{Server: server, CertificateAuthorityData: caPEM}
	cert, err := os.ReadFile(pair.Cert)
	if err != nil {
		return err
	}
	key, err := os.ReadFile(pair.Key)
	if err != nil {
		return err
	}
	cfg.AuthInfos["user"] = &clientcmdapi.AuthInfo{ClientCertificateData: cert, ClientKeyData: key}
	cfg.Contexts["testbed"] = &clientcmdapi.Context{Cluster: "testbed", AuthInfo: "user"}
	cfg.CurrentContext = "testbed"
	return writeConfigAtomically(path, cfg)
}

func writeConfigAtomically(path string, cfg *clientcmdapi.Config) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := clientcmd.WriteToFile(*cfg, tmp); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
