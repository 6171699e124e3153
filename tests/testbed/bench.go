package main

// `testbed bench`: bare-ccm side by side with the upstream cloud-node controller (at its
// defaults and tuned) and the floor, on the real control plane. Each contestant in turn
// gets a fresh burst of N k3s nodes joining at once (hollow kubelets, or the Rust fleet),
// with everything else equal: the same API server, datastore, controller-manager
// (nodeipam, nodelifecycle) and k3s writes. One watch-based observer times every node
// from registration to taint removal for all of them; the audit log counts each
// contestant's requests; /proc gives its CPU seconds and peak RSS.

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clientset "k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/yaml"
)

type benchOptions struct {
	nodes       int
	datastore   string
	kubelets    string
	json        bool
	bareCCM     string
	manifest    string
	fleetCmd    string
	contestants string
	timeout     time.Duration
	stateDir    string
}

// Contestant names, in the order they run (the floor replays bare-ccm's writes, so it
// runs after bare-ccm).
const (
	cBareCCM         = "bare-ccm"
	cUpstreamDefault = "upstream-default"
	cUpstreamTuned   = "upstream-tuned"
	cFloor           = "floor"
)

// result is one contestant's row.
type result struct {
	Name        string             `json:"-"`
	Initialized int                `json:"initialized"`
	MakespanMs  float64            `json:"makespanMs"`
	LatencyMs   map[string]float64 `json:"latencyMs"`
	// DescribedLatencyMs is from k3s's node-args to taint removal: the contestant's own
	// part for a k3s node, without the wait for k3s.
	DescribedLatencyMs map[string]float64 `json:"describedLatencyMs"`
	// RegistrationSpreadMs is from the first node's registration to the last's.
	RegistrationSpreadMs float64            `json:"registrationSpreadMs"`
	RequestsPerNode      map[string]float64 `json:"requestsPerNode"`
	WritesPerNode        float64            `json:"writesPerNode"`
	EventsPerNode        float64            `json:"eventsPerNode"`
	ConflictsPerNode     float64            `json:"conflictsPerNode"`
	Throttled429         int                `json:"throttled429"`
	CPUSeconds           float64            `json:"cpuSeconds"`
	PeakRSSBytes         int64              `json:"peakRssBytes"`
}

type benchReport struct {
	Nodes     int                `json:"nodes"`
	Server    string             `json:"server"`
	Datastore string             `json:"datastore"`
	Kubelets  string             `json:"kubelets"`
	Results   map[string]*result `json:"results"`
	Ratio     map[string]float64 `json:"ratio"`
}

func runBench(args []string) int {
	var o benchOptions
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.IntVar(&o.nodes, "nodes", 100, "nodes in each contestant's burst")
	fs.StringVar(&o.datastore, "datastore", "etcd", "etcd or sqlite (kine)")
	fs.StringVar(&o.kubelets, "kubelets", "fleet", "fleet (the Rust simulated kubelets, light enough for thousands) or hollow (kubemark kubelets)")
	fs.BoolVar(&o.json, "json", false, "print the report as JSON")
	fs.StringVar(&o.bareCCM, "bare-ccm", "", "the bare-ccm binary (required)")
	fs.StringVar(&o.manifest, "manifest", "", "the install manifest whose RBAC, ServiceAccount and config bare-ccm runs with (required)")
	fs.StringVar(&o.fleetCmd, "fleet", "", "with --kubelets fleet: the command that registers the fleet (the bare-ccm binary)")
	fs.StringVar(&o.contestants, "contestants", strings.Join([]string{cBareCCM, cUpstreamDefault, cUpstreamTuned, cFloor}, ","), "contestants to run")
	fs.DurationVar(&o.timeout, "timeout", 10*time.Minute, "how long one contestant may take")
	fs.StringVar(&o.stateDir, "state-dir", "", "test bed state directory (default: temporary)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if o.bareCCM == "" || o.manifest == "" {
		fmt.Fprintln(os.Stderr, "testbed bench: --bare-ccm and --manifest are required")
		return 2
	}
	if o.kubelets != "hollow" && o.kubelets != "fleet" {
		fmt.Fprintln(os.Stderr, "testbed bench: --kubelets is hollow or fleet")
		return 2
	}
	report, err := bench(o)
	if report != nil {
		if o.json {
			out, _ := json.MarshalIndent(report, "", "  ")
			fmt.Println(string(out))
		} else {
			printReport(os.Stdout, report)
		}
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "testbed bench: %v\n", err)
		return 1
	}
	for name, r := range report.Results {
		if r.Initialized < report.Nodes {
			fmt.Fprintf(os.Stderr, "testbed bench: %s left %d of %d nodes tainted\n", name, report.Nodes-r.Initialized, report.Nodes)
			return 1
		}
	}
	return 0
}

// benchBed is a test bed started for a benchmark.
type benchBed struct {
	stateDir   string
	kubeconfig string
	admin      *clientset.Clientset
	proc       *exec.Cmd
}

func startBenchBed(o benchOptions) (*benchBed, error) {
	dir := o.stateDir
	if dir == "" {
		var err error
		if dir, err = os.MkdirTemp("", "bare-ccm-bench-"); err != nil {
			return nil, err
		}
	}
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	b := &benchBed{stateDir: filepath.Join(dir, "state"), kubeconfig: filepath.Join(dir, "admin.kubeconfig")}
	log, err := os.Create(filepath.Join(dir, "up.log"))
	if err != nil {
		return nil, err
	}
	b.proc = exec.Command(self, "up", "--state-dir", b.stateDir, "--kubeconfig-out", b.kubeconfig,
		"--datastore", o.datastore, "--exit-with-pid", fmt.Sprint(os.Getpid()))
	b.proc.Stdout, b.proc.Stderr = log, log
	if err := b.proc.Start(); err != nil {
		return nil, err
	}
	progress("bench: starting the test bed (%s); its log: %s", o.datastore, log.Name())
	deadline := time.Now().Add(5 * time.Minute)
	for !fileExists(filepath.Join(b.stateDir, "ready.json")) {
		if time.Now().After(deadline) {
			b.stop()
			return nil, fmt.Errorf("test bed not ready after 5 minutes; see %s", log.Name())
		}
		time.Sleep(200 * time.Millisecond)
	}
	config, err := clientcmd.BuildConfigFromFlags("", b.kubeconfig)
	if err != nil {
		return nil, err
	}
	config.QPS, config.Burst = 100, 200
	if b.admin, err = clientset.NewForConfig(config); err != nil {
		return nil, err
	}
	return b, nil
}

func (b *benchBed) stop() {
	if b.proc.Process != nil {
		_ = b.proc.Process.Signal(syscall.SIGTERM)
		_ = b.proc.Wait()
	}
}

func bench(o benchOptions) (*benchReport, error) {
	b, err := startBenchBed(o)
	if err != nil {
		return nil, err
	}
	defer b.stop()
	version, err := b.admin.Discovery().ServerVersion()
	if err != nil {
		return nil, err
	}
	report := &benchReport{Nodes: o.nodes, Server: version.GitVersion, Datastore: o.datastore,
		Kubelets: o.kubelets, Results: map[string]*result{}, Ratio: map[string]float64{}}
	work := filepath.Join(filepath.Dir(b.stateDir), "bench")
	if err := os.MkdirAll(work, 0o700); err != nil {
		return nil, err
	}
	ccmConfig, err := installManifest(b, o.manifest, work)
	if err != nil {
		return report, err
	}
	tokenConfig, err := serviceAccountKubeconfig(b, "kube-system", "bare-ccm", filepath.Join(work, "bare-ccm.kubeconfig"))
	if err != nil {
		return report, err
	}
	var template string
	for _, name := range strings.Split(o.contestants, ",") {
		c := contestantRun{bed: b, opts: o, name: name, work: work, ccmConfig: ccmConfig,
			tokenConfig: tokenConfig, template: template}
		r, err := c.run()
		if r != nil {
			report.Results[name] = r
		}
		if err != nil {
			return report, fmt.Errorf("%s: %w", name, err)
		}
		if name == cBareCCM {
			template = c.template
		}
	}
	ratio := func(key, a, b string, field func(*result) float64) {
		ra, rb := report.Results[a], report.Results[b]
		if ra != nil && rb != nil && field(rb) > 0 {
			report.Ratio[key] = math.Round(field(ra)/field(rb)*100) / 100
		}
	}
	makespan := func(r *result) float64 { return r.MakespanMs }
	p99 := func(r *result) float64 { return r.LatencyMs["p99"] }
	ratio("makespanVsFloor", cBareCCM, cFloor, makespan)
	ratio("p99VsFloor", cBareCCM, cFloor, p99)
	ratio("makespanVsUpstreamDefault", cBareCCM, cUpstreamDefault, makespan)
	ratio("makespanVsUpstreamTuned", cBareCCM, cUpstreamTuned, makespan)
	ratio("cpuVsUpstreamTuned", cBareCCM, cUpstreamTuned, func(r *result) float64 { return r.CPUSeconds })
	ratio("peakRssVsUpstreamTuned", cBareCCM, cUpstreamTuned, func(r *result) float64 { return float64(r.PeakRSSBytes) })
	return report, nil
}

// installManifest applies the manifest's ServiceAccount, ConfigMap and RBAC (not its
// workload: bare-ccm runs on the host) and returns its config.yaml as a file.
func installManifest(b *benchBed, manifest, work string) (string, error) {
	data, err := os.ReadFile(manifest)
	if err != nil {
		return "", err
	}
	var items []json.RawMessage
	configPath := filepath.Join(work, "config.yaml")
	for _, doc := range strings.Split(string(data), "\n---") {
		var obj map[string]any
		if err := yaml.Unmarshal([]byte(doc), &obj); err != nil {
			return "", fmt.Errorf("%s: %w", manifest, err)
		}
		kind, _ := obj["kind"].(string)
		if kind == "" || kind == "Deployment" || kind == "DaemonSet" {
			continue
		}
		if kind == "ConfigMap" {
			if d, ok := obj["data"].(map[string]any); ok {
				if text, ok := d["config.yaml"].(string); ok {
					if err := os.WriteFile(configPath, []byte(text), 0o600); err != nil {
						return "", err
					}
				}
			}
		}
		j, err := json.Marshal(obj)
		if err != nil {
			return "", err
		}
		items = append(items, j)
	}
	list, err := json.Marshal(map[string]any{"apiVersion": "v1", "kind": "List", "items": items})
	if err != nil {
		return "", err
	}
	cmd := exec.Command("kubectl", "--kubeconfig", b.kubeconfig, "apply", "-f", "-")
	cmd.Stdin = strings.NewReader(string(list))
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("kubectl apply: %v: %s", err, out)
	}
	return configPath, nil
}

// serviceAccountKubeconfig writes a kubeconfig with a TokenRequest token of the account.
func serviceAccountKubeconfig(b *benchBed, namespace, account, path string) (string, error) {
	seconds := int64(4 * 3600)
	token, err := b.admin.CoreV1().ServiceAccounts(namespace).CreateToken(context.Background(), account,
		&authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: &seconds}},
		metav1.CreateOptions{})
	if err != nil {
		return "", err
	}
	admin, err := clientcmd.LoadFromFile(b.kubeconfig)
	if err != nil {
		return "", err
	}
	cfg := clientcmdapi.NewConfig()
	for name, cluster := range admin.Clusters {
		cfg.Clusters[name] = cluster
		cfg.AuthInfos[account] = &clientcmdapi.AuthInfo{Token: token.Status.Token}
		cfg.Contexts["bench"] = &clientcmdapi.Context{Cluster: name, AuthInfo: account}
	}
	cfg.CurrentContext = "bench"
	return path, writeConfigAtomically(path, cfg)
}

// benchAddressIndex numbers the addresses of every burst (far from the test bed's own).
const benchAddressIndex = 20000

// contestantRun is one contestant's turn.
type contestantRun struct {
	bed         *benchBed
	opts        benchOptions
	name        string
	work        string
	ccmConfig   string
	tokenConfig string
	// template is bare-ccm's writes (written by bare-ccm's turn, read by the floor's).
	template string
	// fleet is the Rust fleet's process, with --kubelets fleet.
	fleet *exec.Cmd
}

func (c *contestantRun) run() (*result, error) {
	prefix := "bench-" + c.name
	progress("bench: %s: %d nodes", c.name, c.opts.nodes)
	proc, user, err := c.start(prefix)
	if err != nil {
		return nil, err
	}
	stopped := false
	defer func() {
		if !stopped {
			stopProcess(proc)
		}
	}()
	obs, err := observe(c.bed.admin, prefix+"-")
	if err != nil {
		return nil, err
	}
	defer obs.close()
	auditPath := filepath.Join(c.bed.stateDir, "audit.log")
	offset := auditSize(auditPath)
	cpuBefore, err := cpuSeconds(proc.Process.Pid)
	if err != nil {
		return nil, err
	}
	groups, err := c.join(prefix)
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(c.opts.timeout)
	for {
		registered, initialized := obs.progress()
		if registered >= c.opts.nodes && initialized >= c.opts.nodes {
			break
		}
		if time.Now().After(deadline) {
			progress("bench: %s: %d of %d nodes initialised after %s", c.name, initialized, c.opts.nodes, c.opts.timeout)
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	// Let the last Events land before counting.
	time.Sleep(2 * time.Second)
	cpuAfter, _ := cpuSeconds(proc.Process.Pid)
	peak, _ := peakRSSBytes(proc.Process.Pid)
	stopProcess(proc)
	stopped = true
	counts, err := countRequests(auditPath, offset, user)
	if err != nil {
		return nil, err
	}
	times := obs.snapshot()
	r := summarise(c.name, c.opts.nodes, times, counts)
	r.CPUSeconds = math.Round((cpuAfter-cpuBefore)*1000) / 1000
	r.PeakRSSBytes = peak
	if c.name == cBareCCM {
		if c.template, err = writeTemplate(c.bed, filepath.Join(c.work, "bare-ccm-writes.json"), times, counts); err != nil {
			return r, err
		}
	}
	if err := c.leave(groups, times); err != nil {
		return r, err
	}
	return r, nil
}

// start launches the contestant and waits until it is ready to meet the burst; it
// returns the process and the user its requests are recorded under.
func (c *contestantRun) start(prefix string) (*exec.Cmd, string, error) {
	logPath := filepath.Join(c.work, c.name+".log")
	log, err := os.Create(logPath)
	if err != nil {
		return nil, "", err
	}
	self, err := os.Executable()
	if err != nil {
		return nil, "", err
	}
	var cmd *exec.Cmd
	user := "system:serviceaccount:kube-system:bare-ccm"
	var ready func() error
	switch c.name {
	case cBareCCM:
		port, err := freePort()
		if err != nil {
			return nil, "", err
		}
		cmd = exec.Command(c.opts.bareCCM, "run", "--kubeconfig", c.tokenConfig, "--config", c.ccmConfig,
			"--bind-address", "127.0.0.1", "--port", fmt.Sprint(port), "--secure-port", "0")
		ready = func() error { return waitLeading(c.bed.admin, port) }
	case cUpstreamDefault, cUpstreamTuned:
		l := &layout{dir: c.bed.stateDir}
		args := []string{"peer-ccm", "--kubeconfig", l.kubeconfig("peer-ccm")}
		if c.name == cUpstreamTuned {
			args = append(args, "--concurrent-node-syncs", "32", "--kube-api-qps", "500", "--kube-api-burst", "1000")
		}
		cmd = exec.Command(self, args...)
		user = peerCCMUser
		ready = func() error { return waitLogLine(logPath, "Waiting for informer caches to sync", 30*time.Second) }
	case cFloor:
		if c.template == "" {
			return nil, "", fmt.Errorf("the floor replays bare-ccm's writes: run bare-ccm first")
		}
		cmd = exec.Command(c.opts.bareCCM, "sim-floor", "--kubeconfig", c.tokenConfig, "--template", c.template,
			"--rename", "bench-"+cBareCCM+"-="+prefix+"-")
		ready = func() error { return waitLogLine(logPath, "floor: watching", 30*time.Second) }
	default:
		return nil, "", fmt.Errorf("unknown contestant %q (%s, %s, %s, %s)", c.name, cBareCCM, cUpstreamDefault, cUpstreamTuned, cFloor)
	}
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, "", err
	}
	if err := ready(); err != nil {
		stopProcess(cmd)
		return nil, "", fmt.Errorf("not ready: %w (log: %s)", err, logPath)
	}
	// The upstream controller starts its workers once its informer synced.
	time.Sleep(time.Second)
	return cmd, user, nil
}

// join starts the burst and returns the hollow groups to stop afterwards.
func (c *contestantRun) join(prefix string) ([]string, error) {
	if c.opts.kubelets == "fleet" {
		log, err := os.Create(filepath.Join(c.work, c.name+"-fleet.log"))
		if err != nil {
			return nil, err
		}
		// A kubelet posts its status every 5 minutes when nothing changed (KubeletConfiguration
		// nodeStatusReportFrequency; its 10 s heartbeat is the node Lease, not simulated).
		c.fleet = exec.Command(c.opts.fleetCmd, "sim-fleet", "--kubeconfig", c.bed.kubeconfig,
			"--nodes", fmt.Sprint(c.opts.nodes), "--prefix", prefix+"-", "--heartbeat-period", "5m")
		c.fleet.Stdout, c.fleet.Stderr = log, log
		c.fleet.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		return nil, c.fleet.Start()
	}
	// Every contestant's burst gets the same addresses: the bursts never overlap.
	out, err := controlRequest(c.bed.stateDir, "POST", "/join",
		JoinRequest{Count: c.opts.nodes, Prefix: prefix, AddressIndex: benchAddressIndex})
	if err != nil {
		return nil, err
	}
	var joined []JoinedNode
	if err := json.Unmarshal(out, &joined); err != nil {
		return nil, err
	}
	var groups []string
	for _, n := range joined {
		groups = append(groups, n.Group)
	}
	return groups, nil
}

// leave removes the burst's nodes (and stops its kubelets).
func (c *contestantRun) leave(groups []string, times map[string]nodeTimes) error {
	if len(groups) > 0 {
		_, err := controlRequest(c.bed.stateDir, "POST", "/leave", LeaveRequest{Groups: groups})
		return err
	}
	if c.fleet != nil {
		stopProcess(c.fleet)
	}
	for name := range times {
		_ = c.bed.admin.CoreV1().Nodes().Delete(context.Background(), name, metav1.DeleteOptions{})
	}
	return nil
}

func stopProcess(cmd *exec.Cmd) {
	if cmd.Process == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		_ = cmd.Process.Kill()
		<-done
	}
}

// waitLeading waits until bare-ccm on port is ready (its probe port) and holds its Lease.
func waitLeading(admin *clientset.Clientset, port int) error {
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if _, err := httpGet(fmt.Sprintf("http://127.0.0.1:%d/readyz", port)); err == nil {
			lease, err := admin.CoordinationV1().Leases("kube-system").Get(context.Background(), "bare-ccm", metav1.GetOptions{})
			if err == nil && lease.Spec.HolderIdentity != nil && *lease.Spec.HolderIdentity != "" {
				return nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("bare-ccm not ready and leading after 60s")
}

func httpGet(url string) (string, error) {
	resp, err := http.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("%s: %d", url, resp.StatusCode)
	}
	return string(body), err
}

func waitLogLine(path, line string, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		if data, err := os.ReadFile(path); err == nil && strings.Contains(string(data), line) {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("no %q after %s", line, limit)
}

// summarise turns the observer's times and the request counts into a row.
func summarise(name string, nodes int, times map[string]nodeTimes, counts requestCounts) *result {
	r := &result{Name: name, LatencyMs: map[string]float64{}, DescribedLatencyMs: map[string]float64{},
		RequestsPerNode: map[string]float64{}}
	var latencies, described []float64
	var first, lastRegistered, last time.Time
	for _, t := range times {
		if first.IsZero() || t.registered.Before(first) {
			first = t.registered
		}
		if t.registered.After(lastRegistered) {
			lastRegistered = t.registered
		}
		if t.initialized.IsZero() {
			continue
		}
		r.Initialized++
		latencies = append(latencies, ms(t.initialized.Sub(t.registered)))
		if !t.described.IsZero() {
			described = append(described, ms(max(t.initialized.Sub(t.described), 0)))
		}
		if t.initialized.After(last) {
			last = t.initialized
		}
	}
	if len(latencies) > 0 {
		r.MakespanMs = round1(ms(last.Sub(first)))
		r.RegistrationSpreadMs = round1(ms(lastRegistered.Sub(first)))
	}
	percentiles(latencies, r.LatencyMs)
	percentiles(described, r.DescribedLatencyMs)
	per := func(n int) float64 { return math.Round(float64(n)/float64(nodes)*100) / 100 }
	for verb, n := range counts.byVerb {
		r.RequestsPerNode[verb] = per(n)
	}
	r.WritesPerNode = per(counts.nodeWrites)
	r.EventsPerNode = per(counts.events)
	r.ConflictsPerNode = per(counts.conflicts)
	r.Throttled429 = counts.byCode[429]
	return r
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// percentiles fills p50, p90, p99 and max of samples (nearest rank) into out.
func percentiles(samples []float64, out map[string]float64) {
	if len(samples) == 0 {
		return
	}
	sort.Float64s(samples)
	for _, p := range []struct {
		name string
		q    float64
	}{{"p50", 0.50}, {"p90", 0.90}, {"p99", 0.99}, {"max", 1}} {
		i := int(math.Ceil(p.q*float64(len(samples)))) - 1
		out[p.name] = round1(samples[max(i, 0)])
	}
}

func round1(v float64) float64 { return math.Round(v*10) / 10 }

// writeTemplate records, for the floor, what bare-ccm wrote to each node: the node as
// registered and as initialised, which of the two writes it made, and its Event.
func writeTemplate(b *benchBed, path string, times map[string]nodeTimes, counts requestCounts) (string, error) {
	events, err := b.admin.EventsV1().Events("default").List(context.Background(), metav1.ListOptions{})
	if err != nil {
		return "", err
	}
	type entry struct {
		Name        string `json:"name"`
		Registered  any    `json:"registered"`
		After       any    `json:"after"`
		WroteStatus bool   `json:"wroteStatus"`
		WroteNode   bool   `json:"wroteNode"`
		Event       any    `json:"event,omitempty"`
	}
	var out []entry
	for name, t := range times {
		if t.initial == nil {
			continue
		}
		e := entry{Name: name, Registered: t.first, After: t.initial,
			WroteStatus: counts.statusWrites[name], WroteNode: counts.nodePatches[name]}
		for i := range events.Items {
			ev := &events.Items[i]
			if ev.Regarding.Name == name && ev.Reason == "Synced" {
				e.Event = ev
				break
			}
		}
		out = append(out, e)
	}
	return path, writeJSON(path, map[string]any{"nodes": out})
}

func printReport(w io.Writer, r *benchReport) {
	fmt.Fprintf(w, "%d nodes, kube-apiserver %s, %s, %s kubelets\n", r.Nodes, r.Server, r.Datastore, r.Kubelets)
	fmt.Fprintf(w, "%-17s %6s %9s %8s %8s %8s %8s %7s %7s %9s %5s %8s %9s\n",
		"contestant", "init", "makespan", "p50", "p90", "p99", "max", "writes", "events", "conflicts", "429", "cpu s", "peak RSS")
	for _, name := range []string{cBareCCM, cUpstreamDefault, cUpstreamTuned, cFloor} {
		x := r.Results[name]
		if x == nil {
			continue
		}
		fmt.Fprintf(w, "%-17s %6d %7.0fms %6.0fms %6.0fms %6.0fms %6.0fms %7.2f %7.2f %9.2f %5d %8.2f %7.1fMB\n",
			name, x.Initialized, x.MakespanMs, x.LatencyMs["p50"], x.LatencyMs["p90"], x.LatencyMs["p99"], x.LatencyMs["max"],
			x.WritesPerNode, x.EventsPerNode, x.ConflictsPerNode, x.Throttled429, x.CPUSeconds, float64(x.PeakRSSBytes)/1e6)
	}
	for _, name := range []string{cBareCCM, cUpstreamDefault, cUpstreamTuned, cFloor} {
		if x := r.Results[name]; x != nil {
			fmt.Fprintf(w, "%s: registrations spread over %.0fms; node-args -> taint removal p50 %.0fms p99 %.0fms; requests per node %v\n",
				name, x.RegistrationSpreadMs, x.DescribedLatencyMs["p50"], x.DescribedLatencyMs["p99"], x.RequestsPerNode)
		}
	}
	keys := make([]string, 0, len(r.Ratio))
	for k := range r.Ratio {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(w, "ratio %s: %.2f\n", k, r.Ratio[k])
	}
}
