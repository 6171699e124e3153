package main

// The benchmark's one clock: a watch on Nodes that notes, for every node of a burst, when
// it was first seen (the kubelet's create) and when it was first seen without the
// uninitialized taint. Every contestant is timed by this same observer, so the API
// server's watch delivery is the same for all (creationTimestamp has 1 s resolution and
// the contestants' own metrics measure different things).

import (
	"context"
	"strings"
	"sync"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/fields"
	clientset "k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
)

// nodeTimes is what the observer knows about one node.
type nodeTimes struct {
	registered  time.Time
	initialized time.Time
	// described is when k3s's node-args first showed (zero for nodes k3s never described).
	described time.Time
	// first and initial are the node as first seen and as first seen initialised (the
	// floor replays the difference).
	first, initial *v1.Node
}

type observer struct {
	prefix string
	mu     sync.Mutex
	nodes  map[string]*nodeTimes
	stop   chan struct{}
}

// observe starts watching the nodes whose names start with prefix.
func observe(client clientset.Interface, prefix string) (*observer, error) {
	o := &observer{prefix: prefix, nodes: map[string]*nodeTimes{}, stop: make(chan struct{})}
	lw := cache.NewListWatchFromClient(client.CoreV1().RESTClient(), "nodes", "", fields.Everything())
	_, informer := cache.NewInformerWithOptions(cache.InformerOptions{
		ListerWatcher: lw,
		ObjectType:    &v1.Node{},
		Handler: cache.ResourceEventHandlerFuncs{
			AddFunc:    func(obj any) { o.saw(obj) },
			UpdateFunc: func(_, obj any) { o.saw(obj) },
		},
	})
	go informer.Run(o.stop)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if !cache.WaitForCacheSync(ctx.Done(), informer.HasSynced) {
		close(o.stop)
		return nil, ctx.Err()
	}
	return o, nil
}

func (o *observer) saw(obj any) {
	now := time.Now()
	node, ok := obj.(*v1.Node)
	if !ok || !strings.HasPrefix(node.Name, o.prefix) {
		return
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	t := o.nodes[node.Name]
	if t == nil {
		t = &nodeTimes{registered: now, first: node.DeepCopy()}
		o.nodes[node.Name] = t
	}
	if t.described.IsZero() && node.Annotations[nodeArgsAnnotation] != "" {
		t.described = now
	}
	if t.initialized.IsZero() && !hasTaint(node, uninitializedTaint) {
		t.initialized = now
		t.initial = node.DeepCopy()
	}
}

// progress returns how many nodes registered and how many were initialised.
func (o *observer) progress() (registered, initialized int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, t := range o.nodes {
		registered++
		if !t.initialized.IsZero() {
			initialized++
		}
	}
	return registered, initialized
}

// snapshot copies the times of every node seen.
func (o *observer) snapshot() map[string]nodeTimes {
	o.mu.Lock()
	defer o.mu.Unlock()
	out := make(map[string]nodeTimes, len(o.nodes))
	for name, t := range o.nodes {
		out[name] = *t
	}
	return out
}

func (o *observer) close() { close(o.stop) }

func hasTaint(node *v1.Node, key string) bool {
	for _, t := range node.Spec.Taints {
		if t.Key == key {
			return true
		}
	}
	return false
}
