// Command porcupine-check decides whether a recorded history of key-value operations is
// linearizable, using the porcupine checker with a per-key model of etcd's KV semantics.
//
// Usage: porcupine-check [-timeout 60s] [-visualize out.html] history.json
//
// The history is JSON: {"operations": [op, ...]}, each op
//
//	{"client": 0, "call": <ns>, "return": <ns>, "input": {...}, "output": {...}}
//
// with one of these inputs and outputs (values are strings; a key is absent until put):
//
//	{"op": "get", "key": k}                          {"found": bool, "value": v}
//	{"op": "put", "key": k, "value": v}              {}
//	{"op": "delete", "key": k}                       {"deleted": 0|1}
//	{"op": "cas", "key": k, "expected": v|null, "value": v}   {"succeeded": bool}
//	                                                 (expected null: succeed only if k is absent)
//
// An operation whose outcome the client does not know (a timeout, a lost connection) has output
// {"unknown": true}: it may have taken effect at any time after its call, or never.
//
// It prints one JSON line {"result": "ok"|"illegal"|"unknown", "operations": n, "keys": n} and
// exits 0 when the history is linearizable, 1 when it is not, 2 when the check timed out or the
// input is bad.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"os"
	"sort"
	"time"

	"github.com/anishathalye/porcupine"
)

type input struct {
	Op       string  `json:"op"`
	Key      string  `json:"key"`
	Value    string  `json:"value"`
	Expected *string `json:"expected"`
}

type output struct {
	Found     bool   `json:"found"`
	Value     string `json:"value"`
	Deleted   int    `json:"deleted"`
	Succeeded bool   `json:"succeeded"`
	Unknown   bool   `json:"unknown"`
}

type recorded struct {
	Client int    `json:"client"`
	Call   int64  `json:"call"`
	Return int64  `json:"return"`
	Input  input  `json:"input"`
	Output output `json:"output"`
}

type history struct {
	Operations []recorded `json:"operations"`
}

// state of one key: absent, or present with a value.
type state struct {
	present bool
	value   string
}

func apply(s state, in input) (state, output) {
	switch in.Op {
	case "get":
		return s, output{Found: s.present, Value: s.value}
	case "put":
		return state{true, in.Value}, output{}
	case "delete":
		if s.present {
			return state{}, output{Deleted: 1}
		}
		return s, output{Deleted: 0}
	case "cas":
		matches := (in.Expected == nil && !s.present) || (in.Expected != nil && s.present && s.value == *in.Expected)
		if matches {
			return state{true, in.Value}, output{Succeeded: true}
		}
		return s, output{Succeeded: false}
	}
	panic("unknown op " + in.Op)
}

var model = porcupine.Model{
	Partition: func(ops []porcupine.Operation) [][]porcupine.Operation {
		byKey := map[string][]porcupine.Operation{}
		var keys []string
		for _, op := range ops {
			key := op.Input.(input).Key
			if _, seen := byKey[key]; !seen {
				keys = append(keys, key)
			}
			byKey[key] = append(byKey[key], op)
		}
		sort.Strings(keys)
		partitions := make([][]porcupine.Operation, 0, len(keys))
		for _, key := range keys {
			partitions = append(partitions, byKey[key])
		}
		return partitions
	},
	Init: func() interface{} { return state{} },
	Step: func(s, in, out interface{}) (bool, interface{}) {
		next, expected := apply(s.(state), in.(input))
		got := out.(output)
		if got.Unknown {
			return true, next
		}
		return expected == got, next
	},
	Equal: func(a, b interface{}) bool { return a.(state) == b.(state) },
	DescribeOperation: func(in, out interface{}) string {
		i, o := in.(input), out.(output)
		if o.Unknown {
			return fmt.Sprintf("%s(%q, %q) -> ?", i.Op, i.Key, i.Value)
		}
		switch i.Op {
		case "get":
			if !o.Found {
				return fmt.Sprintf("get(%q) -> absent", i.Key)
			}
			return fmt.Sprintf("get(%q) -> %q", i.Key, o.Value)
		case "put":
			return fmt.Sprintf("put(%q, %q)", i.Key, i.Value)
		case "delete":
			return fmt.Sprintf("delete(%q) -> %d", i.Key, o.Deleted)
		default:
			expected := "absent"
			if i.Expected != nil {
				expected = fmt.Sprintf("%q", *i.Expected)
			}
			return fmt.Sprintf("cas(%q, %s, %q) -> %t", i.Key, expected, i.Value, o.Succeeded)
		}
	},
	DescribeState: func(s interface{}) string {
		st := s.(state)
		if !st.present {
			return "absent"
		}
		return fmt.Sprintf("%q", st.value)
	},
}

func load(path string) ([]porcupine.Operation, int, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, 0, err
	}
	var h history
	if err := json.Unmarshal(raw, &h); err != nil {
		return nil, 0, err
	}
	ops := make([]porcupine.Operation, 0, len(h.Operations))
	keys := map[string]bool{}
	for n, r := range h.Operations {
		switch r.Input.Op {
		case "get", "put", "delete", "cas":
		default:
			return nil, 0, fmt.Errorf("operation %d: unknown op %q", n, r.Input.Op)
		}
		ret := r.Return
		if r.Output.Unknown {
			ret = math.MaxInt64 // it may take effect at any point after its call
		}
		if ret < r.Call {
			return nil, 0, fmt.Errorf("operation %d returns before it is called", n)
		}
		keys[r.Input.Key] = true
		ops = append(ops, porcupine.Operation{ClientId: r.Client, Input: r.Input, Call: r.Call, Output: r.Output, Return: ret})
	}
	return ops, len(keys), nil
}

func main() {
	timeout := flag.Duration("timeout", time.Minute, "give up (result unknown) after this long")
	visualize := flag.String("visualize", "", "write porcupine's HTML visualisation of the check here")
	flag.Parse()
	if flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: porcupine-check [-timeout 60s] [-visualize out.html] history.json")
		os.Exit(2)
	}
	ops, keys, err := load(flag.Arg(0))
	if err != nil {
		fmt.Fprintln(os.Stderr, "porcupine-check:", err)
		os.Exit(2)
	}
	result, info := porcupine.CheckOperationsVerbose(model, ops, *timeout)
	if *visualize != "" {
		if err := porcupine.VisualizePath(model, info, *visualize); err != nil {
			fmt.Fprintln(os.Stderr, "porcupine-check: visualisation:", err)
		}
	}
	verdict := map[porcupine.CheckResult]string{porcupine.Ok: "ok", porcupine.Illegal: "illegal", porcupine.Unknown: "unknown"}[result]
	summary, _ := json.Marshal(map[string]interface{}{"result": verdict, "operations": len(ops), "keys": keys})
	fmt.Println(string(summary))
	switch result {
	case porcupine.Ok:
		os.Exit(0)
	case porcupine.Illegal:
		os.Exit(1)
	default:
		os.Exit(2)
	}
}
