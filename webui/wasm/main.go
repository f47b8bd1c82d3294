//go:build js && wasm

// Command wasm is mycel's protocol core compiled to WebAssembly for the
// browser node: it sets globalThis.mycelCore to the calls of package core
// (./core), bound with syscall/js, and then waits forever. The TypeScript
// side is webui/src/wasmcore.ts, which loads it and types the calls.
//
// Conventions: bytes are Uint8Array both ways (copied); 64-bit counters that
// may pass 2^53 (HLCs) are BigInt; entry indices and lengths are numbers.
// Every call returns {ok: value} or {error: message}; the TypeScript wrapper
// turns the latter into a thrown Error.
package main

import (
	"errors"
	"strconv"
	"syscall/js"

	"github.com/mycelsync/mycel/webui/wasm/core"
)

var (
	object     = js.Global().Get("Object")
	array      = js.Global().Get("Array")
	uint8Array = js.Global().Get("Uint8Array")
	bigInt     = js.Global().Get("BigInt")
	jsString   = js.Global().Get("String")
)

func main() {
	api := object.New()
	set := func(name string, f func(args []js.Value) (any, error)) {
		api.Set(name, fn(f))
	}
	set("verifyHead", func(a []js.Value) (any, error) {
		h, err := core.VerifyHead(bytesOf(arg(a, 0)))
		return headJS(h), err
	})
	set("verifyBatch", func(a []js.Value) (any, error) {
		b, err := core.VerifyBatch(bytesOf(arg(a, 0)))
		if err != nil {
			return nil, err
		}
		runs := array.New()
		for i, es := range b.Entries {
			runs.Call("push", obj("start", float64(b.Start[i]), "entries", bytesListJS(es)))
		}
		return obj("head", headJS(b.Head), "runs", runs), nil
	})
	set("sealEntry", func(a []js.Value) (any, error) {
		// sealEntry(space, author, index, secret, op)
		op, err := opOf(arg(a, 4))
		if err != nil {
			return nil, err
		}
		d, err := core.SealEntry(bytesOf(arg(a, 0)), bytesOf(arg(a, 1)), uint64(arg(a, 2).Float()), secretOf(arg(a, 3)), op)
		return bytesJS(d), err
	})
	set("openEntry", func(a []js.Value) (any, error) {
		// openEntry(space, author, index, data, secrets)
		op, err := core.OpenEntry(bytesOf(arg(a, 0)), bytesOf(arg(a, 1)), uint64(arg(a, 2).Float()), bytesOf(arg(a, 3)), secretsOf(arg(a, 4)))
		if err != nil {
			return nil, err
		}
		return opJS(op), nil
	})
	set("computeView", func(a []js.Value) (any, error) {
		// computeView(space, origin, secrets, entries)
		var entries []core.Entry
		es := arg(a, 3)
		for i := 0; i < es.Length(); i++ {
			e := es.Index(i)
			entries = append(entries, core.Entry{Author: bytesOf(e.Get("author")), Index: uint64(e.Get("index").Float()), Data: bytesOf(e.Get("data"))})
		}
		v, err := core.ComputeView(bytesOf(arg(a, 0)), bytesOf(arg(a, 1)), secretsOf(arg(a, 2)), entries)
		if err != nil {
			return nil, err
		}
		return viewJS(v), nil
	})
	set("passwordRequestKey", func(a []js.Value) (any, error) {
		id, key, err := core.PasswordRequestKey(arg(a, 0).String(), bytesOf(arg(a, 1)))
		return obj("id", bytesJS(id), "key", bytesJS(key)), err
	})
	set("safetyCode", func(a []js.Value) (any, error) {
		return core.SafetyCode(bytesOf(arg(a, 0)))
	})
	set("checkSafetyCode", func(a []js.Value) (any, error) {
		return true, core.CheckSafetyCode(bytesOf(arg(a, 0)), arg(a, 1).String())
	})
	set("sealEnvelope", func(a []js.Value) (any, error) {
		// sealEnvelope({key, signerSeed, topic, keyKind, keyID, plaintext, time})
		o := arg(a, 0)
		b, err := core.SealEnvelope(bytesOf(o.Get("key")), bytesOf(o.Get("signerSeed")), bytesOf(o.Get("topic")),
			uint32(o.Get("keyKind").Int()), bytesOf(o.Get("keyID")), bytesOf(o.Get("plaintext")), int64(o.Get("time").Float()))
		return bytesJS(b), err
	})
	set("openEnvelope", func(a []js.Value) (any, error) {
		e, err := core.OpenEnvelope(bytesOf(arg(a, 0)), bytesOf(arg(a, 1)))
		if err != nil {
			return nil, err
		}
		return obj("topic", bytesJS(e.Topic), "sender", bytesJS(e.Sender), "time", float64(e.Time), "keyKind", int(e.KeyKind),
			"keyID", bytesJS(e.KeyID), "plaintext", bytesJS(e.Plaintext)), nil
	})
	set("decodeSigninBody", func(a []js.Value) (any, error) {
		b, err := core.DecodeSigninBody(bytesOf(arg(a, 0)))
		if err != nil {
			return nil, err
		}
		return obj("kind", b.Kind, "request", bytesJS(b.Request), "name", b.Name, "safetyCode", b.SafetyCode,
			"answer", bytesJS(b.Answer), "reason", b.Reason), nil
	})
	set("syncProtocol", func(a []js.Value) (any, error) {
		return core.SyncProtocol(bytesOf(arg(a, 0)))
	})
	set("publicKey", func(a []js.Value) (any, error) {
		k, err := core.PublicKey(bytesOf(arg(a, 0)))
		return bytesJS(k), err
	})
	set("asker", func(a []js.Value) (any, error) {
		// asker({invite, space, password, name}, nowMs): the page's own
		// sign-in request (core.Asker)
		o := arg(a, 0)
		str := func(k string) string {
			if v := o.Get(k); v.Type() == js.TypeString {
				return v.String()
			}
			return ""
		}
		k, err := core.NewAsker(core.AskWith{Invite: str("invite"), Space: str("space"), Password: str("password"), Name: str("name")}, int64(arg(a, 1).Float()))
		if err != nil {
			return nil, err
		}
		return askerJS(k), nil
	})
	set("newNode", func(a []js.Value) (any, error) {
		var feeds [][]byte
		fs := arg(a, 0)
		for i := 0; i < fs.Length(); i++ {
			feeds = append(feeds, bytesOf(fs.Index(i)))
		}
		n, err := core.NewNode(feeds)
		if err != nil {
			return nil, err
		}
		return nodeJS(n), nil
	})
	set("locatorRequest", func(a []js.Value) (any, error) {
		// locatorRequest(code, nowMs): the relay directory's request for
		// the code's locator (core/locate.go)
		b, err := core.LocatorRequest(arg(a, 0).String(), int64(arg(a, 1).Float()))
		return bytesJS(b), err
	})
	set("openLocatorReply", func(a []js.Value) (any, error) {
		// openLocatorReply(code, reply, nowMs) → {space, expires, peer, addrs}
		l, err := core.OpenLocatorReply(arg(a, 0).String(), bytesOf(arg(a, 1)), int64(arg(a, 2).Float()))
		if err != nil {
			return nil, err
		}
		return obj("space", l.Space, "expires", float64(l.Expires), "peer", bytesJS(l.Peer), "addrs", bytesListJS(l.Addrs)), nil
	})
	set("aliasRequest", func(a []js.Value) (any, error) {
		b, err := core.AliasRequest(arg(a, 0).String())
		return bytesJS(b), err
	})
	set("aliasReply", func(a []js.Value) (any, error) {
		return core.AliasReply(bytesOf(arg(a, 0)))
	})
	js.Global().Set("mycelCore", api)
	select {}
}

// nodeJS is the JavaScript object of a node: append, length, get, session,
// and free, which releases its functions (a node's sessions have their own
// free). A freed node's functions throw when called.
func nodeJS(n *core.Node) js.Value {
	var fs funcs
	nodeIDs++
	id := nodeIDs
	nodes[id] = n
	return obj(
		"id", float64(id),
		"append", fs.add(func(a []js.Value) (any, error) {
			l, err := n.Append(bytesOf(arg(a, 0)), bytesListOf(arg(a, 1)))
			return float64(l), err
		}),
		"length", fs.add(func(a []js.Value) (any, error) {
			l, err := n.Length(bytesOf(arg(a, 0)))
			return float64(l), err
		}),
		"held", fs.add(func(a []js.Value) (any, error) {
			h, err := n.Held(bytesOf(arg(a, 0)))
			return float64(h), err
		}),
		"get", fs.add(func(a []js.Value) (any, error) {
			b, err := n.Get(bytesOf(arg(a, 0)), uint64(arg(a, 1).Float()))
			return bytesJS(b), err
		}),
		"session", fs.add(func(a []js.Value) (any, error) {
			// session({localID, remoteID, nonce, space, secrets})
			o := arg(a, 0)
			s, err := n.NewSession(core.SessionConfig{LocalID: bytesOf(o.Get("localID")), RemoteID: bytesOf(o.Get("remoteID")),
				Nonce: bytesOf(o.Get("nonce")), Space: bytesOf(o.Get("space")), Secrets: secretsOf(o.Get("secrets"))})
			if err != nil {
				return nil, err
			}
			var ss funcs
			return obj(
				"start", ss.add(func([]js.Value) (any, error) {
					fs, err := s.Start()
					return bytesListJS(fs), err
				}),
				"step", ss.add(func(a []js.Value) (any, error) {
					fs, err := s.Step(bytesOf(arg(a, 0)))
					return bytesListJS(fs), err
				}),
				"maxFrame", ss.add(func([]js.Value) (any, error) {
					return s.MaxFrame(), nil
				}),
				"flush", ss.add(func([]js.Value) (any, error) {
					fs, err := s.Flush()
					return bytesListJS(fs), err
				}),
				"free", ss.freeThen(s.Close),
			), nil
		}),
		"members", fs.add(func(a []js.Value) (any, error) {
			// members(space, secrets, seen?)
			var seen [][]byte
			if v := arg(a, 2); !v.IsUndefined() && !v.IsNull() {
				seen = bytesListOf(v)
			}
			m, err := n.Members(bytesOf(arg(a, 0)), secretsOf(arg(a, 1)), seen...)
			if err != nil {
				return nil, err
			}
			var ms funcs
			return obj(
				"topic", ms.add(func([]js.Value) (any, error) { return m.Topic(), nil }),
				"open", ms.add(func(a []js.Value) (any, error) {
					// open(envelope, nowMs)
					msg, err := m.Open(bytesOf(arg(a, 0)), int64(arg(a, 1).Float()))
					if err != nil {
						return nil, err
					}
					return obj("sender", bytesJS(msg.Sender), "time", float64(msg.Time), "kind", msg.Kind,
						"name", msg.Name, "topic", msg.Topic, "data", bytesJS(msg.Data), "kept", msg.Kept), nil
				}),
				"presence", ms.add(func(a []js.Value) (any, error) {
					// presence(nowMs)
					b, err := m.Presence(int64(arg(a, 0).Float()))
					return bytesJS(b), err
				}),
				"takeSeen", ms.add(func([]js.Value) (any, error) { return bytesListJS(m.TakeSeen()), nil }),
				"mailboxFetch", ms.add(func(a []js.Value) (any, error) {
					// mailboxFetch(hello, relayPeerID, selfPeerID): the fetch request
					b, err := m.MailboxFetch(bytesOf(arg(a, 0)), bytesOf(arg(a, 1)), bytesOf(arg(a, 2)))
					return bytesJS(b), err
				}),
				"stored", ms.add(func(a []js.Value) (any, error) {
					// stored(reply, nowMs): {messages, more, refused}
					msgs, more, refused, err := m.Stored(bytesOf(arg(a, 0)), int64(arg(a, 1).Float()))
					if err != nil {
						return nil, err
					}
					list := make([]any, len(msgs))
					for i, msg := range msgs {
						list[i] = obj("sender", bytesJS(msg.Sender), "time", float64(msg.Time), "kind", msg.Kind,
							"name", msg.Name, "topic", msg.Topic, "data", bytesJS(msg.Data), "kept", msg.Kept, "stored", msg.Stored)
					}
					return obj("messages", list, "more", more, "refused", refused), nil
				}),
				"send", ms.add(func(a []js.Value) (any, error) {
					// send(topic, data, keep, nowMs)
					b, err := m.Send(arg(a, 0).String(), bytesOf(arg(a, 1)), arg(a, 2).Truthy(), int64(arg(a, 3).Float()))
					return bytesJS(b), err
				}),
				"free", ms.free(),
			), nil
		}),
		"view", fs.add(func(a []js.Value) (any, error) {
			// view(space, secrets)
			v, err := n.View(bytesOf(arg(a, 0)), secretsOf(arg(a, 1)))
			if err != nil {
				return nil, err
			}
			return viewJS(v), nil
		}),
		"viewSummary", fs.add(func(a []js.Value) (any, error) {
			// viewSummary(space, secrets)
			v, err := n.ViewSummary(bytesOf(arg(a, 0)), secretsOf(arg(a, 1)))
			if err != nil {
				return nil, err
			}
			return viewJS(v), nil
		}),
		"takeRecords", fs.add(func([]js.Value) (any, error) {
			recs, dropped := n.TakeRecords()
			return obj("records", bytesListJS(recs), "dropped", dropped), nil
		}),
		"import", fs.add(func(a []js.Value) (any, error) {
			return true, n.Import(bytesOf(arg(a, 0)))
		}),
		"compact", fs.add(func([]js.Value) (any, error) {
			// compact() -> records replacing every record of the space (persist.go)
			recs, err := n.Compact()
			if err != nil {
				return nil, err
			}
			return bytesListJS(recs), nil
		}),
		"member", fs.add(func(a []js.Value) (any, error) {
			// member({space, seed, device, secrets}, nowMs)
			o := arg(a, 0)
			return true, n.Member(core.MemberConfig{Space: bytesOf(o.Get("space")), Seed: bytesOf(o.Get("seed")),
				Device: bytesOf(o.Get("device")), Secrets: secretsOf(o.Get("secrets")), NowMs: int64(arg(a, 1).Float())})
		}),
		"own", fs.add(func([]js.Value) (any, error) {
			if k := n.Own(); k != nil {
				return bytesJS(k), nil
			}
			return js.Null(), nil
		}),
		"feeds", fs.add(func([]js.Value) (any, error) { return bytesListJS(n.Feeds()), nil }),
		"changed", fs.add(func([]js.Value) (any, error) { return float64(n.Changed()), nil }),
		"put", fs.add(func(a []js.Value) (any, error) {
			// put(key, value, nowMs)
			l, err := n.Put(arg(a, 0).String(), bytesOf(arg(a, 1)), int64(arg(a, 2).Float()))
			return float64(l), err
		}),
		"del", fs.add(func(a []js.Value) (any, error) {
			// del(key, nowMs)
			l, err := n.Delete(arg(a, 0).String(), int64(arg(a, 1).Float()))
			return float64(l), err
		}),
		"announce", fs.add(func([]js.Value) (any, error) {
			n.Announce()
			return true, nil
		}),
		"list", fs.add(func(a []js.Value) (any, error) {
			// list(prefix, after, limit)
			es, next, err := n.List(arg(a, 0).String(), arg(a, 1).String(), arg(a, 2).Int())
			if err != nil {
				return nil, err
			}
			entries := array.New()
			for _, e := range es {
				vs := array.New()
				for _, v := range e.Versions {
					vs.Call("push", obj("value", bytesJS(v.Value), "deleted", v.Deleted, "hlc", float64(v.HLC),
						"feed", bytesJS(v.Feed), "index", float64(v.Index)))
				}
				entries.Call("push", obj("key", e.Key, "versions", vs))
			}
			return obj("entries", entries, "next", next), nil
		}),
		"devices", fs.add(func([]js.Value) (any, error) {
			ds, err := n.Devices()
			if err != nil {
				return nil, err
			}
			out := array.New()
			for _, d := range ds {
				out.Call("push", obj("feed", bytesJS(d.Feed), "name", d.Name, "self", d.Self))
			}
			return out, nil
		}),
		"signinReceive", fs.add(func(a []js.Value) (any, error) {
			// signinReceive(envelope, nowMs, from)
			r, err := n.SigninReceive(bytesOf(arg(a, 0)), int64(arg(a, 1).Float()), arg(a, 2).String())
			shown := js.Null()
			if r.Shown != nil {
				shown = requestJS(*r.Shown)
			}
			res := obj("handled", r.Handled, "publish", bytesListJS(r.Publish), "shown", shown)
			if err != nil {
				res.Set("error", err.Error())
			}
			return res, nil
		}),
		"requests", fs.add(func(a []js.Value) (any, error) {
			out := array.New()
			for _, r := range n.Requests(int64(arg(a, 0).Float())) {
				out.Call("push", requestJS(r))
			}
			return out, nil
		}),
		"approve", fs.add(func(a []js.Value) (any, error) {
			// approve(id, code, nowMs)
			e, err := n.Approve(arg(a, 0).String(), arg(a, 1).String(), int64(arg(a, 2).Float()))
			return bytesJS(e), err
		}),
		"deny", fs.add(func(a []js.Value) (any, error) {
			// deny(id, nowMs)
			e, err := n.Deny(arg(a, 0).String(), int64(arg(a, 1).Float()))
			return bytesJS(e), err
		}),
		"free", fs.freeThen(func() { delete(nodes, id) }),
	)
}

func requestJS(r core.JoinRequestInfo) js.Value {
	return obj("id", r.ID, "space", bytesJS(r.Space), "name", r.Name, "feed", bytesJS(r.Feed), "code", r.Code, "via", r.Via, "time", float64(r.Time))
}

func viewJS(v core.ViewResult) js.Value {
	kvs := array.New()
	for _, kv := range v.KVs {
		kvs.Call("push", obj("key", kv.Key, "value", bytesJS(kv.Value), "deleted", kv.Deleted, "siblings", kv.Siblings))
	}
	return obj("digest", bytesJS(v.Digest), "keys", v.Keys, "kvs", kvs, "writers", v.Writers, "invalid", v.Invalid, "waiting", v.Waiting)
}

// nodes are the live nodes by the id their object carries, for calls
// that take a node (an asker's checkApproved).
var (
	nodes   = map[int]*core.Node{}
	nodeIDs int
)

// askerJS is the JavaScript object of a sign-in request (core.Asker).
func askerJS(k *core.Asker) js.Value {
	var fs funcs
	return obj(
		"space", bytesJS(k.Space()),
		"feed", bytesJS(k.Feed()),
		"seed", bytesJS(k.Seed()),
		"device", bytesJS(k.DeviceKey()),
		"topic", k.Topic(),
		"safetyCode", k.SafetyCode(),
		"state", fs.add(func([]js.Value) (any, error) {
			s := k.State()
			return obj("state", s.State, "reason", s.Reason, "candidates", s.Candidates), nil
		}),
		"step", fs.add(func(a []js.Value) (any, error) {
			// step(nowMs, peers)
			st, err := k.Step(int64(arg(a, 0).Float()), arg(a, 1).Int())
			if err != nil {
				return nil, err
			}
			pub := js.Null()
			if st.Publish != nil {
				pub = bytesJS(st.Publish)
			}
			return obj("publish", pub, "nextMs", float64(st.NextMs)), nil
		}),
		"receive", fs.add(func(a []js.Value) (any, error) {
			// receive(envelope, nowMs)
			mine, wake, err := k.Receive(bytesOf(arg(a, 0)), int64(arg(a, 1).Float()))
			if err != nil {
				return nil, err
			}
			return obj("mine", mine, "wake", wake), nil
		}),
		"nextTrial", fs.add(func(a []js.Value) (any, error) {
			t := k.NextTrial(int64(arg(a, 0).Float()))
			if t.Secrets == nil {
				return obj("waitMs", float64(t.WaitMs)), nil
			}
			secrets := array.New()
			for _, s := range t.Secrets {
				secrets.Call("push", obj("epoch", s.Epoch, "secret", bytesJS(s.Secret)))
			}
			return obj("secrets", secrets, "feeds", bytesListJS(t.Feeds), "waitMs", 0), nil
		}),
		"tried", fs.add(func(a []js.Value) (any, error) {
			// tried(opened, error)
			failed := ""
			if v := arg(a, 1); v.Type() == js.TypeString {
				failed = v.String()
			}
			return float64(k.Tried(arg(a, 0).Int(), failed)), nil
		}),
		"checkApproved", fs.add(func(a []js.Value) (any, error) {
			// checkApproved(node)
			n, ok := nodes[arg(a, 0).Get("id").Int()]
			if !ok {
				return nil, errors.New("checkApproved: not a live node")
			}
			return k.CheckApproved(n), nil
		}),
		"free", fs.free(),
	)
}

// funcs are the functions of one JavaScript object, released together.
type funcs []js.Func

func (fs *funcs) add(f func(args []js.Value) (any, error)) js.Func {
	g := fn(f)
	*fs = append(*fs, g)
	return g
}

// free returns the object's free function: it releases the others and
// itself (Release may be called while the function runs).
func (fs *funcs) free() js.Func { return fs.freeThen(nil) }

// freeThen is free that calls then first (when not nil).
func (fs *funcs) freeThen(then func()) js.Func {
	var self js.Func
	self = js.FuncOf(func(js.Value, []js.Value) any {
		if then != nil {
			then()
		}
		for _, f := range *fs {
			f.Release()
		}
		*fs = nil
		self.Release()
		return obj("ok", true)
	})
	return self
}

// fn wraps f as a JavaScript function returning {ok} or {error}. A panic
// (a bug, or an argument of the wrong type) becomes an error too.
func fn(f func(args []js.Value) (any, error)) js.Func {
	return js.FuncOf(func(_ js.Value, args []js.Value) (res any) {
		defer func() {
			if r := recover(); r != nil {
				res = obj("error", "mycelCore: "+panicString(r))
			}
		}()
		v, err := f(args)
		if err != nil {
			return obj("error", err.Error())
		}
		return obj("ok", v)
	})
}

func panicString(r any) string {
	switch r := r.(type) {
	case error:
		return r.Error()
	case string:
		return r
	}
	return "panic"
}

func arg(a []js.Value, i int) js.Value {
	if i >= len(a) {
		return js.Undefined()
	}
	return a[i]
}

// obj builds a JavaScript object from name, value pairs.
func obj(kv ...any) js.Value {
	o := object.New()
	for i := 0; i+1 < len(kv); i += 2 {
		o.Set(kv[i].(string), kv[i+1])
	}
	return o
}

func bytesOf(v js.Value) []byte {
	if v.IsUndefined() || v.IsNull() {
		return nil
	}
	if !v.InstanceOf(uint8Array) {
		panic(errors.New("expected a Uint8Array"))
	}
	b := make([]byte, v.Length())
	js.CopyBytesToGo(b, v)
	return b
}

func bytesJS(b []byte) js.Value {
	v := uint8Array.New(len(b))
	js.CopyBytesToJS(v, b)
	return v
}

func bytesListOf(v js.Value) [][]byte {
	var out [][]byte
	for i := 0; i < v.Length(); i++ {
		out = append(out, bytesOf(v.Index(i)))
	}
	return out
}

func bytesListJS(bs [][]byte) js.Value {
	a := array.New()
	for _, b := range bs {
		a.Call("push", bytesJS(b))
	}
	return a
}

func headJS(h core.Head) js.Value {
	return obj("key", bytesJS(h.Key), "length", float64(h.Length), "root", bytesJS(h.Root), "time", float64(h.Time))
}

func secretOf(v js.Value) core.Secret {
	return core.Secret{Epoch: uint32(v.Get("epoch").Int()), Secret: bytesOf(v.Get("secret"))}
}

func secretsOf(v js.Value) []core.Secret {
	var out []core.Secret
	for i := 0; i < v.Length(); i++ {
		out = append(out, secretOf(v.Index(i)))
	}
	return out
}

// uint64Of reads a BigInt (or an integer number) as a uint64. It goes
// through String: js.Value.Type does not know BigInt.
func uint64Of(v js.Value) (uint64, error) {
	return strconv.ParseUint(jsString.Invoke(v).String(), 10, 64)
}

func opOf(v js.Value) (core.Op, error) {
	hlc, err := uint64Of(v.Get("hlc"))
	if err != nil {
		return core.Op{}, err
	}
	op := core.Op{Kind: v.Get("kind").String(), Key: v.Get("key").String(), Value: bytesOf(v.Get("value")), HLC: hlc}
	if s := v.Get("seen"); !s.IsUndefined() {
		for i := 0; i < s.Length(); i++ {
			e := s.Index(i)
			op.Seen = append(op.Seen, core.SeenLen{Feed: bytesOf(e.Get("feed")), Length: uint64(e.Get("length").Float())})
		}
	}
	return op, nil
}

func opJS(op core.Op) js.Value {
	seen := array.New()
	for _, s := range op.Seen {
		seen.Call("push", obj("feed", bytesJS(s.Feed), "length", float64(s.Length)))
	}
	return obj("kind", op.Kind, "key", op.Key, "value", bytesJS(op.Value),
		"hlc", bigInt.Invoke(strconv.FormatUint(op.HLC, 10)), "seen", seen)
}
