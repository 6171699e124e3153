package main

// `testbed kine`: k3s's default datastore, kine with SQLite, serving the etcd API to
// kube-apiserver. kine needs a newer etcd than k8s.io/apiserver v0.37.2 requires, so it
// is built in its own module (kine/) into the program testbed-kine beside this one,
// and this subcommand runs it.

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// kineSQLiteParams are kine's default SQLite connection parameters (kine
// pkg/drivers/sqlite/sqlite.go, DefaultParams), as k3s uses them.
const kineSQLiteParams = "_journal_mode=WAL&_busy_timeout=30000&_synchronous=NORMAL&_txlock=immediate&_stmt_cache_size=20&cache=shared"

func runKine(args []string) int {
	self, err := os.Executable()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	bin := filepath.Join(filepath.Dir(self), "testbed-kine")
	if _, err := os.Stat(bin); err != nil {
		fmt.Fprintf(os.Stderr, "testbed kine: %s is missing: build it with scripts/testbed.sh build\n", bin)
		return 1
	}
	// Replace this process, so that signals reach kine itself.
	if err := syscall.Exec(bin, append([]string{bin}, args...), os.Environ()); err != nil {
		fmt.Fprintf(os.Stderr, "testbed kine: %v\n", err)
		return 1
	}
	return 0
}
