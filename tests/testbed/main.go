// Command testbed runs a real Kubernetes control plane for bare-ccm's tests and
// benchmarks, built only from the upstream Go modules: etcd (or kine with SQLite),
// kube-apiserver, kube-controller-manager, kube-scheduler, kubemark hollow kubelets, the
// k3s agent and server writes, and the upstream cloud-node controller as a peer.
//
// `testbed up` is the supervisor; every component runs as a child process of its own
// (`testbed etcd`, `testbed apiserver`, ...), because each upstream command installs
// process-wide state (signal handlers, flags, metrics registries) that works once per
// process. The other subcommands talk to a running supervisor (`join`, `leave`, `address`,
// `signal`).
package main

import (
	"fmt"
	"os"
	"sort"

	"github.com/spf13/cobra"
	"k8s.io/component-base/cli"
)

// subcommands maps each subcommand to its entry point; each returns the exit code.
var subcommands = map[string]func(args []string) int{
	"up":                 runUp,
	"join":               runJoin,
	"leave":              runLeave,
	"address":            runAddress,
	"signal":             runSignal,
	"status":             runStatus,
	"etcd":               runEtcd,
	"kine":               runKine,
	"apiserver":          runAPIServer,
	"controller-manager": runControllerManager,
	"scheduler":          runScheduler,
	"hollow":             runHollow,
	"peer-ccm":           runPeerCCM,
	"bench":              runBench,
}

func main() {
	if len(os.Args) < 2 {
		usage()
		os.Exit(2)
	}
	run, ok := subcommands[os.Args[1]]
	if !ok {
		fmt.Fprintf(os.Stderr, "testbed: unknown subcommand %q\n", os.Args[1])
		usage()
		os.Exit(2)
	}
	os.Exit(run(os.Args[2:]))
}

// runUpstream runs an upstream component's command on args, as its own main does.
func runUpstream(cmd *cobra.Command, args []string) int {
	cmd.SetArgs(args)
	return cli.Run(cmd)
}

func usage() {
	names := make([]string, 0, len(subcommands))
	for name := range subcommands {
		names = append(names, name)
	}
	sort.Strings(names)
	fmt.Fprintf(os.Stderr, "usage: testbed SUBCOMMAND [flags]; subcommands: %v\n", names)
	fmt.Fprintln(os.Stderr, "start with: testbed up --hollow-nodes N --kubeconfig-out FILE (see docs/testing.md)")
}
