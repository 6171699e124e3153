package main

// Counting one client's requests in the API server's audit log (Metadata level, one
// JSON object a line; the test bed's policy omits the RequestReceived stage, so each
// request has one ResponseComplete line, or a ResponseStarted line first for watches).

import (
	"bufio"
	"encoding/json"
	"io"
	"os"
)

type auditLine struct {
	Stage string `json:"stage"`
	Verb  string `json:"verb"`
	User  struct {
		Username string `json:"username"`
	} `json:"user"`
	ObjectRef *struct {
		Resource    string `json:"resource"`
		Subresource string `json:"subresource"`
		Name        string `json:"name"`
	} `json:"objectRef"`
	ResponseStatus *struct {
		Code int `json:"code"`
	} `json:"responseStatus"`
}

// requestCounts is one client's traffic.
type requestCounts struct {
	byVerb    map[string]int
	byCode    map[int]int
	requests  int
	conflicts int
	// nodeWrites are writes of nodes and nodes/status; events are Event writes.
	nodeWrites, events int
	// statusWrites names the nodes whose nodes/status the client wrote.
	statusWrites map[string]bool
	// nodeWritesByName names the nodes the client wrote (not their status).
	nodePatches map[string]bool
}

// auditSize is where the audit log ends now, to count from there later.
func auditSize(path string) int64 {
	info, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return info.Size()
}

// countRequests reads the audit log from offset and counts the requests of user.
func countRequests(path string, offset int64, user string) (requestCounts, error) {
	c := requestCounts{byVerb: map[string]int{}, byCode: map[int]int{},
		statusWrites: map[string]bool{}, nodePatches: map[string]bool{}}
	f, err := os.Open(path)
	if err != nil {
		return c, err
	}
	defer f.Close()
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		return c, err
	}
	scanner := bufio.NewScanner(f)
	scanner.Buffer(make([]byte, 1<<20), 16<<20)
	for scanner.Scan() {
		var l auditLine
		if json.Unmarshal(scanner.Bytes(), &l) != nil || l.Stage != "ResponseComplete" || l.User.Username != user {
			continue
		}
		c.requests++
		c.byVerb[l.Verb]++
		code := 0
		if l.ResponseStatus != nil {
			code = l.ResponseStatus.Code
		}
		c.byCode[code]++
		if l.ObjectRef == nil {
			continue
		}
		write := l.Verb == "create" || l.Verb == "update" || l.Verb == "patch"
		switch {
		case write && l.ObjectRef.Resource == "nodes":
			c.nodeWrites++
			// A failed JSON-patch test (422) is bare-ccm's conflict.
			if code == 409 || code == 422 {
				c.conflicts++
			}
			if code < 300 && l.ObjectRef.Subresource == "status" {
				c.statusWrites[l.ObjectRef.Name] = true
			} else if code < 300 {
				c.nodePatches[l.ObjectRef.Name] = true
			}
		case write && l.ObjectRef.Resource == "events":
			c.events++
		}
	}
	return c, scanner.Err()
}
